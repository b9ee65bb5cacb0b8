"""A revision's build statuses as UbiOps names them [SDK docs: `queued`, `building`, `success`,
`failed`; web: revisions-building, which shows `deploying` too; `ubiops.utils` waits until `success`
and gives up at `failed` or `cancelled`]. The emulator goes `queued` → `building` → `deploying` (its
instances starting) → `success` or `failed`; the deployer follows a build until it ends either way.
"""

from __future__ import annotations

from typing import Literal, get_args

QUEUED, BUILDING, DEPLOYING, SUCCESS, FAILED, CANCELLED = "queued", "building", "deploying", "success", "failed", "cancelled"
EmulatedStatus = Literal["queued", "building", "deploying", "success", "failed"]
"""The statuses the emulator gives a revision (and its catalog checks a saved one against)."""
UNFINISHED = (QUEUED, BUILDING, DEPLOYING)
"""Before its build ends: queued, building its environment, deploying (its instances starting, `__init__` running)."""
MAX_ERROR_LENGTH = 1024
"""The longest `error_message` a revision may hold: the SDK refuses a longer one, failing the
`revisions_get` and `wait_for_deployment_version` that read it."""
FAILED_STATUSES = (FAILED, CANCELLED)
"""A build that ended without a revision to serve."""

assert get_args(EmulatedStatus) == (*UNFINISHED, SUCCESS, FAILED)
