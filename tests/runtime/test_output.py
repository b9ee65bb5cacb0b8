"""What a deployment prints reaches the log a line at a time, each line printed during a request
attributed to it, whichever way the deployment writes to its sys.stdout and sys.stderr."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from submitting import PACKAGES, TIMEOUT

from emulator.environments import OWN_ENVIRONMENT
from emulator.runtime.instance import START_TIMEOUT_SECONDS, Instance, Launch
from emulator.runtime.pipes import LOG_LINE_LIMIT, PIPE_READ_BYTES, PipeReader
from emulator.runtime.protocol import Result
from emulator.runtime.python_envs import PythonEnvironment

pytestmark = pytest.mark.anyio


def ended(pid: int) -> bool:
    """Whether the process has exited (a zombie until its parent, the worker, waits for it, which it never does)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture
def printed(caplog) -> Callable[..., object]:
    """Wait until the deployment's lines in the log (on `stream`, or both) satisfy `done`, and return
    them as (request id, stream, line as printed)."""
    caplog.set_level(logging.INFO, logger="emulator.deployment")

    async def wait(done: Callable[[list[tuple[str | None, str, str]]], bool], stream: str | None = None
                   ) -> list[tuple[str | None, str, str]]:
        for _ in range(TIMEOUT * 20):
            lines = [(record.request_id, record.stream, record.printed) for record in caplog.records
                     if hasattr(record, "printed") and stream in (None, record.stream)]
            if done(lines):
                return lines
            await asyncio.sleep(0.05)
        raise AssertionError(f"the log never had the lines expected: {str(lines)[:2000]}")

    return wait


async def test_a_deployment_may_reconfigure_its_streams_and_write_bytes_to_them(pools, job, printed):
    """sys.stdout.buffer and sys.stdout.reconfigure were missing: the deployment failed to start."""
    pool = pools("console")
    pool.start()
    assert await pool.submit(job("buffer", "r-1"), TIMEOUT) == Result("buffer")
    assert await pool.submit(job("wrapped", "r-2"), TIMEOUT) == Result("wrapped")
    assert await pool.submit(job("attributes", "r-3"), TIMEOUT) == Result("attributes")
    lines = await printed(lambda lines: len(lines) == 7, "stdout")
    assert lines == [
        (None, "stdout", "console: loaded"),
        ("r-1", "stdout", "bytes then text"),
        ("r-1", "stdout", "one"),
        ("r-1", "stdout", "two"),
        ("r-2", "stdout", "wrapped"),
        ("r-2", "stdout", "after the wrapper"),
        ("r-3", "stdout", "True True False True <stdout> True backslashreplace"),
    ]


async def test_a_line_left_open_is_ended_with_its_request_and_attributed_to_it(pools, job, printed):
    """A progress bar's last line (tqdm's with leave=False) stayed in the worker until something else
    was printed, and the next request's first line was glued to it, attributed to the earlier request;
    a line left open while starting got the request's first line, untagged."""
    pool = pools("console")
    pool.start()
    assert await pool.submit(job("progress", "r-1"), TIMEOUT) == Result("progress")
    expected = [(None, "stderr", "console: starting"), ("r-1", "stderr", "\r 100%|###| 10/10 done")]
    assert await printed(lambda lines: len(lines) == 2, "stderr") == expected, "ended with its request"
    assert await pool.submit(job("progress", "r-2"), TIMEOUT) == Result("progress")
    expected.append(("r-2", "stderr", "\r 100%|###| 10/10 done"))
    assert await printed(lambda lines: len(lines) == 3, "stderr") == expected


async def test_a_line_past_the_limit_is_logged_in_pieces_of_whole_characters_all_with_its_request(pools, job, printed):
    """Only the first piece had the request's id, and a character cut between pieces became U+FFFD."""
    pool = pools("console")
    pool.start()
    count = LOG_LINE_LIMIT  # 2 bytes each: two pieces at least, wherever the reads end
    assert await pool.submit(job(f"long {count}", "r-10"), TIMEOUT) == Result(f"long {count}")
    lines = await printed(lambda lines: "".join(line for _, _, line in lines[1:]) == "é" * count, "stdout")
    assert [request_id for request_id, _, _ in lines] == [None] + ["r-10"] * (len(lines) - 1), "None: console: loaded"
    assert len(lines) > 2


async def test_a_long_line_is_cut_into_the_same_pieces_however_it_was_read_with_no_empty_line_after(pools, job, printed):
    """A line was cut where a read happened to end (100 000 bytes: whole, or 69 534 and 30 466); and once a cut took
    all that had come of a line (here: all its bytes, before the line on stderr), its newline logged an empty line."""
    pool = pools("console")
    pool.start()
    for n, count in enumerate((LOG_LINE_LIMIT, 100_000, 200_000)):
        assert await pool.submit(job(f"cut {count}", f"r-{n}"), TIMEOUT) == Result(f"cut {count}")
    lines = await printed(lambda lines: sum(len(line) for request_id, _, line in lines if request_id) == 365_536 + 3 * 7)
    pieces = {f"r-{n}": [len(line) for request_id, stream, line in lines if request_id == f"r-{n}" and stream == "stdout"]
              for n in range(3)}
    assert pieces == {"r-0": [LOG_LINE_LIMIT], "r-1": [LOG_LINE_LIMIT, 100_000 - LOG_LINE_LIMIT],
                      "r-2": [LOG_LINE_LIMIT] * 3 + [200_000 - 3 * LOG_LINE_LIMIT]}


