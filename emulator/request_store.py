"""Deployment requests on disk (SQLite in the data folder), so history survives a restart.

A request the emulator was running when it stopped is marked `failed` at the next start, with a
reason, rather than left `processing` forever; so is a direct request still waiting (its caller is
gone). A batch request no instance had taken stays `pending`, to be queued again (`unstarted_batch`).
Each request is stored with the moment it expires, set when it is made (`RequestRecord.expires`);
those past it are found here for `emulator.retention` to delete, and so are the files of requests
whose record is not kept (`request_retention_mode: none`), noted in a table of their own so they do
not stay forever.

Writes are grouped: a request's states wait in memory up to FLUSH_DELAY_SECONDS to be written with
the next ones, all in one transaction, and every read or delete writes what waits first. So that a
crash loses no request a caller was answered about, a request that ends is first appended to a
journal beside the database (`answered`: one `write` call, ~0.01 ms with the line's encoding, where
a transaction per request held the event loop ~0.15 ms, a fifth of a trivial request's time under
load: BENCHMARKS.md); the journal is emptied once its requests are in the database, and read back
into it at the next start. A crash loses only requests no caller had an answer to, of its last
FLUSH_DELAY_SECONDS.

The connection is the event loop's alone. What answers a request's metadata (a list, a
`metadata_only` get, cancel, delete) reads only the metadata columns on it (`list`, `get(data=False)`):
a request's input and output can be hundreds of MB, read and decoded for their size (a list of ten
100 MB requests held the event loop 8 s). What answers them reads whole records in a worker thread,
on a second connection of that thread's (`read`; WAL mode: it neither waits for the loop's writes
nor holds them up), once the loop has written what waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.requests import COMPLETED, FAILED, PENDING, UNFINISHED
from contract.text import carried, is_unicode_text
from emulator.data_files import insert_rows, open_database

log = logging.getLogger("emulator.requests")

MAX_VARIABLES = 500
"""Ids bound in one statement, well under SQLite's limit."""

DIRECT, BATCH = "direct", "batch"
"""A request's `mode`: answered to its caller, or queued to be collected later."""
INTERRUPTED = "The emulator stopped before this request finished"
FLUSH_DELAY_SECONDS = 0.05
"""A request that ends sooner is written once instead of three times (pending, processing, its end),
with the others of those 50 ms in one transaction."""
BUSY_SECONDS = 5.0
"""How long a write waits for another connection's (the retention sweep's, another program's) to end."""
RETRY_SECONDS = 1.0
"""After a write that failed (the database locked by another program, a full disk), the next try."""
JOURNAL_SUFFIX = ".answered"
"""The journal of a database `requests.sqlite3` is `requests.sqlite3.answered`: JSON lines, one
per request answered since the last write."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    deployment TEXT NOT NULL,
    version TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    timeout INTEGER NOT NULL,
    time_created TEXT NOT NULL,
    time_started TEXT,
    time_completed TEXT,
    input_size INTEGER,
    output_size INTEGER,
    request_data TEXT,
    result TEXT,
    error_message TEXT,
    keeps_data INTEGER NOT NULL,
    expires TEXT
);
CREATE INDEX IF NOT EXISTS requests_by_deployment ON requests (project, deployment, time_created);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (time_created);
CREATE INDEX IF NOT EXISTS requests_by_version ON requests (project, deployment, version, time_created);
CREATE TABLE IF NOT EXISTS unrecorded_files (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    deployment TEXT NOT NULL,
    version TEXT NOT NULL,
    time_created TEXT NOT NULL,
    expires TEXT
);
"""
EXPIRY_INDEXES = """
CREATE INDEX IF NOT EXISTS requests_by_expiry ON requests (expires);
CREATE INDEX IF NOT EXISTS unrecorded_files_by_expiry ON unrecorded_files (expires);
"""
"""Made once the `expires` columns are there: a history an earlier emulator made has them added first."""
VersionNames = tuple[str, str, str]
"""A version as the history names it: (project, deployment, version)."""


