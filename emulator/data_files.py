"""The data folder's own files (the SQLite databases, `buckets.json`), opened so that a damaged one
stops the start with a line naming it and what to do, never a traceback, and is left as it was."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class UnreadableDataFile(ValueError):
    """A file of the data folder the emulator cannot read; the message names it and the way out."""


def open_database(path: Path, schema: str, holds: str, busy_seconds: float = 5.0) -> sqlite3.Connection:
    """A connection to the SQLite database at `path` (made with `schema` if new), in WAL mode; `holds`
    says what it keeps, for the message if it cannot be read. The file is its owner's alone (0600, as
    SQLite makes its -wal and -shm files too): it holds requests' input and output, or what deployments
    printed, and a data folder of the user's own making may be open to others (0755)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)  # one made by an earlier emulator, before this rule
    except OSError:
        pass  # cannot be made or read: sqlite3 says so, below
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_seconds)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise UnreadableDataFile(f"the {holds} in {path} cannot be read ({exc}); move it away, with its -wal and -shm "
                                 "files, to start without it") from None
    return db


def insert_rows(db: sqlite3.Connection, insert: str, rows: Sequence[Sequence[object]], conflict: str = "") -> None:
    """`insert` ("INSERT INTO t (a, b)") of every row, `conflict` its ON CONFLICT clause if any: one
    statement of many rows, as many as SQLite binds at once, rather than `executemany`'s one step per row.

    Each step lets go of Python's GIL. The log writer's thread stepped once per stored line while
    the event loop served requests, and the two took turns 2.8 times per request (voluntary context
    switches, from /proc; 1.1 since): at c=16, trivial requests, 0.52 -> 0.46 ms of the server's CPU
    each, +11 % throughput (medians of five alternated runs).
    """
    if not rows:
        return
    width = len(rows[0])
    row = f"({', '.join('?' * width)})"
    per_statement = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        db.execute(f"{insert} VALUES {', '.join([row] * len(chunk))} {conflict}",
                   [value for values in chunk for value in values])


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
