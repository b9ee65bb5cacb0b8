"""Messages between the server and a worker, as types: one JSON object per line over a socket pair.

Server → worker: one `Setup`, then a `Job` per request. Worker → server: `Imported` once the deployment
file is imported, `Ready` (with the deployment's `Capabilities`) or `InitFailed`, then for each job any `StreamUpdate`s and one `Result`
or `Error`. How they travel is decided here only (`encode`, `decode`). What the deployment writes to
its `sys.stdout` and `sys.stderr` goes to the server's log down one pipe of its own, in frames that say
which stream wrote them and during which job's request (`output_frames`, read back by `output_pieces`), so
the lines of the two keep the order they were written in, and each its request, whatever its text. What
is written to the file descriptors 1 and 2 themselves (by native code, the processes the deployment
starts) reaches the log through pipes of their own (`emulator.runtime.instance`).

JSON (not pickle) so that output a caller could not receive is caught in the worker, where the
deployment produced it, with a clear message.

The worker imports this module in the version's own Python (`emulator.runtime.python_envs`), from
3.9 on, with the standard library alone: hence `Union` where an annotation is evaluated at run time.
"""

from __future__ import annotations

import json
import re
import select
import struct
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict, TypeVar, Union

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
TYPE_FIRST = re.compile(rb'\{"type":"(\w+)"')
OUTPUT_STREAMS = ("stdout", "stderr")
"""The streams whose output frames carry, by their first byte."""
_HEADER = struct.Struct(">BBH")
FRAME_HEADER = _HEADER.size
"""An output frame's stream (1 byte), the length of its request's id (1 byte, 0 outside a request) and of its data
(2 bytes, big-endian), before the id (UTF-8) and the data. The id goes with the data, not in its text (a tag
before each line, read back from every line logged): a line printed outside a request that began like a tag was
filed under the request it named, less that text."""
FRAME_BYTES = select.PIPE_BUF
"""An output frame's size at most: a pipe takes a write of up to PIPE_BUF bytes whole, never mixed with another
process's or thread's, so the frames of the worker's threads and of the children it forks never cut into each other."""
MAX_REQUEST_ID_BYTES = 255
"""A request id's length at most, in UTF-8, on an output frame (the emulator's are UUIDs, 36)."""


class RequestContext(TypedDict):
    """The request's part of the `context` a deployment's `request` receives (the worker adds
    `streaming_update`)."""

    id: str
    request_mode: str
    user_id: str


@dataclass(frozen=True)
class Capabilities:
    """What UbiOps reports as `has_request_method` / `has_requests_method`; None until an instance started."""

    has_request_method: bool | None = None
    has_requests_method: bool | None = None


@dataclass(frozen=True)
class Setup:
    """Load this deployment (sent once, first)."""

    package_dir: str
    deployment_file: str
    init_context: dict[str, Any]
    output_file_fields: dict[str, str]
    """Output fields of type `file`/`array_file`: the worker keeps a copy of the files they name."""


@dataclass(frozen=True)
class Imported:
    """The deployment file was imported: `Deployment.__init__` runs next (a start that times out says which it was in)."""


@dataclass(frozen=True)
class Ready:
    """`Deployment.__init__` returned."""

    capabilities: Capabilities
    peak_memory_bytes: int = field(default=0, compare=False)
    """The peak resident memory so far of the worker, or of the largest process it started and waited for
    (`worker._peak_memory_bytes`): `__init__` is held to the instance's limit too."""


@dataclass(frozen=True)
class InitFailed:
    """The deployment could not be loaded; the worker exits after this."""

    error: str


@dataclass(frozen=True)
class Job:
    """Run one request."""

    data: Any
    context: RequestContext
    output_dir: str
    """Where the worker keeps the files the output names."""


@dataclass(frozen=True)
class StreamUpdate:
    """A partial output the deployment streamed while running the job (`context["streaming_update"]`)."""

    text: str


@dataclass(frozen=True)
class Result:
    """The job's output."""

    result: Any
    peak_memory_bytes: int = field(default=0, compare=False)
    """As in `Ready`; not part of the reply's value."""