async def relayed(instance: Instance, *pieces: tuple[str, str | None, bytes]) -> None:
    """Have `instance` relay `pieces` (stream, request id, bytes) to the log."""
    async def each() -> AsyncIterator[tuple[str, str | None, bytes]]:
        for piece in pieces:
            yield piece

    await instance._relay(each())


@pytest.mark.parametrize("size", [None, 1000, 7], ids=["one-read", "1000-byte-reads", "7-byte-reads"])
async def test_the_relay_cuts_a_long_line_between_characters_each_piece_with_its_request(caplog, size):
    """Cut at LOG_LINE_LIMIT bytes exactly, the first piece ended in the middle of a character; only the first
    piece had the request's id."""
    caplog.set_level(logging.INFO, logger="emulator.deployment")
    launch = Launch(deployment="tests", version="relay", package_dir=PACKAGES / "console", deployment_file="deployment.py",
                    environment={}, init_context={}, memory_limit_mb=None, start_timeout_seconds=START_TIMEOUT_SECONDS,
                    project="runtime-tests", python_environment=PythonEnvironment(OWN_ENVIRONMENT, PACKAGES / "console"))
    line = "a" + "é" * LOG_LINE_LIMIT + "€[request r-2] z"  # a 2-byte character straddles LOG_LINE_LIMIT
    data = f"{line}\n".encode()
    reads = [data] if size is None else [data[start:start + size] for start in range(0, len(data), size)]
    await relayed(Instance(launch, 1, sys.executable), *(("stdout", "r-1", read) for read in reads),
                  ("stdout", None, b"next\n"), ("stdout", "r-1", b"last"))
    records = [(record.request_id, record.printed, record.getMessage()) for record in caplog.records]
    assert [(request_id, len(printed.encode())) for request_id, printed, _ in records] == [
        ("r-1", LOG_LINE_LIMIT - 1), ("r-1", LOG_LINE_LIMIT), ("r-1", 20), (None, 4), ("r-1", 4)]
    assert "".join(printed for _, printed, _ in records[:3]) == line, "its text kept, [request r-2] too"
    assert all(message.startswith("[tests/relay instance 1] [request r-1] ") for request_id, _, message in records if request_id)


@pytest.mark.parametrize("before", [LOG_LINE_LIMIT - 5, 2 * LOG_LINE_LIMIT - 20], ids=["first-cut", "second-cut"])
async def test_the_relay_never_cuts_a_long_line_inside_a_variable_s_value(caplog, before):
    """A secret cut across two pieces was in neither whole, so the masking of the log shown by a failing
    `deployer check` or test (`contract.secrets`) missed it: both halves were shown."""
    caplog.set_level(logging.INFO, logger="emulator.deployment")
    secret = "s3cr3t-key-0123456789"
    launch = Launch(deployment="tests", version="relay", package_dir=PACKAGES / "console", deployment_file="deployment.py",
                    environment={"API_KEY": secret}, init_context={}, memory_limit_mb=None,
                    start_timeout_seconds=START_TIMEOUT_SECONDS, project="runtime-tests",
                    python_environment=PythonEnvironment(OWN_ENVIRONMENT, PACKAGES / "console"))
    line = "a" * before + secret + "b" * 100
    data = f"{line}\n".encode()  # read as the relay reads a file descriptor: the first read ends inside the secret
    await relayed(Instance(launch, 1, sys.executable), *(("stdout", None, data[start:start + LOG_LINE_LIMIT])
                                                         for start in range(0, len(data), LOG_LINE_LIMIT)))
    pieces = [record.printed for record in caplog.records]
    assert "".join(pieces) == line and len(pieces) > 1
    assert sum(secret in piece for piece in pieces) == 1, [piece[-30:] for piece in pieces]


async def test_what_is_written_to_the_file_descriptors_themselves_reaches_the_log_with_its_request(pools, job, printed):
    """sys.stdout and sys.stderr go down a pipe of their own; what native code or a process the deployment starts
    writes to the file descriptors 1 and 2 is relayed from those. It was filed under no request (a failed
    subprocess's lines were not found by the request's id), and a line of a process it started that began
    as the console shows a request's line was filed under the request it named, less that text."""
    pool = pools("console")
    pool.start()
    assert await pool.submit(job("descriptors", "r-1"), TIMEOUT) == Result("descriptors")
    def written(lines: list[tuple[str | None, str, str]]) -> list[tuple[str | None, str, str]]:
        return sorted((line for line in lines if not line[2].startswith("console: ")), key=lambda line: line[1:])

    lines = await printed(lambda lines: len(written(lines)) == 3)
    assert written(lines) == [("r-1", "stderr", "to file descriptor 2"),
                              ("r-1", "stdout", "[request worker-3] from a process it started"),
                              ("r-1", "stdout", "to file descriptor 1")]