@dataclass
class RequestRecord:
    id: str
    project: str
    deployment: str
    version: str
    mode: str
    status: str
    timeout: int
    time_created: datetime
    keeps_data: bool
    time_started: datetime | None = None
    time_completed: datetime | None = None
    input_size: int | None = None
    output_size: int | None = None
    request_data: Any = None
    result: Any = None
    error_message: str | None = None
    expires: datetime | None = None
    """When the retention sweep deletes it (once it has ended): its creation plus its version's
    `request_retention_time` as it was then, as on UbiOps, where changing that time does not
    influence requests already stored. None in a history an earlier emulator made, until the sweep
    dates it (`RequestStore.date_undated`)."""
    stored: bool = True
    _texts: dict[str, tuple[Any, str]] = field(default_factory=dict, repr=False, compare=False)
    """`json_text`'s, by column: the value it last encoded, and that value's JSON text."""

    @property
    def success(self) -> bool:
        return self.status == COMPLETED

    def json_text(self, column: str) -> str:
        """`request_data` or `result` as JSON text, encoded once for as long as it is the same value: a
        large input was encoded on the event loop for its size and again at each write of its record
        (each ~0.5 s for 20 MB of doubles)."""
        value = getattr(self, column)
        kept = self._texts.get(column)
        if kept is None or kept[0] is not value:
            kept = self._texts[column] = (value, json.dumps(value))
        return kept[1]

    def size_of(self, column: str) -> int:
        """The bytes of `request_data` or `result`, as `input_size` and `output_size` count them: a string's
        in UTF-8, other data's as JSON text (ASCII: `json.dumps` escapes the rest)."""
        value = getattr(self, column)
        return len(value.encode()) if isinstance(value, str) else len(self.json_text(column))


_COLUMNS = [f.name for f in fields(RequestRecord) if f.name not in ("stored", "_texts")]
assert _COLUMNS[-1] == "expires", "the column an earlier emulator's journal lines lack (`_journal_row`)"
_JSON_COLUMNS = ("request_data", "result")
_METADATA_COLUMNS = [column for column in _COLUMNS if column not in _JSON_COLUMNS]
"""A request's columns but its input and output, which a record read with them alone leaves None."""
_TIME_COLUMNS = ("time_created", "time_started", "time_completed", "expires")
_INSERT = f"INSERT INTO requests ({', '.join(_COLUMNS)})"
_ON_CONFLICT = f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{column} = excluded.{column}' for column in _COLUMNS if column != 'id')}"
"""A request inserted, or the one of its id updated (keeping its rowid, which orders requests created together)."""


