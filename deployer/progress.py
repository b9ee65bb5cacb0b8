"""Waiting for a revision's build with a progress display: each status change and the elapsed time,
and a reminder line while a long build goes on (UbiOps builds take minutes)."""

from __future__ import annotations

import time
from collections.abc import Callable

from deployer.client import Api
from deployer.errors import DeployerError

FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 5.0
REMINDER_SECONDS = 30.0
SUCCESS, FAILED_STATUSES = "success", ("failed", "cancelled")


def wait_for_build(api: Api, project: str, deployment: str, version: str, revision: str, timeout: float,
                   say: Callable[[str], None]) -> str:
    """Poll the revision until its build ends; its final status, or DeployerError with the build's error."""
    started = time.monotonic()
    interval, last_status, last_line = FIRST_POLL_SECONDS, None, started
    while True:
        found = api.read(f"revision {revision}", "revisions_get", project, deployment, revision, version)
        elapsed = time.monotonic() - started
        if found.status != last_status or time.monotonic() - last_line >= REMINDER_SECONDS:
            say(f"  build {found.status} ({elapsed:.0f} s)" if found.status != last_status
                else f"  build still {found.status} ({elapsed:.0f} s)")
            last_status, last_line = found.status, time.monotonic()
        if found.status == SUCCESS:
            return found.status
        if found.status in FAILED_STATUSES:
            raise DeployerError(f"the build of {deployment}/{version} {found.status}: {found.error_message or 'no error message'}")
        if elapsed > timeout:
            raise DeployerError(f"the build of {deployment}/{version} is still {found.status} after {timeout:g} s; "
                                f"it goes on at UbiOps: follow it with `python -m deployer status`")
        time.sleep(interval)
        interval = min(interval * 2, MAX_POLL_SECONDS)
