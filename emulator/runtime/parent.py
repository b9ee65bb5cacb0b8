"""Processes that never outlive the one that started them, even one killed outright (SIGKILL, a
test run's SIGTERM that skips its clean-up): the server under a test session or `deployer check`, an
installer under the server (run as `python parent.py PID COMMAND…`, `main`). An instance's worker has an
init of its own for that (`reaper`). Standard library only: `main` runs as a script (`python -I`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

POLL_SECONDS = 1


def when_parent_ends(then: Callable[[], None], parent: int | None = None) -> None:
    """Call `then` (in a thread of its own) once this process's parent has ended: the process is then
    adopted, and its parent id changes. `parent`, the parent's id as the parent gave it, makes a parent
    that ended before this was called (while this process started) noticed too."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        then()

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main() -> None:
    """`python parent.py PID COMMAND…`, started by process PID in a session of its own: run COMMAND and
    exit with its code; once PID has ended, kill this process group, COMMAND and what it started with
    it. A command cannot watch its parent itself (uv, say), and a child of PID's that leads its own
    group, to be stopped with all it started, outlives PID killed outright."""
    when_parent_ends(lambda: os.killpg(0, signal.SIGKILL), int(sys.argv[1]))
    code = subprocess.call(sys.argv[2:])
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
