"""Messages between the server and a worker: one JSON object per line over a socket pair.

JSON (not pickle) so that output a caller could not receive is caught in the worker, where the
deployment produced it, with a clear message.
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_BYTES = 512 * 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    """One line of JSON; raises TypeError/ValueError for what JSON cannot carry (objects, NaN)."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    return json.loads(line)
