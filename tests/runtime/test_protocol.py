"""The messages between server and worker survive the trip as the types they were sent as, and what
JSON cannot carry is refused at the sender."""

from __future__ import annotations

import math

import pytest

from emulator.runtime import protocol
from emulator.runtime.protocol import Capabilities, Error, InitFailed, Job, Ready, RequestContext, Result, Setup, StreamUpdate

MESSAGES = [
    Setup(package_dir="/p", deployment_file="deployment.py", init_context={"version": "v1"}, output_file_fields={"img": "file"}),
    Ready(Capabilities(has_request_method=True, has_requests_method=False)),
    InitFailed("FileNotFoundError: model1.pkl"),
    Job(data={"x": [1, 2.5, None]}, context=RequestContext(id="r", request_mode="batch", user_id="u"), output_dir="/o"),
    StreamUpdate("partial\nlines"),
    Result({"y": "é"}),
    Result(None),
    Error("The portrait is too dark"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_arrives_as_sent(message):
    line = protocol.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1, "one message, one line"
    assert protocol.decode(line) == message


@pytest.mark.parametrize("result", [math.nan, object(), {1j: 1}])
def test_what_json_cannot_carry_is_refused_when_encoding(result):
    with pytest.raises((TypeError, ValueError)):
        protocol.encode(Result(result))


def test_output_frames_carry_each_stream_s_bytes_and_request_in_order_however_they_are_read():
    """The worker's sys.stdout and sys.stderr share one pipe; a write longer than a pipe takes whole is sent
    in several frames, and a read may end inside one. Each frame carries the request it was written during:
    the text is the deployment's, and a line that began like the console's request tag was taken for one."""
    long = "é".encode() * 5000 + b"\n"
    request = b"5c3a0d6e-request"
    writes = [(0, b"", b"step 1\n"), (1, request, b"warning\n"), (0, request, long), (0, request, b"step 2\n"),
              (0, b"", b"[request 1234] loading\n"), (1, request, b"\n")]
    data = b"".join(frame for stream, request_id, text in writes for frame in protocol.output_frames(stream, request_id, text))
    assert len(protocol.output_frames(0, request, long)) == 3 and all(
        len(frame) <= protocol.FRAME_BYTES for frame in protocol.output_frames(0, request, long))
    expected = [(0, None, b"step 1\n"), (1, "5c3a0d6e-request", b"warning\n"), (0, "5c3a0d6e-request", long + b"step 2\n"),
                (0, None, b"[request 1234] loading\n"), (1, "5c3a0d6e-request", b"\n")]
    assert protocol.output_pieces(data) == (expected, b""), "one read: consecutive frames of a stream and request joined"
    for size in (1, 7, 4096):
        got: list[tuple[int, str | None, bytes]] = []
        rest = b""
        for start in range(0, len(data), size):
            pieces, rest = protocol.output_pieces(rest + data[start:start + size])
            for stream, request_id, text in pieces:  # a piece of the stream the last read ended with continues it
                if got and got[-1][:2] == (stream, request_id):
                    got[-1] = (stream, request_id, got[-1][2] + text)
                else:
                    got.append((stream, request_id, text))
        assert (got, rest) == (expected, b"")
