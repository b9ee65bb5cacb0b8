"""The process of one instance: load the deployment once, then run the requests the server sends.

Started by `emulator.runtime.instance` as `python -c BOOTSTRAP FD TMPDIR SERVER OUTPUT` in the version's own Python,
in a session of its own, with the package folder as working directory and the deployment's environment
variables set; that process, the instance's init (`reaper`), forks the worker and stays its parent. FD is this end
of a socket pair carrying `protocol` messages, TMPDIR the instance's temporary folder, SERVER the server's process
id, OUTPUT the pipe `sys.stdout` and `sys.stderr` write to (`OutputPipe`); the file descriptors 1 and 2 go to the
server's log too.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import io
import os
import resource
import shutil
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from contract.files import map_files, numbered_names, storable_name
from contract.spec import Field, Spec
from contract.text import carried, is_unicode_text
from emulator.runtime import loader, protocol, reaper

RUNTIME_DIR = Path(__file__).resolve().parent
"""This module's and the loader's folder: frames there, before a failed start's own, are left out of its traceback."""


class OutputPipe:
    """Where the worker's sys.stdout and sys.stderr write: one pipe for both, in frames that say which stream
    wrote, and during which request (`protocol.output_frames`), so the server logs their lines in the order
    they were written, each with its request. Each on a pipe of its own, read apart, a line on stderr was logged
    after the stdout lines written later that came in the same read (up to 64 KiB of them). Writes go straight
    to the pipe, as an unbuffered stream's."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        """Held while a write's frames go: another thread's write comes before or after them, not between."""
        os.register_at_fork(after_in_child=self._forked)

    def write(self, stream: int, request_id: bytes, data: bytes) -> None:
        frames = protocol.output_frames(stream, request_id, data)
        with self._lock:
            for frame in frames:
                os.write(self._fd, frame)  # no shorter than asked: a pipe takes up to PIPE_BUF bytes whole

    def _forked(self) -> None:
        """In a child the deployment forked: a lock held by another of the parent's threads is held for ever."""
        self._lock = threading.Lock()


class RequestTaggedStream(io.TextIOBase):
    """The worker's sys.stdout or sys.stderr: what is written during a request goes to the output pipe
    (`OutputPipe`) with the request's id, so the log says which request spoke. Otherwise it behaves as the
    stream it wraps, as a deployment on UbiOps gets a normal Python stream: attributes it does not define
    (`reconfigure`, `line_buffering`, `name`, `mode`, ...) are the wrapped stream's, and so is its file
    descriptor. What is written goes to the pipe as the wrapped stream would encode it.

    `buffer` is a binary writer that goes the same way (`TaggedBuffer`), sharing this stream's line state:
    bytes written there are attributed as text printed here is, and text and bytes may alternate on one line."""

    def __init__(self, stream: TextIO, pipe: OutputPipe, number: int) -> None:
        self._stream = stream
        self._pipe = pipe
        self._number = number
        """The stream's number on the pipe: its index in `protocol.OUTPUT_STREAMS`."""
        self._at_line_start = True
        self._request_id = b""
        """The id of the request running, in UTF-8; empty between requests."""
        self._buffer: TaggedBuffer | None = None

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._send(text.encode(self._stream.encoding, self._stream.errors or "strict"))
            self._at_line_start = text[-1] == "\n"
        return len(text)

    def _send(self, data: bytes) -> None:
        self._pipe.write(self._number, self._request_id, data)

    def start_request(self, request_id: str) -> None:
        """Attribute what is written from here on to `request_id`: a line left open before is ended first,
        so the request's first line is its own."""
        self._end_line()
        self._request_id = request_id.encode()[:protocol.MAX_REQUEST_ID_BYTES]

    def end_request(self) -> None:
        """The request has returned: a line it left open (a progress bar's last `\\r ... done`) is ended,
        so it reaches the log now, attributed to the request, not glued to the next one's first line."""
        self._end_line()
        self._request_id = b""

    def _end_line(self) -> None:
        if not self._at_line_start:
            self._send(b"\n")
            self._at_line_start = True

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]  # typeshed: an attribute; io: a read-only property
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]  # as encoding
        return self._stream.errors

    @property
    def newlines(self) -> Any:  # type: ignore[override]  # as encoding
        return self._stream.newlines

    @property
    def buffer(self) -> TaggedBuffer:
        if self._buffer is None:
            self._buffer = TaggedBuffer(self)
        return self._buffer

    def __getattr__(self, name: str) -> Any:
        """What io.TextIOBase does not define, as the wrapped stream has it (`reconfigure`, ...)."""
        stream = self.__dict__.get("_stream")
        if stream is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(stream, name)


