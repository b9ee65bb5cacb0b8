"""What a deployment prints reaches the log a line at a time, each line printed during a request
attributed to it, whichever way the deployment writes to its sys.stdout and sys.stderr."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from submitting import TIMEOUT

from emulator.runtime.protocol import Result

pytestmark = pytest.mark.anyio


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
        raise AssertionError(f"the log never had the lines expected: {lines}")

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
