"""The emulator's log on stderr: lines for people (`--log-format text`), or one JSON object per line
for log shippers (`--log-format json`).

A JSON line has `time` (UTC, ISO 8601), `level`, `logger` and `message` (the text line's message),
`exception` when there is one, and the fields the line was logged with (`extra=`): the deployment's
own output and the instances' lines carry `deployment`, `version` and `instance`, and `request_id`
for what it printed during a request; the line that ends each request carries `deployment`,
`version`, `instance`, `request_id`, `status` and `duration_seconds`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FIELDS = ("deployment", "version", "instance", "request_id", "status", "duration_seconds")
"""The `extra=` fields a JSON line carries, when a line was logged with them (and they are not None)."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure(log_format: str) -> None:
    """Log INFO and above to stderr, uvicorn's lines included, in `log_format` (one of LOG_FORMATS)."""
    # Neither format prints where a line was logged from, nor its thread or process: not collecting
    # them (the logging HOWTO's "Optimization") saves ~10 us of the ~25 us each line costs, and a
    # request ends with one, a deployment prints many.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
