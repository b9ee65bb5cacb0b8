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
