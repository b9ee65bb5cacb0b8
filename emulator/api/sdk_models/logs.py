"""The body `logs_list` answers, field for field as the `ubiops` 4.15 SDK models it (`LogList`,
`LogMetadata`), rendered from the stored lines (`emulator.log_store`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from emulator.log_store import LogEntry


class LogMetadata(BaseModel):
    """The labels a line has; those not set are left out, as UbiOps leaves them out."""

    model_config = ConfigDict(extra="forbid")

    deployment_name: str | None = None
    deployment_version: str | None = None
    deployment_version_revision_id: str | None = None
    instance_id: str | None = None
    deployment_request_id: str | None = None
    system: bool
    level: str


class LogList(BaseModel):
    timestamp: int
    """Nanoseconds since the epoch."""
    timestamp_str: str
    log: str
    metadata: LogMetadata


def log_list(entry: LogEntry) -> LogList:
    return LogList(
        timestamp=entry.timestamp,
        timestamp_str=str(entry.timestamp),
        log=entry.log,
        metadata=LogMetadata(
            deployment_name=entry.deployment_name,
            deployment_version=entry.deployment_version,
            deployment_version_revision_id=entry.deployment_version_revision_id,
            instance_id=entry.instance_id,
            deployment_request_id=entry.deployment_request_id,
            system=entry.system,
            level=entry.level,
        ),
    )
