"""Deployment requests as UbiOps names them: their statuses, and what a version keeps of them and
for how long, its `request_retention_mode` and `request_retention_time` [docs: requests, request
settings].

A request is `pending` until an instance takes it, `processing` while it runs, then `completed`,
`failed` or `cancelled`.
"""

from __future__ import annotations

from typing import Literal, get_args

PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED = "pending", "processing", "completed", "failed", "cancelled"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED)
UNFINISHED = (PENDING, PROCESSING)

KEEP_NOTHING, KEEP_METADATA, KEEP_ALL = "none", "metadata", "full"
RetentionMode = Literal["none", "metadata", "full"]
RETENTION_MODES: tuple[str, ...] = get_args(RetentionMode)
"""`none` keeps no record, `metadata` the record without its input and output, `full` everything."""

RETENTION_TIME = 604800
"""Seconds a version keeps its requests unless its `request_retention_time` says otherwise (a week)."""
MAX_RETENTION_TIME = 2419200
"""The longest `request_retention_time` UbiOps accepts (28 days)."""
