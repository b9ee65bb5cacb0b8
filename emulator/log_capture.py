"""From the emulator's log to the logs `logs_list` serves: a `logging.Handler` that stores each line
about a project's deployment in the `LogStore`, with UbiOps' metadata.

A line is about a deployment when it was logged with a `project` field (`Launch.log_fields`: the
instances' lines, what the deployment printed, a version failing to start; builds and request ends
add theirs). What the deployment printed also carries `stream` and `printed` (the line as printed,
without the request's tag the console shows before it): it is a user line, level `error` from stderr and `info` from stdout.
Every other such line is a system line, `error` from WARNING up. Lines without a project (uvicorn's,
the emulator's start-up) stay in the emulator's log only.
"""

from __future__ import annotations

import logging

from emulator.log_store import ERROR, INFO, LogEntry, LogStore

NANOSECONDS = 1_000_000_000
CAPTURED_LOGGER = "emulator"


class LogCapture(logging.Handler):
    def __init__(self, store: LogStore) -> None:
        super().__init__()
        self.store = store

    def emit(self, record: logging.LogRecord) -> None:
        project = getattr(record, "project", None)
        if not project:
            return
        try:
            self.store.add(entry(record, project))
        except Exception:  # a handler must never raise into the code that logged
            self.handleError(record)


def entry(record: logging.LogRecord, project: str) -> LogEntry:
    """The stored form of a log line about `project`."""
    stream = getattr(record, "stream", None)
    if stream is None:
        text, system, level = record.getMessage(), True, ERROR if record.levelno >= logging.WARNING else INFO
    else:
        text, system, level = record.printed, False, ERROR if stream == "stderr" else INFO  # type: ignore[attr-defined]
    return LogEntry(
        timestamp=round(record.created * NANOSECONDS),
        project=project,
        log=text,
        system=system,
        level=level,
        deployment_name=getattr(record, "deployment", None),
        deployment_version=getattr(record, "version", None),
        deployment_version_revision_id=getattr(record, "revision_id", None),
        instance_id=getattr(record, "instance_id", None),
        deployment_request_id=getattr(record, "request_id", None),
    )


def capture_logs(store: LogStore) -> LogCapture:
    """Start storing the emulator's lines about deployments in `store`; `release_logs` stops it."""
    handler = LogCapture(store)
    logging.getLogger(CAPTURED_LOGGER).addHandler(handler)
    return handler


def release_logs(handler: LogCapture) -> None:
    logging.getLogger(CAPTURED_LOGGER).removeHandler(handler)
