"""The logs `logs_list` serves, on disk (SQLite in the data folder): every line a deployment printed
and the emulator's own lines about its versions, with UbiOps' metadata (`LogEntry`).

Adding a line never waits for the disk: lines queue in memory and one writer thread stores them in
batches, so a deployment printing thousands of lines never slows the event loop. A search first
waits for the lines added before it, so what was logged is found (at most `FLUSH_SHARE` of its time:
behind a flood of lines it answers with what is stored by then); it then reads on a connection of
its own, so it never holds up the writer (nor the stop, which waits for the writer), and is stopped
past `SEARCH_SECONDS`. Searches run on `SEARCH_THREADS` threads of their own (`find`), never on the
thread pool the API's other blocking calls share: searches waiting for a flood hold up only each
other. Each line gets a timestamp (ns) later than the one before, so a forward search can go on from
the last line it got (as `ubiops.utils.wait_for_deployment_version(..., stream_logs=True)` does)
without missing or repeating one.

Retention: lines older than `MAX_AGE_SECONDS` (7 days) go, and when the lines take more than
`MAX_BYTES` (100 MB) the oldest tenth goes, until they fit (README, "Logs").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from contract.text import carried, shortened
from emulator.data_files import insert_rows, open_database
from emulator.exceptions import NotAllowed
from emulator.log_query import NO_IDS, Condition, Ids, Window, parse_query

MAX_AGE_SECONDS = 7 * 24 * 3600
MAX_BYTES = 100 * 1024 * 1024
MAX_LINE_CHARACTERS = 256 * 1024
"""A longer line is stored cut to this many characters, with its length (`add`): one 254 MB line took more than
the whole store's MAX_BYTES, and its retention dropped every other line of the project's. What a deployment
prints is stored in pieces of less than 128 KiB (`instance.LOG_LINE_LIMIT`), never cut here."""
BATCH = 1000
"""At most this many lines per transaction, so a search waits for one batch at most."""
GATHER_SECONDS = 0.05
"""How long the writer lets lines gather after the first before it writes them in one transaction:
a line per request then costs a queue put, not a thread wake-up and a commit each (a search waits
this much longer at most)."""
SEARCH_SECONDS = 4.0
"""A search still going after this long is stopped and refused (400): a costly query keeps a thread and
the disk busy no longer, and one going on when the emulator is stopped is answered within the 5 s the
stop gives running calls. A full 100 MB of lines takes about 1.5 s to match against a pattern."""
PROGRESS_STEPS = 10_000
"""SQLite asks whether the search is past its time every this many steps (about a millisecond); each
regular expression's match asks too, since one can take longer (`log_query.REGEX_MEMORY`)."""
FLUSH_SHARE = 0.5
"""The part of a search's time it may wait for the lines added before it to be stored: a few batches
at most normally (well under a second); behind a flood (500k lines printed in 7 s took the writer
~20 s) the search answers with the lines stored by then, and keeps the rest of its time to match them."""
SEARCH_THREADS = 2
"""Threads that run searches (`find`): more searches at once wait for one of them."""
CLOSE_SECONDS = 2.0
"""How long the stop goes on storing the lines still queued; the rest are dropped, with a warning that
says how many (after a flood of 500k lines, storing them all held the emulator's stop for 23 s)."""
BUSY_SECONDS = 5.0
"""How long the writer waits for another connection's write (another program's, the sqlite3 shell in a
transaction) to end before its batch fails."""
INFO, ERROR = "info", "error"

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    timestamp INTEGER NOT NULL,
    project TEXT NOT NULL,
    log TEXT NOT NULL,
    system TEXT NOT NULL,
    level TEXT NOT NULL,
    deployment_name TEXT,
    deployment_version TEXT,
    deployment_version_revision_id TEXT,
    instance_id TEXT,
    deployment_request_id TEXT
);
CREATE INDEX IF NOT EXISTS logs_by_project ON logs (project, timestamp);
CREATE INDEX IF NOT EXISTS logs_by_time ON logs (timestamp);
CREATE INDEX IF NOT EXISTS logs_by_request ON logs (deployment_request_id);
"""

log = logging.getLogger("emulator.log_store")


@dataclass(frozen=True)
class LogEntry:
    """One log line, with the metadata UbiOps gives it (`LogMetadata`; what is None is not set)."""

    timestamp: int
    """Nanoseconds since the epoch, as UbiOps' `timestamp`."""
    project: str
    log: str
    system: bool
    """True for the emulator's own lines, False for what the deployment printed."""
    level: str
    deployment_name: str | None = None
    deployment_version: str | None = None
    deployment_version_revision_id: str | None = None
    instance_id: str | None = None
    deployment_request_id: str | None = None


