"""`ProcessGroup`, the processes whose memory an instance's limit counts: read from /proc, on a real process group
as a worker's is (a session of its own), holding memory it shares with a child it forked."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from emulator.runtime.instance import ProcessGroup, kill_group

MB = 1024 * 1024
SCRIPT = """
import os, signal, sys
held = b"x" * (100 * 1024 * 1024)  # written, so resident
for line in sys.stdin:  # each line asks for a child: forked, it shares `held` until either writes it
    if os.fork() == 0:
        signal.pause()
    print("forked", flush=True)
"""


@pytest.fixture
def group() -> Iterator[subprocess.Popen[str]]:
    """A Python holding 100 MB in a session of its own, which forks a child each time a line is sent."""
    process = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    yield process
    kill_group(process.pid)
    process.wait()


def fork(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("fork\n")
    process.stdin.flush()
    assert process.stdout.readline() == "forked\n"


def test_a_group_s_memory_counts_its_processes_and_past_the_limit_their_shared_pages_once(group):
    """Each process of the group counts, a child forked after a look found by the next (a process seen outside
    the group is not read again), and the pages they share, counted in each one's RSS, once in their PSS."""
    watched = ProcessGroup(group.pid)
    fork(group)  # the first child exists before the first look
    two = watched.memory_bytes(limit=1024 * MB)
    assert two > 200 * MB, "under the limit: each one's RSS, the 100 MB they share counted twice"
    fork(group)  # a process new since the last look
    three = watched.memory_bytes(limit=1024 * MB)
    assert three > 300 * MB
    shared_once = watched.memory_bytes(limit=250 * MB)
    assert 100 * MB < shared_once < 150 * MB, "past the limit: their PSS, the 100 MB once"
