"""What the emulator's backend raises when a call cannot be done, whoever made it: a name that is not
there, a name that is taken, a change that UbiOps' rules (or the emulator's limits) do not allow, or
a request its version's full queue refuses for now.

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