@dataclass(frozen=True)
class Error:
    """The job failed; the message is what the caller sees."""

    error: str
    peak_memory_bytes: int = field(default=0, compare=False)
    """As in `Result`; the server sets none for the errors it makes itself."""


Reply = Union[Result, Error]  # noqa: UP007 (Python 3.9 workers)
Message = Union[Setup, Imported, Ready, InitFailed, Job, StreamUpdate, Result, Error]  # noqa: UP007 (Python 3.9 workers)

M = TypeVar("M", bound=Message)
_TYPES: dict[str, type] = {cls.__name__: cls for cls in (Setup, Imported, Ready, InitFailed, Job, StreamUpdate, Result, Error)}
_NESTED: dict[type, dict[str, type]] = {cls: {} for cls in _TYPES.values()}
_NESTED[Ready] = {"capabilities": Capabilities}
"""Per message type, its fields that hold a dataclass (sent as an object, rebuilt on arrival)."""


def encode(message: Message) -> bytes:
    """One line of JSON in UTF-8; raises TypeError/ValueError for what it cannot carry (objects, NaN,
    a lone surrogate in a string, which no JSON reader downstream could store or send on), and
    RecursionError for data nested past Python's recursion limit."""
    body: dict[str, Any] = {"type": type(message).__name__}
    for item in fields(message):
        value = getattr(message, item.name)
        body[item.name] = vars(value) if item.name in _NESTED[type(message)] else value
    return json.dumps(body, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Message:
    body = json.loads(line)
    cls = _TYPES[body.pop("type")]
    for name, nested in _NESTED[cls].items():
        body[name] = nested(**body[name])
    message: Message = cls(**body)
    return message


def type_of(start: bytes) -> str | None:
    """The type's name of the message whose encoding starts with `start` (`encode` writes it first), or None."""
    match = TYPE_FIRST.match(start)
    return match[1].decode() if match else None


def decode_as(line: bytes, kind: type[M]) -> M:
    """The message on `line`, which must be a `kind`: anything else breaks the protocol, a bug on one
    side, never the deployment's doing."""
    message = decode(line)
    if not isinstance(message, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(message).__name__}")
    return message


def output_frames(stream: int, request_id: bytes, data: bytes) -> list[bytes]:
    """The frames that carry `data`, written to `OUTPUT_STREAMS[stream]` during the request `request_id` (its id in
    UTF-8, at most MAX_REQUEST_ID_BYTES; empty outside a request), down the worker's output pipe."""
    room = FRAME_BYTES - FRAME_HEADER - len(request_id)
    if len(data) <= room:  # most writes: a line, or its end
        return [_HEADER.pack(stream, len(request_id), len(data)) + request_id + data]
    return [_HEADER.pack(stream, len(request_id), len(piece)) + request_id + piece
            for piece in (data[start:start + room] for start in range(0, len(data), room))]


def output_pieces(data: bytes) -> tuple[list[tuple[int, str | None, bytes]], bytes]:
    """The output the frames at the start of `data` carry, as (stream, request id or None, bytes), the data of
    consecutive frames of one stream and request joined; and the rest of `data`, the start of a frame still to come."""
    pieces: list[tuple[int, bytes, list[bytes]]] = []
    start, size = 0, len(data)
    while size - start >= FRAME_HEADER:
        stream, id_length, length = _HEADER.unpack_from(data, start)
        begin = start + FRAME_HEADER + id_length
        end = begin + length
        if end > size:
            break
        request_id = data[start + FRAME_HEADER:begin]
        if pieces and pieces[-1][0] == stream and pieces[-1][1] == request_id:
            pieces[-1][2].append(data[begin:end])
        else:
            pieces.append((stream, request_id, [data[begin:end]]))
        start = end
    return [(stream, request_id.decode(errors="replace") if request_id else None, b"".join(parts))
            for stream, request_id, parts in pieces], data[start:]


def request_tag(request_id: str) -> str:
    """What the server's console shows before each line the deployment printed during a request, so it says which
    request spoke (the stored log has the id as a label, `deployment_request_id`)."""
    return f"[request {request_id}] "
