"""The emulator's log on stderr: lines for people (`--log-format text`), or one JSON object per line
for log shippers (`--log-format json`).

A JSON line has `time` (UTC, ISO 8601), `level`, `logger` and `message` (the text line's message),
`exception` when there is one, and the fields the line was logged with (`extra=`): the deployment's
own output and the instances' lines carry `deployment`, `version`, `revision_id` (what they run) and
`instance`, the deployment's output also `stream` (`stdout` or `stderr`: what `logs_list` tells apart by
`level`, `info` or `error`), and `request_id` for what it printed during a request; the line that ends each request carries `deployment`,
`version`, `instance`, `request_id`, `status` and `duration_seconds`.

uvicorn's access lines (`--access-log`) name each call's path with its query, less any credential in
it: a signed file URL's `signature` opens the file without the token for an hour, and the token
wherever a client put it. The token is masked in every line of either format besides (message,
traceback, fields): a refusal quotes the path and the Host or Origin a client sent, an error line the
path, and any of them may hold it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from contract.secrets import masked, masked_forms, secret_forms

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FIELDS = ("deployment", "version", "revision_id", "instance", "stream", "request_id", "status", "duration_seconds")
"""The `extra=` fields a JSON line carries, when a line was logged with them (and they are not None)."""
QUERY_CREDENTIALS = ("signature", "token", "access_token", "api_key")
"""Query parameters (named in any case) that are proof enough to be served (`emulator.signing`), or
where a client may have put a token the API takes only as a header: never logged."""
REDACTED = "***"


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT's lines, with each of `forms` (the token's spellings, `contract.secrets.secret_forms`)
    masked wherever it is in the line."""

    def __init__(self, forms: list[str]) -> None:
        super().__init__(TEXT_FORMAT)
        self.forms = forms

    def format(self, record: logging.LogRecord) -> str:
        return masked_forms(super().format(record), self.forms)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with each of `forms` masked in its text values (masked before they are
    written as JSON, which spells a quote or a backslash in the token another way)."""

    def __init__(self, forms: list[str]) -> None:
        super().__init__()
        self.forms = forms

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
        if self.forms:
            entry = {name: masked_forms(value, self.forms) if isinstance(value, str) else value for name, value in entry.items()}
        return json.dumps(entry, default=str)


class AccessLineRedaction(logging.Filter):
    """Masks the credentials in uvicorn's access line, whose third argument is the path with its query."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 2 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], redacted(record.args[2], self.token), *record.args[3:])
        return True


def redacted(path: str, token: str | None = None) -> str:
    """`path` with the value of each QUERY_CREDENTIALS parameter and of each parameter holding `token`
    masked, names and values read as the server reads them (percent-decoded, names in any case), so no
    spelling of them gets through; then `token` anywhere else (the path, a parameter's name) as
    `contract.secrets` masks it."""
    path, mark, query = path.partition("?")
    parameters = (part.partition("=") for part in query.split("&"))
    line = path + mark + "&".join(name + equals + (REDACTED if value and _credential(name, value, token) else value)
                                  for name, equals, value in parameters)
    return masked(line, [token]) if token else line


def _credential(name: str, value: str, token: str | None) -> bool:
    return unquote_plus(name).lower() in QUERY_CREDENTIALS or bool(token and token in unquote_plus(value))


def configure(log_format: str, token: str | None = None) -> None:
    """Log INFO and above to stderr, uvicorn's lines included, in `log_format` (one of LOG_FORMATS);
    the API's `token` masked in every line, in one place (the formatter), so no line added later shows
    it, and in uvicorn's access lines with the other credentials of a query."""
    # Neither format prints where a line was logged from, nor its thread or process: not collecting
    # them (the logging HOWTO's "Optimization") saves ~10 us of the ~25 us each line costs, and a
    # request ends with one, a deployment prints many.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    forms = secret_forms([token]) if token else []
    handler.setFormatter(JsonFormatter(forms) if log_format == "json" else TextFormatter(forms))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("uvicorn.access").addFilter(AccessLineRedaction(token))