async def test_what_the_file_descriptors_still_hold_as_a_request_returns_is_the_request_s(pools, job, printed):
    """Behind a flood, the relay reads the file descriptors' pipes after the reply: what they still held then
    (up to a pipe's 64 KiB) was filed under no request."""
    pool = pools("console")
    pool.start()
    count = 40_000  # 280 KB: the relay falls behind, so the pipe is full as the reply comes
    assert await pool.submit(job(f"descriptor flood {count}", "r-1"), TIMEOUT) == Result(f"descriptor flood {count}")
    lines = await printed(lambda lines: len(lines) == count + 1, "stdout")
    assert [request_id for request_id, _, _ in lines[1:]] == ["r-1"] * count, "None: console: loaded"


async def test_a_request_that_leaves_its_streams_closed_or_none_still_answers(pools, job):
    """The worker flushed the deployment's sys.stdout and sys.stderr before each reply: a request that set
    its own file (closed) or None there had returned, and failed as if its instance had stopped."""
    pool = pools("console")
    pool.start()
    assert await pool.submit(job("replaced", "r-1"), TIMEOUT) == Result("replaced")
    assert await pool.submit(job("after", "r-2"), TIMEOUT) == Result("after")


async def test_a_forked_child_that_returns_from_the_request_answers_nothing(pools, job, printed):
    """A child the request forked and did not end went on in the worker's loop on its channel: its reply,
    then its reading of the next job, put every later answer one request behind (a caller got another's)."""
    pool = pools("console")
    pool.start()
    assert await pool.submit(job("fork", "r-1"), TIMEOUT) == Result("fork")
    lines = await printed(lambda lines: any(line.startswith("forked child ") for _, _, line in lines), "stdout")
    (child,) = [int(line.split()[-1]) for _, _, line in lines if line.startswith("forked child ")]
    for _ in range(TIMEOUT * 20):
        if ended(child):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the child went on in the worker's loop")
    for n in range(3):
        assert await pool.submit(job(f"call {n}", f"r-{n + 2}"), TIMEOUT) == Result(f"call {n}")


LOOPS = pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": False}), ("asyncio", {"use_uvloop": True})],
                                ids=["asyncio", "uvloop"])


@LOOPS
@pytest.mark.parametrize("ending", ["its end", "close"])
async def test_a_pipe_s_descriptor_is_closed_once_so_a_file_opened_after_keeps_its_own(anyio_backend, ending):
    """The pipe's number is closed as the pipe is, and never again. uvloop's `connect_read_pipe` closed it
    a loop turn later, and twice (MagicStack/uvloop#763): a thread that opened a file in between (an instance's
    `rmtree`) lost its descriptor, and the loop's next pipe on that number was then closed under it, so an
    instance's start failed with EEXIST and a client's connection dropped (instances restarted 17 times a second)."""
    ours, theirs = os.pipe()
    reader = asyncio.StreamReader()
    pipe = PipeReader(ours, reader)
    os.write(theirs, b"a line\n")
    if ending == "its end":
        os.close(theirs)
        assert await reader.read() == b"a line\n"
    else:  # the relay's case: a process the deployment left running holds the other end open
        assert await reader.readline() == b"a line\n"
        pipe.close()
        assert await reader.read() == b""
    pipe.close()
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(4)]  # as a thread would, before the loop turns
    try:
        assert ours in opened, "the pipe's number is free once it is closed"
        del pipe, reader  # as an instance drops its last start's at its next
        gc.collect()
        for _ in range(3):
            await asyncio.sleep(0)
        for fd in opened:
            os.fstat(fd)  # EBADF if it was closed under us
    finally:
        for fd in opened:
            os.close(fd)
        if ending == "close":
            os.close(theirs)


@LOOPS
async def test_a_pipe_read_faster_than_its_reader_takes_it_in_waits_and_loses_nothing(anyio_backend):
    """The reader's flow control pauses the pipe and resumes it: a deployment that prints faster than the
    log takes its lines waits on a full pipe; nothing is dropped or reordered."""
    ours, theirs = os.pipe()
    reader = asyncio.StreamReader(limit=1024)
    PipeReader(ours, reader)
    data = b"".join(b"%08d\n" % number for number in range(200_000))  # 1.8 MB, past any pipe's buffer
    writing = asyncio.create_task(asyncio.to_thread(_write_all, theirs, data))
    received = bytearray()
    while chunk := await reader.read(4096):
        received += chunk
        await asyncio.sleep(0)  # the event loop turns while the reader still holds data: it reads the pipe on
        assert len(reader._buffer) <= 2 * 1024 + PIPE_READ_BYTES, "read on past the reader's limit"
    await writing
    assert bytes(received) == data


def _write_all(fd: int, data: bytes) -> None:
    """Write `data` to the pipe, blocking while it is full, and close it."""
    with os.fdopen(fd, "wb") as sink:
        sink.write(data)
