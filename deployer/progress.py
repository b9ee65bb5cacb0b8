"""What the deployer tells its user while it works, and waiting for a revision's build with it.

On a terminal a long wait is one status line redrawn in place (status, seconds so far, a spinner);
each status change stays as a line of its own. Elsewhere (a log, CI) the wait prints a line per
change and a reminder every 30 s: nothing long is silent, and no log fills with redraws. Once the
reader has gone (`| head -1`), what is said is dropped and the command goes on to its end.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import TextIO

from contract.revisions import FAILED_STATUSES, SUCCESS
from deployer.client import Api
from deployer.errors import ApiError, DeployerError

FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 5.0
LIVE_POLL_SECONDS = 1.0
"""On a terminal the status line's seconds tick: poll at least this often."""
REMINDER_SECONDS = 30.0
SPINNER = "|/-\\"


class Reporter:
    """Says a line per event (`say(message)`); on a terminal, also redraws one status line (`status`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._drawn = False

    def __call__(self, message: str) -> None:
        self.end_status()
        self._write(f"{message}\n")

    def end_status(self) -> None:
        """Leave a drawn status line as it is, so what is printed next starts on a line of its own."""
        if self._drawn:
            self._write("\n")
            self._drawn = False

    def status(self, text: str) -> None:
        """Redraw the status line in place (only ever called on a terminal)."""
        self._write(f"\r\033[K{text}")
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            # The reader closed the pipe: stopping a push half way would leave UbiOps half changed, so
            # the stream's file now leads to /dev/null, for this and every later write (the result too).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)


def wait_for_build(api: Api, project: str, deployment: str, version: str, revision: str, timeout: float,
                   say: Callable[[str], None]) -> str:
    """Poll the revision until its build ends; its final status, or DeployerError with the build's error.

    A poll that fails for a reason that may pass (UbiOps unreachable, a 5xx, rate-limited past the
    client's retries, an answer that is not the API's) leaves the build's status unknown for now: the
    wait goes on, saying so, until `timeout`. Any other refusal (401, 403, 404) ends it. The build's
    error is shown without the token or a secret's value (`Api.shown`): a failed `__init__` may quote one."""
    live = say if isinstance(say, Reporter) and say.live else None
    spinner = itertools.cycle(SPINNER)
    started = time.monotonic()
    interval, last_status, last_line = FIRST_POLL_SECONDS, None, started
    unknown: str | None = None
    """Why the last poll did not say how the build stands (None: it did)."""
    while True:
        try:
            found = api.read(f"revision {revision}", "revisions_get", project, deployment, revision, version)
        except ApiError as exc:
            if not _passing(exc.status):
                raise
            found, reason = None, str(exc)
        except DeployerError as exc:  # UbiOps unreachable, or an answer that is not the API's
            found, reason = None, str(exc)
        elapsed = time.monotonic() - started
        if found is None:
            if unknown is None:
                say(f"  build status unknown for now ({elapsed:.0f} s): {reason}; asking again")
                last_status, last_line = None, time.monotonic()  # the next status read is said again
            unknown = reason
            if elapsed > timeout:
                raise DeployerError(f"the build of {deployment}/{version} could not be followed: after {timeout:g} s "
                                    f"UbiOps still does not say how it stands ({unknown}); it may go on at UbiOps: "
                                    "follow it with `python -m deployer status`")
        else:
            unknown = None
            if found.status != last_status:
                say(f"  build {found.status} ({elapsed:.0f} s)")
                last_status, last_line = found.status, time.monotonic()
            elif live:
                live.status(f"  build still {found.status} ({elapsed:.0f} s) {next(spinner)}")
            elif time.monotonic() - last_line >= REMINDER_SECONDS:
                say(f"  build still {found.status} ({elapsed:.0f} s)")
                last_line = time.monotonic()
            if found.status == SUCCESS:
                return found.status
            if found.status in FAILED_STATUSES:
                raise DeployerError(f"the build of {deployment}/{version} {found.status}: "
                                    f"{api.shown(found.error_message or 'no error message')}")
            if elapsed > timeout:
                raise DeployerError(f"the build of {deployment}/{version} is still {found.status} after {timeout:g} s; "
                                    f"it goes on at UbiOps: follow it with `python -m deployer status`")
        time.sleep(min(interval, LIVE_POLL_SECONDS) if live else interval)
        interval = min(interval * 2, MAX_POLL_SECONDS)


def _passing(status: int) -> bool:
    """Whether a refusal with this HTTP status may well pass: the server's fault (5xx), or a rate limit."""
    return status >= 500 or status == 429