class TaggedBuffer(io.BufferedIOBase):
    """`RequestTaggedStream.buffer`: bytes written go to the output pipe, attributed to the request running
    as `RequestTaggedStream.write` attributes text. Closing it does nothing: the wrapped stream is the
    worker's log (`io.TextIOWrapper(sys.stdout.buffer)` closes it when collected). Attributes it does not
    define are the wrapped stream's buffer's."""

    def __init__(self, text: RequestTaggedStream) -> None:
        self._text = text
        self._raw: Any = text._stream.buffer

    def write(self, data: Any) -> int:
        chunk = memoryview(data).tobytes()
        text = self._text
        if chunk:
            text._send(chunk)
            text._at_line_start = chunk[-1:] == b"\n"
        return len(chunk)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def isatty(self) -> bool:
        return bool(self._raw.isatty())

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        raw = self.__dict__.get("_raw")
        if raw is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(raw, name)


def main() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    temp_dir, init = sys.argv[2], os.getpgrp()  # the init leads the worker's group
    reader, writer = channel.makefile("rb"), channel.makefile("wb")
    faulthandler.enable()
    output = int(sys.argv[4])
    os.set_inheritable(output, False)  # the processes the deployment starts write to its file descriptors 1 and 2
    pipe = OutputPipe(output)
    streams = [RequestTaggedStream(sys.stdout, pipe, 0), RequestTaggedStream(sys.stderr, pipe, 1)]
    sys.stdout, sys.stderr = streams
    _streams.extend(streams)

    setup = protocol.decode_as(reader.readline(), protocol.Setup)
    try:
        deployment = _load(setup, writer)
    except BaseException as exc:  # SystemExit in __init__ is a failed start too, reported as such
        print_start_error(exc)
        _send(writer, protocol.InitFailed(carried(f"{type(exc).__name__}: {exc}")))
        sys.exit(1)
    for warning in loader.start_warnings(deployment):
        print(warning, file=sys.stderr, flush=True)
    _send(writer, protocol.Ready(loader.capabilities(deployment), _peak_memory_bytes()))

    worker = os.getpid()
    with contextlib.suppress(ConnectionError):  # a reply that cannot be sent: the server has gone
        for line in reader:
            job = protocol.decode_as(line, protocol.Job)
            update = StreamingUpdate(writer)
            context = {**job.context, "streaming_update": update}
            for stream in streams:
                stream.start_request(job.context["id"])
            try:
                reply = _run(deployment, job, context, setup.output_file_fields)
            finally:
                for stream in streams:
                    stream.end_request()
                update.close()
            if os.getpid() != worker:  # a child the request forked, returned here: it shares the channel, and its
                os._exit(0)  # reply, then its reading of the next job, put every later answer one request behind
            _write(writer, reply)
    _end_alone(temp_dir, init)  # the channel closed: the server has gone (it kills an instance it stops, then closes it)


def _end_alone(temp_dir: str, init: int) -> None:
    """The server ended without stopping this instance (it was killed outright). The instance's init, which watches
    the server (`reaper`), ends this worker, whatever the deployment started and the temporary folder: this waits for
    it. Only were the init gone too (killed on its own) does the worker do what it can: the temporary folder, then its
    process group, itself with it (`reaper.end_group`)."""
    while os.getppid() == init:
        time.sleep(reaper.POLL_SECONDS)
    reaper.end_group(temp_dir)


class StreamingUpdate:
    """A request's `context["streaming_update"]`: sends its partial output while it runs, and nothing
    once it has returned, as a thread it left running may call it on: the updates reached the next
    request's caller."""

    def __init__(self, writer: io.BufferedWriter) -> None:
        self._writer = writer
        self._open = True

    def __call__(self, text: Any) -> None:
        message = protocol.StreamUpdate(carried(str(text)))
        with _sending:
            if self._open:
                _send(self._writer, message)

    def close(self) -> None:
        """The request has returned: an update still being sent goes before its reply, later ones nowhere."""
        with _sending:
            self._open = False


def print_start_error(exc: BaseException) -> None:
    """The traceback of a failed start from the deployment's own first frame: the emulator's frames before
    it (this worker's, the loader's, importlib's) say nothing about the developer's code. An error the
    loader raises itself (no class called 'Deployment', no deployment file) has no such frame: its message
    alone is printed (a SyntaxError's with its file, line and caret)."""
    shown = traceback.TracebackException.from_exception(exc)
    frames = list(shown.stack)
    while frames and _emulators_frame(frames[0].filename):
        frames.pop(0)
    shown.stack = traceback.StackSummary.from_list(frames)
    print("".join(shown.format()), end="", file=sys.stderr, flush=True)


def _emulators_frame(filename: str) -> bool:
    """A frame of the worker's start: `<string>` is the bootstrap `instance` starts it with."""
    return filename == "<string>" or filename.startswith("<frozen importlib") or Path(filename).resolve().parent == RUNTIME_DIR


