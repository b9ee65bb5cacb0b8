"""What the server reads from an instance's worker: the messages on its channel (`read_message`), and what it
prints, down pipes the instance owns (`PipeReader`): its sys.stdout and sys.stderr framed with the request each
was written during (`output_pieces`), its file descriptors 1 and 2 as they come (`DescriptorReader`).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from emulator.runtime import protocol

LOG_LINE_LIMIT = 64 * 1024
"""The longest piece of a printed line logged as one line (`Instance._relay`)."""
PIPE_READ_BYTES = 256 * 1024
"""What `PipeReader` reads of a pipe at once, as asyncio's pipe transports do."""


class MessageTooLarge(Exception):
    """A message from the worker passed `protocol.MAX_MESSAGE_BYTES`; `kind` is its type's name, when known."""

    def __init__(self, kind: str | None) -> None:
        super().__init__(kind)
        self.kind = kind


async def read_message(reader: asyncio.StreamReader, most: int) -> bytes:
    """The next line from `reader`, as `readline` gives it (b"" at the end, a last line without its end as
    it is), of any length up to `most` bytes with its end, however small the reader's limit (`READ_LIMIT`):
    a longer one raises MessageTooLarge (`readline` raised a ValueError), the rest of it left unread."""
    pieces: list[bytes] = []
    size = 0
    while True:
        try:
            piece, ended = await reader.readuntil(b"\n"), True
        except asyncio.IncompleteReadError as end:
            piece, ended = end.partial, True
        except asyncio.LimitOverrunError as over:  # the line goes on past the reader's limit: take what came
            piece, ended = await reader.readexactly(over.consumed), False
        size += len(piece)
        if size > most:
            raise MessageTooLarge(protocol.type_of((pieces[0] if pieces else piece)[:64]))
        if ended and not pieces:
            return piece
        pieces.append(piece)
        if ended:
            return b"".join(pieces)


class DescriptorReader(asyncio.StreamReader):
    """What the worker's file descriptor 1 or 2 carries (written by native code, or by a process the deployment
    started), noting as it comes in the request running then (`request_id()`), for `Instance._relay`: it has
    no frames, as the worker's own streams' output has (`output_pieces`)."""

    def __init__(self, request_id: Callable[[], str | None]) -> None:
        super().__init__(limit=LOG_LINE_LIMIT)
        self._request_id = request_id
        self._requests: deque[list[Any]] = deque()
        """The request of each run of bytes come in and not yet read, oldest first, as [its length, request id]."""

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]  # typeshed: Iterable[SupportsIndex]; it is fed bytes
        request_id = self._request_id()
        if self._requests and self._requests[-1][1] == request_id:
            self._requests[-1][0] += len(data)
        elif data:
            self._requests.append([len(data), request_id])
        super().feed_data(data)

    async def pieces(self, name: str) -> AsyncIterator[tuple[str, str | None, bytes]]:
        """The bytes as they come, as (`name`, request id or None, bytes)."""
        while chunk := await self.read(LOG_LINE_LIMIT):
            while chunk:
                run = self._requests[0]
                piece, chunk = chunk[:run[0]], chunk[run[0]:]
                run[0] -= len(piece)
                if not run[0]:
                    self._requests.popleft()
                yield name, run[1], piece


class PipeReader:
    """Feeds a StreamReader what the pipe `fd` carries, and owns `fd`: closes it once, at its end or `close`.

    Read with `loop.add_reader`, not `connect_read_pipe`: uvloop's closes the number a loop turn after the
    transport's close, and again as it closes the file object it was given (MagicStack/uvloop#763). A thread
    that opened a file in between (the stopped instance's `rmtree`) lost it, and the next pipe given that
    number was closed under the loop: an instance's start failed with EEXIST and a client's connection
    dropped (a full test run, instances restarted ~17 times a second). The reader's flow control pauses
    and resumes it (`StreamReader.set_transport`): a deployment printing faster than the log takes its
    lines waits on its pipe."""

    def __init__(self, fd: int, reader: asyncio.StreamReader) -> None:
        self._fd = fd
        self._reader = reader
        self._loop = asyncio.get_running_loop()
        self._paused = False
        os.set_blocking(fd, False)
        reader.set_transport(self)  # type: ignore[arg-type]  # it uses pause_reading and resume_reading only
        self._loop.add_reader(fd, self.take_in, 1)

    def take_in(self, reads: int) -> None:
        """Feed the reader what the pipe holds, in up to `reads` reads; at its end, close it."""
        for _ in range(reads):
            if self._fd < 0:
                return
            try:
                data = os.read(self._fd, PIPE_READ_BYTES)
            except BlockingIOError:
                return
            except OSError:  # not expected of a pipe: taken as its end
                data = b""
            if not data:
                self.close()
                return
            self._reader.feed_data(data)

    def pause_reading(self) -> None:
        if self._fd >= 0 and not self._paused:
            self._paused = True
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._fd >= 0 and self._paused:
            self._paused = False
            self._loop.add_reader(self._fd, self.take_in, 1)

    def close(self) -> None:
        """Stop reading and close the pipe (held open by a process the deployment left running, say); the
        reader is at its end."""
        if self._fd < 0:
            return
        if not self._paused:
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._reader.feed_eof()


async def output_pieces(pipe: asyncio.StreamReader) -> AsyncIterator[tuple[str, str | None, bytes]]:
    """What the worker's output pipe carries (`worker.OutputPipe`: what it writes to sys.stdout and sys.stderr),
    stream by stream in the order written, with the request each was written during, for `Instance._relay`."""
    rest = b""
    while chunk := await pipe.read(LOG_LINE_LIMIT - len(rest)):  # a piece is no longer than a read of the others
        pieces, rest = protocol.output_pieces(rest + chunk)
        for stream, request_id, data in pieces:
            yield protocol.OUTPUT_STREAMS[stream], request_id, data


def utf8_cut(data: bytes) -> int:
    """Where to cut `data`, valid UTF-8 or not, so that it ends on a whole character: before a last
    character that is incomplete, else at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the last character starts here
            length = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) - back if length > back else len(data)
    return len(data)


def unsplit_cut(data: bytes, cut: int, values: list[bytes]) -> int:
    """`cut` moved back to the start of the earliest of `values` that would straddle it: one starting
    before it whose bytes match `data`'s from there (to `data`'s end, for one the line may go on with)."""
    best = cut
    for value in values:
        at = data.find(value[:1], max(0, cut - len(value) + 1), cut)
        while at != -1:
            if value.startswith(data[at:at + len(value)]):
                best = min(best, at)
                break
            at = data.find(value[:1], at + 1, cut)
    return best