class RequestStore:
    def __init__(self, path: Path, journal: bool = True) -> None:
        """`journal=False`: a second connection (the retention sweep's), which never writes requests
        that end and leaves the server's journal alone."""
        self._path = path
        self._db = open_database(path, SCHEMA, "request history", BUSY_SECONDS)
        self._reader: sqlite3.Connection | None = None
        """`read`'s connection, opened by its first read, used only in worker threads, holding `_reading`."""
        self._reading = threading.Lock()
        self._closed = False
        _add_expiry(self._db)
        self._unwritten: dict[str, RequestRecord | tuple[Any, ...]] = {}
        """Records changed since the last write, by id: each is written as it is when `flush` runs, or,
        for a request that ended, as the row its journal line holds (it no longer changes)."""
        self._timer: asyncio.TimerHandle | None = None
        self._journal = -1
        self._journaled = False
        """Whether the journal holds lines the database may not have."""
        self._journal_size = 0
        """The journal's length: its whole lines, where an append cut short is cut back to (`_append`)."""
        self._journal_failing = False
        """Whether the last append failed (logged once, until one succeeds)."""
        if journal:
            journal_path = path.with_name(path.name + JOURNAL_SUFFIX)
            self._journal = os.open(journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._recover(journal_path.read_bytes())
            self._journal_size = os.fstat(self._journal).st_size

    def _recover(self, journal: bytes) -> None:
        """Write what the journal holds (the requests answered just before a crash) into the database.
        A last line cut short was never answered: the crash came while it was being appended. A line
        that does not read (a write cut short by a full disk) is left out, not a reason not to start."""
        lines = journal.split(b"\n")[:-1]
        rows = []
        for line in lines:
            row = _journal_row(line)
            if row is not None:
                rows.append(row)
            else:
                log.warning("a line of the requests' journal could not be read; that request is not kept")
        if journal:  # emptied once written, a last line cut short too: the next line would be joined to it
            self._journaled = True
            try:
                self._write_rows(rows)
            except sqlite3.IntegrityError:  # a line that reads but does not fit (edited by hand): each in turn
                self._write_rows([row for row in rows if self._fits(row)])

    def _fits(self, row: tuple[Any, ...]) -> bool:
        """Whether the database takes `row` (tried, and undone)."""
        self._db.execute("BEGIN")
        try:
            insert_rows(self._db, _INSERT, [row], _ON_CONFLICT)
        except sqlite3.IntegrityError:
            log.warning("a line of the requests' journal does not fit the history; that request is not kept")
            return False
        finally:
            self._db.execute("ROLLBACK")
        return True

    def mark_interrupted(self) -> int:
        """Fail the requests a previous run left unfinished, but the batch requests still `pending` (no
        instance had taken them: `unstarted_batch` queues them again); how many there were. Each is
        completed now, at the restart: when the previous run ended (killed outright, say) is not known. One
        that never started keeps no `time_started`, as any request failed before an instance took it."""
        self.flush()
        cursor = self._db.execute(
            f"UPDATE requests SET status = ?, error_message = ?, time_completed = ? "
            f"WHERE status IN ({', '.join('?' * len(UNFINISHED))}) AND NOT (status = ? AND mode = ?)",
            (FAILED, INTERRUPTED, datetime.now(UTC).isoformat(), *UNFINISHED, PENDING, BATCH),
        )
        return cursor.rowcount

    def unstarted_batch(self) -> list[RequestRecord]:
        """The batch requests still `pending`, whole, in the order they were made: at a start, those no
        instance had taken when the emulator last stopped, to be queued again. UbiOps keeps a queued
        batch request through an outage; failing them lost work its user had to find and send again."""
        self.flush()
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE status = ? AND mode = ? "
                                "ORDER BY time_created, rowid", (PENDING, BATCH))
        return [_from_row(row) for row in rows]

    def add(self, record: RequestRecord) -> None:
        """Record a new request (written within FLUSH_DELAY_SECONDS, or at the next read or `flush`)."""
        self.update(record)

    def update(self, record: RequestRecord) -> None:
        """Record a request's new state (written as `add` writes it)."""
        self._keep(record.id, record)

    def _keep(self, request_id: str, state: RequestRecord | tuple[Any, ...]) -> None:
        self._unwritten[request_id] = state
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY_SECONDS, self._flush_in_time)
            except RuntimeError:  # no event loop (a script, a test): write at once
                self.flush()

    def _flush_in_time(self) -> None:
        """The timer's write: one that fails is tried again later, its records kept meanwhile."""
        self._timer = None
        try:
            self.flush()
        except sqlite3.Error as exc:
            log.warning("the request history could not be written (%s); trying again in %.0f s", exc, RETRY_SECONDS)
            self._timer = asyncio.get_running_loop().call_later(RETRY_SECONDS, self._flush_in_time)

    def flush(self) -> None:
        """Write every record changed since the last write, in one transaction; if that fails, they stay
        to be written (and the journal keeps the answered ones) until a write succeeds."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unwritten:
            pending, self._unwritten = self._unwritten, {}
            try:
                self._write_rows([row if isinstance(row, tuple) else _to_row(row) for row in pending.values()])
            except sqlite3.Error:
                self._unwritten = {**pending, **self._unwritten}
                raise

    def _write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Write these rows in one transaction; then the journal's are all in the database."""
        with self._db:
            self._db.execute("BEGIN")
            insert_rows(self._db, _INSERT, rows, _ON_CONFLICT)
        if self._journaled:
            os.ftruncate(self._journal, 0)
            self._journaled, self._journal_size = False, 0

    def answered(self, record: RequestRecord) -> None:
        """Keep a request that ended, before it is answered: in the journal now, in the database with
        the next write (which has it even if the journal cannot be written)."""
        row = _to_row(record)
        self._keep(record.id, row)
        if self._journal >= 0:
            self._append(json.dumps(row, separators=(",", ":")).encode() + b"\n", record.id)

    def _append(self, line: bytes, request_id: str) -> None:
        """Append `line` to the journal whole, or not at all: `os.write` may write part of it (a disk filling
        up), and a part left there would spoil the next line too. A line that cannot be written (a full disk)
        is logged, not raised: its request is answered, and kept in memory until the database write; only a
        crash before that loses it. Raised, the caller got a 500 without the request's id, while the
        request was kept as it ended (`completed`)."""
        try:
            left = memoryview(line)
            while left:
                written = os.write(self._journal, left)
                if written == 0:
                    raise OSError(errno.EIO, "nothing written")
                left = left[written:]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._journal, self._journal_size)
            if not self._journal_failing:
                log.warning("the requests' journal could not be written (%s): request %s and those after it, until "
                            "it can be, are kept in memory until the history is written, and lost if the emulator "
                            "stops before", exc, request_id)
            self._journal_failing = True
            return
        self._journal_size += len(line)
        self._journaled, self._journal_failing = True, False

    def get(self, request_id: str, data: bool = True) -> RequestRecord | None:
        """A stored request; with `data=False` without its input and output (left None), what the
        event loop may read of a request of any size. Whole, on the loop, only where the data are
        known to be small (tests, scripts): the server reads them with `read`."""
        self.flush()
        columns = _COLUMNS if data else _METADATA_COLUMNS
        row = self._db.execute(f"SELECT {', '.join(columns)} FROM requests WHERE id = ?", (request_id,)).fetchone()
        return _from_row(row, columns) if row else None

    async def read(self, request_ids: Collection[str]) -> dict[str, RequestRecord]:
        """The stored requests of these ids, by id, whole (input and output too), read and decoded in a
        worker thread; the event loop serves other calls meanwhile (a 100 MB request takes ~0.3 s)."""
        self.flush()  # then the thread's connection sees every change made so far
        return await asyncio.to_thread(self._read, list(dict.fromkeys(request_ids)))

    def _read(self, request_ids: list[str]) -> dict[str, RequestRecord]:
        found: dict[str, RequestRecord] = {}
        with self._reading:
            if self._closed:  # the server is stopping: as if none were stored
                return found
            if self._reader is None:
                self._reader = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                                               timeout=BUSY_SECONDS)
            for start in range(0, len(request_ids), MAX_VARIABLES):
                chunk = request_ids[start:start + MAX_VARIABLES]
                rows = self._reader.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM requests WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
                found.update((row[0], _from_row(row)) for row in rows)
        return found

    def note_files(self, record: RequestRecord) -> None:
        """Remember the files of a request whose record is not kept, so they expire like a record."""
        self._db.execute(
            "INSERT OR IGNORE INTO unrecorded_files (id, project, deployment, version, time_created, expires) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (record.id, record.project, record.deployment, record.version, record.time_created.isoformat(),
             record.expires.isoformat() if record.expires else None),
        )

    def delete(self, request_ids: Iterable[str]) -> None:
        """Forget these requests: their records, and the note of their files."""
        self.flush()
        ids = list(request_ids)
        for start in range(0, len(ids), MAX_VARIABLES):
            chunk = ids[start:start + MAX_VARIABLES]
            marks = ", ".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM requests WHERE id IN ({marks})", chunk)
            self._db.execute(f"DELETE FROM unrecorded_files WHERE id IN ({marks})", chunk)

    def ids_of(self, project: str, deployment: str, version: str | None = None) -> list[str]:
        """The ids of a deployment's (or one version's) requests, and of those whose files alone are noted."""
        self.flush()
        where, params = _owned_by(project, deployment, version)
        query = f"SELECT id FROM requests WHERE {where} UNION SELECT id FROM unrecorded_files WHERE {where}"
        return [row[0] for row in self._db.execute(query, params * 2)]

    def rename(self, project: str, deployment: str, version: str | None, new_name: str) -> None:
        """Move a renamed deployment's requests (or, with `version`, a renamed version's) to its new name."""
        self.flush()
        where, params = _owned_by(project, deployment, version)
        column = "deployment" if version is None else "version"
        with self._db:
            self._db.execute("BEGIN")
            for table in ("requests", "unrecorded_files"):
                self._db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", [new_name, *params])

    def expired(self, moment: datetime, limit: int) -> list[str]:
        """At most `limit` ids of ended requests (and of unrecorded files) that expire before `moment`."""
        self.flush()
        query = (f"SELECT id FROM requests WHERE expires < ? AND status NOT IN ({', '.join('?' * len(UNFINISHED))}) "
                 "UNION ALL SELECT id FROM unrecorded_files WHERE expires < ? LIMIT ?")
        return [row[0] for row in self._db.execute(query, (moment.isoformat(), *UNFINISHED, moment.isoformat(), limit))]

    def date_undated(self, retention_times: dict[VersionNames, int], default_time: int) -> int:
        """Give the requests (and unrecorded files) an earlier emulator stored without an expiry one: their
        creation plus their version's retention time in seconds now, or `default_time` for a version no
        longer served. How many there were. Run once, they are then dated as if made under that setting.
        A transaction per MAX_VARIABLES of them: the server's writes wait for none for long (100 000 take
        ~0.9 s in all)."""
        self.flush()
        dated = 0
        for table in ("requests", "unrecorded_files"):
            rows = self._db.execute(
                f"SELECT id, project, deployment, version, time_created FROM {table} WHERE expires IS NULL").fetchall()
            for start in range(0, len(rows), MAX_VARIABLES):
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.executemany(f"UPDATE {table} SET expires = ? WHERE id = ?", [
                        (_after(created, retention_times.get((project, deployment, version), default_time)), request_id)
                        for request_id, project, deployment, version, created in rows[start:start + MAX_VARIABLES]])
            dated += len(rows)
        return dated

    def list(
        self,
        project: str,
        deployment: str | None = None,
        version: str | None = None,
        statuses: tuple[str, ...] = (),
        limit: int = 50,
        offset: int = 0,
        start: datetime | None = None,
        end: datetime | None = None,
        search_id: str | None = None,
    ) -> list[RequestRecord]:
        """Requests of a project, a deployment or one version, newest first, without their input and
        output (`get(data=False)`'s records): a list answers neither."""
        self.flush()
        where, params = ["project = ?"], [project]
        if deployment:
            where.append("deployment = ?")
            params.append(deployment)
        if version:
            where.append("version = ?")
            params.append(version)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if start:
            where.append("time_created >= ?")
            params.append(_as_stored(start))
        if end:
            where.append("time_created <= ?")
            params.append(_as_stored(end))
        if search_id:  # a part of the id, as it is: LIKE read `_` and `%` as wildcards, and refused long patterns (500)
            where.append("instr(id, ?) > 0")
            params.append(search_id.lower())
        rows = self._db.execute(
            f"SELECT {', '.join(_METADATA_COLUMNS)} FROM requests WHERE {' AND '.join(where)} "
            "ORDER BY time_created DESC, rowid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        return [_from_row(row, _METADATA_COLUMNS) for row in rows]

    def close(self) -> None:
        self.flush()
        self._db.close()
        with self._reading:  # once the read under way, if any, has ended
            self._closed = True
            if self._reader is not None:
                self._reader.close()
        if self._journal >= 0:
            os.close(self._journal)


def _to_row(record: RequestRecord) -> tuple[Any, ...]:
    """The record's values in `_COLUMNS` order, as stored (JSON text, ISO times)."""
    row = []
    for column in _COLUMNS:
        value = getattr(record, column)
        if column in _JSON_COLUMNS:
            value = record.json_text(column) if record.keeps_data and value is not None else None
        elif column in _TIME_COLUMNS and value is not None:
            value = value.isoformat()
        elif isinstance(value, str):
            value = carried(value)  # SQLite takes no lone surrogate: it would fail the whole batch, and the next start
        row.append(value)
    return tuple(row)


def _after(stored: str, seconds: int) -> str:
    """A stored time, `seconds` later, as times are stored."""
    return (datetime.fromisoformat(stored) + timedelta(seconds=seconds)).isoformat()


def _add_expiry(db: sqlite3.Connection) -> None:
    """Add the `expires` columns to a history an earlier emulator made (its rows get theirs from the
    retention sweep, `RequestStore.date_undated`), and their indexes."""
    for table in ("requests", "unrecorded_files"):
        if "expires" not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN expires TEXT")
    db.executescript(EXPIRY_INDEXES)


def _owned_by(project: str, deployment: str, version: str | None) -> tuple[str, list[str]]:
    """The WHERE clause, and its values, for the requests of a deployment or of one of its versions."""
    if version is None:
        return "project = ? AND deployment = ?", [project, deployment]
    return "project = ? AND deployment = ? AND version = ?", [project, deployment, version]


def _journal_row(line: bytes) -> tuple[Any, ...] | None:
    """The row a journal line holds, if it is one the history can store and read back: a line edited
    by hand (a list for a text, an integer past 64 bits, a time that is no time) once stopped the start.
    A line an earlier emulator wrote, without `expires`, is taken with none (the sweep dates it)."""
    try:
        row = json.loads(line)
        if isinstance(row, list) and len(row) == len(_COLUMNS) - 1:
            row.append(None)
        if isinstance(row, list) and all(map(_storable, row)):
            _from_row(tuple(row))  # the right number of values, JSON columns that read, times that parse
            return tuple(row)
    except (ValueError, TypeError):
        pass
    return None


def _storable(value: Any) -> bool:
    """Whether SQLite binds `value` as it is: no list or object, no integer past 64 bits, no lone surrogate."""
    if isinstance(value, str):
        return is_unicode_text(value)
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return value is None or isinstance(value, float)


def _as_stored(moment: datetime) -> str:
    """A moment as times are stored, in UTC (a time without an offset is UTC), so that their text's order
    is time's: `+02:00` compared as text once found nothing in a window that held requests. A moment
    UTC's calendar cannot hold (`0001-01-01T00:00:00+14:00`, `9999-12-31T23:59:59-14:00`) is its
    first or last moment, which is before or after every stored time as well."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError:
        return (datetime.min if moment.year == datetime.min.year else datetime.max).replace(tzinfo=UTC).isoformat()


def _from_row(row: tuple, columns: list[str] = _COLUMNS) -> RequestRecord:
    """The record a row of these `columns` holds (without the JSON ones, its data are None)."""
    values = dict(zip(columns, row, strict=True))
    for column in _JSON_COLUMNS:
        if column in values:
            values[column] = json.loads(values[column]) if values[column] is not None else None
    for column in _TIME_COLUMNS:
        values[column] = datetime.fromisoformat(values[column]) if values[column] else None
    values["keeps_data"] = bool(values["keeps_data"])
    return RequestRecord(**values)