def _load(setup: protocol.Setup, writer: io.BufferedWriter) -> Any:
    package_dir = Path(setup.package_dir)
    module = loader.import_deployment_module(package_dir, setup.deployment_file)
    _send(writer, protocol.Imported())  # a start that hangs from here on hangs in `__init__`
    return loader.instantiate(module, package_dir, setup.init_context)


def _run(deployment: Any, job: protocol.Job, context: dict[str, Any], file_fields: dict[str, str]) -> bytes:
    """The encoded reply to `job`: its result, or the error the caller sees, with the worker's peak memory
    (a job that passed the instance's limit, even for less than the server's look every 100 ms, is
    failed as UbiOps' hard limit would fail it)."""
    keep = functools.partial(_keep_output_files, file_fields=file_fields, output_dir=Path(job.output_dir)) if file_fields else None
    try:
        result = loader.dispatch(deployment, job.data, context, keep)
    except loader.RequestError as exc:
        return protocol.encode(protocol.Error(carried(str(exc)), _peak_memory_bytes()))
    peak = _peak_memory_bytes()
    try:
        return protocol.encode(protocol.Result(result, peak))
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested past Python's limit (~1000 levels)
        return protocol.encode(protocol.Error(f"The deployment's output cannot be sent as JSON: {exc}", peak))


def _peak_memory_bytes() -> int:
    """The peak resident memory of the worker, or of the largest process it started and has waited for, whichever
    is larger (~20 µs, as each reply carries one): a container's limit counts the processes a deployment starts,
    and one that ended before the server's next look (a tool `subprocess.run` ran, a data loader's worker joined)
    is seen only so. Their peaks are not added up: they need not have come at once, and a forked child's counts the
    pages it shares with the worker. A child still running (or not yet waited for) is the server's looks' to see."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(_own_peak_bytes(), children if sys.platform == "darwin" else children * 1024)  # bytes on macOS, kB on Linux


def _own_peak_bytes() -> int:
    """The worker's own peak resident memory: VmHWM on Linux, where `getrusage`'s peak starts at that of the process
    that started the worker (the kernel keeps it across `exec`), and a server or a test run that had once held more
    than the limit failed every start and request of its instances; `getrusage`'s elsewhere (macOS)."""
    try:
        with open("/proc/self/status", "rb") as status:
            text = status.read()
        start = text.index(b"VmHWM:") + len(b"VmHWM:")
        return int(text[start:text.index(b"kB", start)]) * 1024
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _keep_output_files(result: Any, file_fields: dict[str, str], output_dir: Path) -> Any:
    """Copy each file an output field points to, before the deployment may remove or reuse it."""
    spec = Spec(tuple(Field(name, data_type) for name, data_type in file_fields.items()))
    return map_files(spec, result, lambda _field, value: _keep_file(value, output_dir))


def _keep_file(value: Any, output_dir: Path) -> Any:
    # A path that is not Unicode text (a file name Python could not decode) fails the request as output
    # that cannot be sent: its copy would stay in the bucket, and break its listing. A name's control
    # characters and backslashes are made `_`, as in an uploaded file's: no stored file's name holds one.
    if not isinstance(value, str) or not is_unicode_text(value) or not os.path.isfile(value):
        return value
    source = Path(value).resolve()
    target: Path | None = None
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        names = numbered_names(storable_name(source.name))
        target = next(output_dir / name for name in names if not (output_dir / name).exists())
        shutil.copyfile(source, target)
    except OSError as exc:  # a full disk: the request fails saying so, where the worker died and the instance restarted
        if target is not None:
            with contextlib.suppress(OSError):
                target.unlink()
        raise loader.RequestError(f"The output file {source.name} could not be kept: {exc.strerror or exc}") from None
    return str(target)


def _send(writer: io.BufferedWriter, message: protocol.Message) -> None:
    _write(writer, protocol.encode(message))


_sending = threading.RLock()
"""Held while a message is written: the deployment's threads may stream updates as the reply goes."""


_streams: list[RequestTaggedStream] = []
"""The worker's stdout and stderr, whatever the deployment has made of `sys.stdout` and `sys.stderr` since
(its own file, closed; None): flushing those failed requests that had returned."""


def _write(writer: io.BufferedWriter, line: bytes) -> None:
    """Send an encoded message, after what the deployment printed before it (flushed outside the
    lock: a deployment's own sys.stdout may hold a lock of its own while it streams an update)."""
    for stream in _streams:
        with contextlib.suppress(OSError, ValueError):  # the deployment closed what it wraps
            stream.flush()
    with _sending:
        writer.write(line)
        writer.flush()


if __name__ == "__main__":
    main()
