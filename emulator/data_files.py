"""The data folder's own files (the SQLite databases, `buckets.json`), opened so that a damaged one
stops the start with a line naming it and what to do, never a traceback, and is left as it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class UnreadableDataFile(ValueError):
    """A file of the data folder the emulator cannot read; the message names it and the way out."""


def open_database(path: Path, schema: str, holds: str, busy_seconds: float = 5.0) -> sqlite3.Connection:
    """A connection to the SQLite database at `path` (made with `schema` if new), in WAL mode; `holds`
    says what it keeps, for the message if it cannot be read."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_seconds)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise UnreadableDataFile(f"the {holds} in {path} cannot be read ({exc}); move it away, with its -wal and -shm "
                                 "files, to start without it") from None
    return db


def read_json_object(path: Path, holds: str) -> dict[str, Any]:
    """The JSON object in `path` ({} when there is none); `holds` says what it keeps."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UnreadableDataFile(unreadable(path, holds, str(exc))) from None
    if not isinstance(found, dict):
        raise UnreadableDataFile(unreadable(path, holds, f"a JSON {type(found).__name__}, not an object"))
    return found


def unreadable(path: Path, holds: str, problem: str) -> str:
    """Why a data file stops the start, and the way out."""
    return f"the {holds} in {path} cannot be read ({problem}); repair the file, or move it away to start without it"
