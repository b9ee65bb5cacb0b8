"""What the emulator's backend raises when a call cannot be done, whoever made it: a name that is not
there, a name that is taken, a change that UbiOps' rules (or the emulator's limits) do not allow,
a request its version's full queue refuses for now, or a change the data folder could not take.

The message says which, in words a caller can act on; `emulator.api.errors` turns each kind into
its one HTTP answer, `{"error": "<message>"}`. Storage (`emulator.storage`) and the instances
(`emulator.runtime.pool.VersionUnavailable`) raise their own kinds, answered there too.
"""

from __future__ import annotations


class NotFound(LookupError):
    """An unknown project, deployment, version, revision, environment or request (404); the message
    is UbiOps' (`Deployment not found`)."""


class AlreadyExists(Exception):
    """A name that is already taken by another deployment, version or bucket (409)."""


class NotAllowed(ValueError):
    """A change that breaks a rule, such as a default version that does not exist (400)."""


class QueueFull(Exception):
    """A version already has `maximum_queue_size` requests waiting for an instance (503: try again later)."""


class NotSaved(Exception):
    """A change the data folder could not take (a full disk, a file that cannot be written), and so not
    made (507 Insufficient Storage): made in memory first, it stayed live, a retry was refused as a
    duplicate (409), and the next start had lost it."""

    def __init__(self, path: object, error: OSError) -> None:
        super().__init__(f"The change was not made: the emulator could not write {path} ({error.strerror or error}); "
                         "make room in its data folder, or make it writable, and try again")