_COLUMNS = [f.name for f in dataclasses.fields(LogEntry)]
assert _COLUMNS[0] == "timestamp", "the writer sets it"
_STOP = object()


class LogStore:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, max_age_seconds: int = MAX_AGE_SECONDS,
                 search_seconds: float = SEARCH_SECONDS, close_seconds: float = CLOSE_SECONDS) -> None:
        self._path = path
        self._db = open_database(path, SCHEMA, "deployment logs", BUSY_SECONDS)
        """The writer's (a search opens its own)."""
        self._search_seconds = search_seconds
        self._close_seconds = close_seconds
        self._store_until: float | None = None
        """Set by the stop: when the writer drops what is still queued."""
        self._max_bytes = max_bytes
        self._max_age_ns = max_age_seconds * 1_000_000_000
        self._queue_lock = threading.Lock()
        """Held to queue: nothing is queued after the writer's stop."""
        self._last_timestamp = self._db.execute("SELECT coalesce(max(timestamp), 0) FROM logs").fetchone()[0]
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._searching = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="log-search")
        self._writer = threading.Thread(target=self._write_queued, name="log-writer", daemon=True)
        self._writer.start()

    def add(self, entry: LogEntry) -> None:
        """Queue a line to be stored (it is, within a batch, cut to MAX_LINE_CHARACTERS); returns at once."""
        if len(entry.log) > MAX_LINE_CHARACTERS:
            entry = dataclasses.replace(entry, log=shortened(entry.log, MAX_LINE_CHARACTERS))
        with self._queue_lock:
            if self._closed:
                return
            self._queue.put(entry)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every line added before this call is stored, at most `timeout` seconds (None: for
        as long as that takes); whether they are."""
        written = threading.Event()
        with self._queue_lock:
            if self._closed:
                return True
            self._queue.put(written)
        return written.wait(timeout)

    async def find(self, project: str, query: str, window: Window, limit: int, ids: Ids = NO_IDS) -> list[LogEntry]:
        """`search` for the lines `query` selects (NotAllowed if it does not parse; `ids` gives the lines'
        `deployment_id` and `deployment_version_id`), on the searches' own threads: compiling its 500 regular
        expressions takes a moment too."""
        def parse_and_search() -> list[LogEntry]:
            return self.search(project, parse_query(query, ids), window, limit)
        return await asyncio.wrap_future(self._searching.submit(parse_and_search))

    def search(self, project: str, condition: Condition, window: Window, limit: int) -> list[LogEntry]:
        """A project's lines in `window` that meet `condition`, at most `limit`, in the window's order;
        NotAllowed if that takes more than the search's time. Blocks on the disk: call it in a thread
        (`find`)."""
        deadline = _Deadline(self._search_seconds)
        if not self.flush(self._search_seconds * FLUSH_SHARE):
            log.warning("log search: lines are still being stored; answered with those stored so far")
        order = "DESC" if window.newest_first else "ASC"
        db = sqlite3.connect(self._path)  # WAL: it reads what was committed while the writer goes on
        try:
            db.set_progress_handler(deadline.reached, PROGRESS_STEPS)
            db.create_function("label_matches", 2, deadline.guard(condition.label_matches), deterministic=True)
            db.create_function("line_matches", 2, deadline.guard(condition.line_matches), deterministic=True)
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM logs WHERE project = ? AND timestamp BETWEEN ? AND ? "
                f"AND ({condition.sql}) ORDER BY timestamp {order} LIMIT ?",
                (project, window.first, window.last, *condition.params, limit),
            ).fetchall()
        except sqlite3.OperationalError:
            if not deadline.passed:
                raise
            raise NotAllowed(f"query: searching took more than {self._search_seconds:g} s and was stopped; narrow "
                             "the window (start and end), or add a label filter for fewer lines to match") from None
        finally:
            db.close()
        return [_entry(row) for row in rows]

    def close(self) -> None:
        """Store what is queued (for `close_seconds` at most: the rest is dropped, saying how many lines),
        then stop the writer; lines added later are dropped."""
        with self._queue_lock:
            if self._closed:
                return
            self._closed = True
            self._store_until = time.monotonic() + self._close_seconds
            self._queue.put(_STOP)
        self._writer.join()
        self._searching.shutdown(wait=False, cancel_futures=True)
        self._db.close()

    def _write_queued(self) -> None:
        behind = False  # the last batch was full: lines are waiting already, none need gathering
        while True:
            batch: list[LogEntry] = []
            waiting: list[threading.Event] = []
            item = self._queue.get()
            if (item is not _STOP and not isinstance(item, threading.Event) and self._store_until is None
                    and not behind):
                # Let more lines come, without waking for each (behind a flood this pause before every
                # batch of 1000 lines made storing 500k lines take 25 s longer).
                time.sleep(GATHER_SECONDS)
            while True:
                if item is _STOP:
                    self._write(batch)
                    for event in waiting:
                        event.set()
                    return
                if isinstance(item, threading.Event):
                    waiting.append(item)
                elif isinstance(item, LogEntry):
                    batch.append(item)
                if len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            behind = len(batch) >= BATCH
            self._write(batch)
            for event in waiting:
                event.set()
            if self._store_until is not None and time.monotonic() >= self._store_until:
                self._drop_queued()
                return

    def _drop_queued(self) -> None:
        """At the stop, past its time: drop the lines still queued, up to the stop, saying how many."""
        dropped = 0
        while (item := self._queue.get()) is not _STOP:
            if isinstance(item, threading.Event):
                item.set()
            else:
                dropped += 1
        if dropped:
            log.warning("%d log line(s) were not stored: the emulator stopped before it could store them "
                        "(within %g s)", dropped, self._close_seconds)

    def _write(self, batch: list[LogEntry]) -> None:
        if not batch:
            return
        rows = []
        for entry in batch:  # timestamps made unique here, in the writer, rather than as each line is added
            self._last_timestamp = max(entry.timestamp, self._last_timestamp + 1)
            rows.append((self._last_timestamp, *(_value(getattr(entry, column)) for column in _COLUMNS[1:])))
        try:
            self._db.execute("BEGIN")
            insert_rows(self._db, f"INSERT INTO logs ({', '.join(_COLUMNS)})", rows)
            self._prune()
            self._db.execute("COMMIT")
        except Exception:  # the writer must outlive any batch: gone, it would hold every later search, and the stop
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            log.exception("%d log line(s) could not be stored", len(batch))

    def _prune(self) -> None:
        """Apply the retention: drop lines past their age, then the oldest while the lines are too large."""
        self._db.execute("DELETE FROM logs WHERE timestamp < ?", (time.time_ns() - self._max_age_ns,))
        while self._used_bytes() > self._max_bytes:
            low, high = self._db.execute("SELECT min(id), max(id) FROM logs").fetchone()
            if low is None:
                return
            self._db.execute("DELETE FROM logs WHERE id <= ?", (low + (high - low) // 10,))

    def _used_bytes(self) -> int:
        # One statement, not a PRAGMA each: every statement lets go of the GIL (`insert_rows`).
        return int(self._db.execute("SELECT (page_count - freelist_count) * page_size "
                                    "FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()").fetchone()[0])


class _Deadline:
    """When a search must end; past it every check says so, and SQLite stops the statement."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds
        self.passed = False

    def reached(self) -> bool:
        self.passed = self.passed or time.monotonic() >= self._at
        return self.passed

    def guard(self, match: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
        """`match`, checking the time before each call: one can take a while, and SQLite's progress handler
        only runs between its steps."""
        def guarded(pattern: str, text: str) -> bool:
            if self.reached():
                raise TimeoutError("past the search's time")  # SQLite ends the statement
            return match(pattern, text)
        return guarded


def _value(value: object) -> object:
    """A column's value: `system` is stored as the label's text, `true` or `false`; text as SQLite takes
    it (a file name Python could not decode, in a message, with its lone surrogate escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return carried(value) if isinstance(value, str) else value


def _entry(row: tuple) -> LogEntry:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["system"] = values["system"] == "true"
    return LogEntry(**values)
