"""`ProcessTree`, the processes whose memory an instance's limit counts: read from /proc, under a real init as
a worker's is, holding memory it shares with a child it forked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from emulator.runtime import reaper
from emulator.runtime.processes import ProcessTree, kill_group

MB = 1024 * 1024
SCRIPT = """
import os, signal, sys
os.setsid()  # out of its parent's group and session, as a worker that calls it leaves the init's: still counted
held = b"x" * (100 * 1024 * 1024)  # written, so resident
for line in sys.stdin:  # each line asks for a child: forked, it shares `held` until either writes it
    if os.fork() == 0:
        signal.pause()
    print("forked", flush=True)
"""


INIT = "import subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1]])"
"""An init as an instance's: it starts the worker (SCRIPT) and stays its parent."""


@pytest.fixture
def group() -> Iterator[subprocess.Popen[str]]:
    """An init whose child, a Python holding 100 MB in a session of its own, forks a child each time a line is sent."""
    process = subprocess.Popen([sys.executable, "-c", INIT, SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    yield process
    for pid in reaper.descendants(process.pid) or []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    kill_group(process.pid)
    process.wait()


def fork(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("fork\n")
    process.stdin.flush()
    assert process.stdout.readline() == "forked\n"


def test_a_group_s_memory_counts_its_processes_and_past_the_limit_their_shared_pages_once(group):
    """Each process under the init counts, one that left its group too (a worker calling os.setsid() was counted
    by no look, and passed the limit for as long as its request ran), a child forked after a look found by the
    next (a process seen outside the tree is not read again), not the init, and the pages they share, counted in
    each one's RSS, once in their PSS."""
    watched = ProcessTree(group.pid)
    fork(group)  # the first child exists before the first look
    two = watched.memory_bytes(limit=1024 * MB)
    assert two > 200 * MB, "under the limit: each one's RSS, the 100 MB they share counted twice"
    fork(group)  # a process new since the last look
    three = watched.memory_bytes(limit=1024 * MB)
    assert three > 300 * MB
    shared_once = watched.memory_bytes(limit=250 * MB)
    assert 100 * MB < shared_once < 150 * MB, "past the limit: their PSS, the 100 MB once"
