"""The deployer's failures: a message the user can act on, printed as one line."""

from __future__ import annotations

from collections.abc import Iterable


class DeployerError(Exception):
    """Stops the command; `python -m deployer` prints the message and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, changes: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.changes = list(changes)
        """What a push had changed at UbiOps when it stopped (also in the message), for `--output json`."""


class ApiError(DeployerError):
    """A call the UbiOps API refused, with its HTTP status (so callers can tell 'missing' from 'broken')."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Interrupted(DeployerError):
    """Ctrl-C; the message says what state UbiOps was left in."""

    exit_code = 130
