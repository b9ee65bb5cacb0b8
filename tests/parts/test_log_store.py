"""In process: the logs backend — the query language and time window `logs_list` takes
(`emulator.log_query`), the SQLite store that answers them and its retention (`emulator.log_store`),
and the handler that turns the emulator's log lines into stored lines (`emulator.log_capture`). No
server; the same rules over HTTP, with the SDK and the CLI, are in tests/test_logs.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import log_store
from emulator.exceptions import NotAllowed
from emulator.log_capture import capture_logs, release_logs
from emulator.log_query import MAX_FILTERS, Condition, Ids, Window, parse_query, time_window
from emulator.log_store import LogEntry, LogStore

SECOND = 1_000_000_000
NOW = time.time_ns()
EVERYTHING = Window(0, 2**62, newest_first=False)


@pytest.fixture
def store(tmp_path) -> Iterator[LogStore]:
    store = LogStore(tmp_path / "logs.sqlite3")
    yield store
    store.close()


def line(text: str, at: int = NOW, project: str = "p", **metadata: object) -> LogEntry:
    return LogEntry(**{"timestamp": at, "project": project, "log": text, "system": False, "level": "info", **metadata})


def search(store: LogStore, query: str = "", window: Window = EVERYTHING, limit: int = 1000, project: str = "p") -> list[str]:
    return [entry.log for entry in store.search(project, parse_query(query), window, limit)]


def test_a_line_is_found_as_soon_as_it_was_added_with_its_metadata(store):
    store.add(line("loading", deployment_name="d", deployment_version="v1", instance_id="i-1",
                   deployment_request_id="r-1", level="error"))
    (found,) = store.search("p", parse_query(""), EVERYTHING, 10)
    assert found == line("loading", deployment_name="d", deployment_version="v1", instance_id="i-1",
                         deployment_request_id="r-1", level="error")
    assert search(store, project="other") == []


def test_the_id_labels_are_those_of_the_deployment_and_version_that_have_the_line_s_names_now(store):
    """The lines keep names; `deployment_id` and `deployment_version_id` were always empty."""
    for deployment, version in (("d", "v1"), ("d", "v2"), ("e", "v1"), ("q'uote", "v1"), ("gone", "v1")):
        store.add(line(f"{deployment} {version}", deployment_name=deployment, deployment_version=version))
    ids = Ids({"d": "id-d", "e": "id-e", "q'uote": "id-'q"},
              {("d", "v1"): "id-d1", ("d", "v2"): "id-d2", ("e", "v1"): "id-e1", ("q'uote", "v1"): "id-'q1"})

    def found(query: str) -> list[str]:
        return [entry.log for entry in store.search("p", parse_query(query, ids), EVERYTHING, 10)]

    assert found('| deployment_id="id-d"') == ["d v1", "d v2"]
    assert found('| deployment_version_id="id-e1" or deployment_version_id="id-\'q1"') == ["e v1", "q'uote v1"]
    assert found('| deployment_id=~"id-[de]" and deployment_version_id!="id-d2"') == ["d v1", "e v1"]
    assert found('| deployment_id="" | deployment_version_id!~"id-.*"') == ["gone v1"], "no deployment has its names now"
    assert search(store, '| deployment_id="id-d"') == [], "no ids given: none known"


def test_lines_get_ever_later_timestamps_so_a_search_can_go_on_after_the_last_line(store):
    for text in ("one", "two", "three"):
        store.add(line(text, at=NOW))
    entries = store.search("p", parse_query(""), EVERYTHING, 10)
    assert [e.log for e in entries] == ["one", "two", "three"]
    assert [e.timestamp for e in entries] == [NOW, NOW + 1, NOW + 2]
    after_first = Window(entries[0].timestamp + 1, 2**62, newest_first=False)
    assert search(store, window=after_first) == ["two", "three"]


@pytest.mark.parametrize("query, expected", [
    ('| deployment_request_id="r-1"', ["printed in r-1", "failed r-1"]),
    ("| deployment_request_id=`r-1` and system=`true`", ["failed r-1"]),
    ('| system="false"', ["printed in r-1", "printed in r-2", "traceback in r-2"]),
    ('| level="error"', ["failed r-1", "traceback in r-2"]),
    ('| level!="error" | system="false"', ["printed in r-1", "printed in r-2"]),
    ('| deployment_request_id="r-1" or deployment_request_id="r-2"',
     ["printed in r-1", "failed r-1", "printed in r-2", "traceback in r-2"]),
    ('| deployment_request_id="r-2" and level="error" or system="true"', ["failed r-1", "traceback in r-2", "started"]),
    # LogQL's other spellings of `and`: a comma, a space
    ('| deployment_request_id="r-2", level="error" or system="true"', ["failed r-1", "traceback in r-2", "started"]),
    ('| deployment_request_id="r-1" system="true"', ["failed r-1"]),
    ('|= "printed"', ["printed in r-1", "printed in r-2"]),
    ('!= "printed" |= "r-2"', ["traceback in r-2"]),
    ('|~ "r-[12]$"', ["printed in r-1", "failed r-1", "printed in r-2", "traceback in r-2"]),
    ('!~ `^(printed|failed)`', ["traceback in r-2", "started"]),
    ('| deployment_request_id=~"r-.*"', ["printed in r-1", "failed r-1", "printed in r-2", "traceback in r-2"]),
    ('| deployment_request_id!~"r-.*"', ["started"]),
    ('| deployment_request_id=""', ["started"]),
    ('| pipeline_name="x"', []),
    ('| pipeline_name!="x" |= "started"', ["started"]),
    ("", ["printed in r-1", "failed r-1", "printed in r-2", "traceback in r-2", "started"]),
    ('|= "r-"' * MAX_FILTERS, ["printed in r-1", "failed r-1", "printed in r-2", "traceback in r-2"]),
    ("| " + " or ".join(['deployment_request_id="r-9"'] * (MAX_FILTERS - 1) + ['system="true"']), ["failed r-1", "started"]),
    (" ".join(f"!~ `^never {n}$`" for n in range(300)) + ' | deployment_request_id=~`r-[2-9]`',
     ["printed in r-2", "traceback in r-2"]),
])
def test_the_query_filters_lines_and_labels_as_logql_does(store, query, expected):
    store.add(line("printed in r-1", deployment_request_id="r-1"))
    store.add(line("failed r-1", deployment_request_id="r-1", system=True, level="error"))
    store.add(line("printed in r-2", deployment_request_id="r-2"))
    store.add(line("traceback in r-2", deployment_request_id="r-2", level="error"))
    store.add(line("started", system=True))
    assert search(store, query) == expected


@pytest.mark.parametrize("query, message", [
    ("deployment_name", "query: expected a line filter (|= != |~ !~) or | and a label filter, found 'deployment_name' at position 0"),
    ('| colour="red"', "query: unknown label 'colour' at position 2; the labels are deployment_name, "),
    ('| deployment_name', "query: expected = != =~ or !~ after deployment_name, found the end"),
    ('| deployment_name="d" and', "query: expected a label name, found the end"),
    ('| deployment_name=d', "query: expected a string in double quotes or backticks, found 'd' at position 18"),
    ('|= "unclosed', "query: unexpected '\"unclosed' at position 3"),
    ('|~ "\\d+"', "query: the string at position 3 has an unknown escape; write regular expressions in backticks"),
    ("|~ `(`", "query: '(' is not a regular expression (missing ): ()"),
    ('| level=~"["', "query: '[' is not a regular expression"),
    ('{deployment_name="d"}', "query: unexpected '{deploymen' at position 0"),
])
def test_a_query_that_does_not_parse_is_refused_saying_where(query, message):
    with pytest.raises(NotAllowed) as refused:
        parse_query(query)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("start, end, expected", [
    ("2024-01-01T00:00:00Z", "2024-01-01T00:00:10+00:00", Window(1704067200 * SECOND, 1704067210 * SECOND - 1, False)),
    ("2024-01-01T00:00:10.5", "2024-01-01T00:00:00", Window(1704067200 * SECOND + 1, 1704067210_500_000_000, True)),
    ("1704067200", "1704067210", Window(1704067200 * SECOND, 1704067210 * SECOND - 1, False)),
    ("1704067200000000000", "1704067200.25", Window(1704067200 * SECOND, 1704067200_250_000_000 - 1, False)),
    ("2024-01-01", "2024-01-01", Window(1704067200 * SECOND, 1704067200 * SECOND - 1, False)),
])
def test_start_is_included_end_is_not_and_start_after_end_searches_backward(start, end, expected):
    assert time_window(start, end, NOW) == expected


def test_without_start_and_end_the_last_day_is_searched_newest_first():
    assert time_window(None, None, NOW) == Window(NOW - 24 * 3600 * SECOND + 1, NOW, newest_first=True)


DAY_AGO = NOW - 24 * 3600 * SECOND


@pytest.mark.parametrize("start, end, expected", [
    (str(NOW + SECOND), None, Window(DAY_AGO + 1, NOW + SECOND, newest_first=True)),
    (str(DAY_AGO - SECOND), None, Window(DAY_AGO - SECOND, DAY_AGO - 1, newest_first=False)),
    (None, str(DAY_AGO - SECOND), Window(DAY_AGO - SECOND + 1, NOW, newest_first=True)),
    (None, str(NOW + SECOND), Window(NOW, NOW + SECOND - 1, newest_first=False)),
], ids=["start ahead: back to a day ago", "start before a day ago: on to it", "end before a day ago: back to it",
        "end ahead: on to it"])
def test_a_missing_start_is_now_and_a_missing_end_a_day_ago_as_the_cli_documents(start, end, expected):
    """Before, either alone was refused: "start and end must be given together"."""
    assert time_window(start, end, NOW) == expected


@pytest.mark.parametrize("start, end, message", [
    ("yesterday", "1704067200", "start: 'yesterday' is not an ISO 8601 date, nor a timestamp in seconds or nanoseconds"),
    ("1704067200", "1704067200000", "end: '1704067200000' is neither a timestamp in seconds nor one in nanoseconds"),
])
def test_a_window_that_does_not_parse_is_refused(start, end, message):
    with pytest.raises(NotAllowed) as refused:
        time_window(start, end, NOW)
    assert str(refused.value).startswith(message)


def test_a_window_and_a_limit_select_the_lines_in_their_order(store):
    for n in range(5):
        store.add(line(f"line {n}", at=NOW + n * SECOND))
    forward = time_window(str(NOW + SECOND), str(NOW + 4 * SECOND), NOW)
    backward = time_window(str(NOW + 4 * SECOND), str(NOW + SECOND), NOW)
    assert search(store, window=forward) == ["line 1", "line 2", "line 3"]
    assert search(store, window=backward) == ["line 4", "line 3", "line 2"]
    assert search(store, window=forward, limit=2) == ["line 1", "line 2"]
    assert search(store, window=backward, limit=2) == ["line 4", "line 3"]


def test_a_line_longer_than_a_stored_line_may_be_is_cut_short(store):
    """One 254 MB line took more than the store's whole size bound: its retention dropped every other line."""
    store.add(line("before"))
    store.add(line("x" * (log_store.MAX_LINE_CHARACTERS + 10)))
    before, long = search(store)
    assert before == "before"
    assert long == "x" * log_store.MAX_LINE_CHARACTERS + f" … (cut short: {log_store.MAX_LINE_CHARACTERS + 10} characters in all)"


def test_lines_older_than_the_retention_age_are_dropped(tmp_path):
    store = LogStore(tmp_path / "logs.sqlite3", max_age_seconds=3600)
    try:
        store.add(line("two hours ago", at=NOW - 2 * 3600 * SECOND))
        store.add(line("now"))
        assert search(store) == ["now"]
    finally:
        store.close()


def test_when_the_lines_outgrow_the_size_bound_the_oldest_go_and_the_files_stop_growing(tmp_path):
    bound = 256 * 1024
    store = LogStore(tmp_path / "logs.sqlite3", max_bytes=bound)

    def write_rounds(rounds: int) -> int:
        """Write 1 MB of lines `rounds` times; the bytes the store's files take on disk then."""
        for _ in range(rounds):
            for n in range(2000):
                store.add(line(f"line {n:04} " + "x" * 500))
            store.flush()
        return sum(path.stat().st_size for path in tmp_path.iterdir())

    try:
        after_three = write_rounds(3)
        kept = search(store)
        assert 0 < sum(map(len, kept)) < bound
        assert kept == [f"line {n:04} " + "x" * 500 for n in range(2000 - len(kept), 2000)], "the newest, in order"
        assert write_rounds(7) <= after_three * 1.25, "freed space is reused"
    finally:
        store.close()


def test_lines_survive_a_restart_and_new_ones_come_after_them(tmp_path):
    first = LogStore(tmp_path / "logs.sqlite3")
    first.add(line("before", at=NOW + SECOND))
    first.close()
    second = LogStore(tmp_path / "logs.sqlite3")
    try:
        second.add(line("after", at=NOW))
        assert search(second) == ["before", "after"]
    finally:
        second.close()


def test_the_emulators_lines_about_a_project_are_stored_as_system_or_user_lines(store):
    handler = capture_logs(store)
    logger = logging.getLogger("emulator.deployment")
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    about = {"project": "p", "deployment": "d", "version": "v1", "instance": 1, "instance_id": "i-1"}
    try:
        logger.info("[d/v1 instance 1] ready", extra=about)
        logger.warning("[d/v1 instance 1] stopped: exit code 3", extra=about)
        logger.info("[d/v1 instance 1] [request r-1] to stdout", extra={
            **about, "request_id": "r-1", "stream": "stdout", "printed": "to stdout"})
        logger.info("[d/v1 instance 1] [request r-1] to stderr", extra={
            **about, "request_id": "r-1", "stream": "stderr", "printed": "to stderr"})
        logger.info("not about a project")
    finally:
        release_logs(handler)
        logger.setLevel(previous_level)
    found = store.search("p", parse_query(""), EVERYTHING, 10)
    assert [(e.log, e.system, e.level, e.deployment_request_id) for e in found] == [
        ("[d/v1 instance 1] ready", True, "info", None),
        ("[d/v1 instance 1] stopped: exit code 3", True, "error", None),
        ("to stdout", False, "info", "r-1"),
        ("to stderr", False, "error", "r-1"),
    ]
    assert {(e.deployment_name, e.deployment_version, e.instance_id) for e in found} == {("d", "v1", "i-1")}


def test_a_line_naming_a_file_python_could_not_decode_is_stored_and_the_store_goes_on(store):
    """A lone surrogate (an undecodable file name in an error) killed the writer thread: every later
    search waited for it for ever, and so did the emulator's stop."""
    handler = capture_logs(store)
    name = b"photo-\xff.jpg".decode("utf-8", "surrogateescape")
    try:
        logging.getLogger("emulator.reload").error("not reloaded: cannot read %s", name, extra={"project": "p"})
    finally:
        release_logs(handler)
    store.add(line(f"added as it is: {name}"))
    store.add(line("after them"))
    searched: list[str] = []
    searching = threading.Thread(target=lambda: searched.extend(search(store)), daemon=True)
    searching.start()
    searching.join(10)
    assert searched == ["not reloaded: cannot read photo-\\udcff.jpg", "added as it is: photo-\\udcff.jpg", "after them"]


@contextlib.contextmanager
def held_by_another_program(store_path: Path) -> Iterator[None]:
    """Another program (the sqlite3 shell) holding the store's database in a transaction: the writer
    stores nothing until it ends, then goes on (if it waited no longer than `log_store.BUSY_SECONDS`)."""
    other = sqlite3.connect(store_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.close()  # ends the transaction


def test_a_batch_the_database_refuses_is_reported_and_the_store_goes_on(tmp_path, monkeypatch, caplog):
    """Another program held the database for longer than the writer waits: that batch fails, and the
    writer stores the next once the database is free."""
    monkeypatch.setattr(log_store, "BUSY_SECONDS", 0.1)
    store = LogStore(tmp_path / "logs.sqlite3")
    try:
        with held_by_another_program(tmp_path / "logs.sqlite3"):
            store.add(line("lost with its batch"))
            assert store.flush(30)
        store.add(line("stored after it"))
        assert search(store) == ["stored after it"]
        assert "1 log line(s) could not be stored" in caplog.text and "database is locked" in caplog.text
    finally:
        store.close()


def test_a_batch_that_fails_otherwise_than_in_sqlite_is_reported_and_the_store_goes_on(store, caplog):
    """Whatever fails a batch, the writer thread lives on: once it died, every later search, and the
    emulator's stop, waited for it for ever. Here a value SQLite cannot take fails the batch with
    Python's OverflowError, not an sqlite3.Error (the emulator's lines never carry one)."""
    store.add(line("lost with its batch", instance_id=2**64))
    searched: list[str] = []

    def add_and_search() -> None:
        store.flush()
        store.add(line("stored after it"))
        searched.extend(search(store))

    searching = threading.Thread(target=add_and_search, daemon=True)
    searching.start()
    searching.join(10)
    assert searched == ["stored after it"]
    assert "1 log line(s) could not be stored" in caplog.text and "too large to convert to SQLite" in caplog.text


def test_a_search_past_its_time_is_stopped_and_refused_saying_so(tmp_path):
    """Before, a search had no end but its own: 300 regular expressions over 63 lines took 43 s."""
    store = LogStore(tmp_path / "logs.sqlite3", search_seconds=0)
    try:
        store.add(line("a line"))
        store.flush()  # a search of 0 s does not wait for it
        with pytest.raises(NotAllowed) as refused:
            search(store, '|~ "line"')
        assert str(refused.value) == ("query: searching took more than 0 s and was stopped; narrow the window "
                                      "(start and end), or add a label filter for fewer lines to match")
    finally:
        store.close()


def test_a_search_going_on_holds_up_neither_the_lines_added_nor_the_stop(tmp_path):
    """A search held the store's one connection: lines waited for it to be stored, and so did the
    emulator's stop (39 s for a costly query). Here a search stays inside its match until released."""
    store = LogStore(tmp_path / "logs.sqlite3")
    matching, released = threading.Event(), threading.Event()

    class Held:
        """A regular expression that matches nothing, once released."""

        def search(self, text: str) -> None:
            matching.set()
            released.wait(30)

    store.add(line("searched"))
    searched: list[LogEntry] = []
    searching = threading.Thread(target=lambda: searched.extend(
        store.search("p", Condition("line_matches(?, log)", ("held",), {"held": Held()}), EVERYTHING, 10)), daemon=True)
    searching.start()
    try:
        assert matching.wait(10)
        store.add(line("added meanwhile"))
        for step in (store.flush, store.close):
            done = threading.Thread(target=step, daemon=True)
            done.start()
            done.join(10)
            assert not done.is_alive(), f"{step.__name__} waited for the search"
    finally:
        released.set()
        searching.join(10)
    assert searched == []
    reopened = LogStore(tmp_path / "logs.sqlite3")
    try:
        assert search(reopened) == ["searched", "added meanwhile"]
    finally:
        reopened.close()


def test_a_window_past_what_sqlite_holds_is_clamped(store):
    store.add(line("now"))
    window = time_window("0001-01-01T00:00:00Z", "9" * 40, NOW)
    assert (window.first, window.last) == (0, 2**63 - 2)
    assert search(store, window=window) == ["now"]


def test_a_search_behind_a_flood_of_lines_answers_with_those_stored_within_its_time(tmp_path, monkeypatch):
    """A search waited for every line queued before it: after a request printed 500k lines, one
    `logs_list` took 21.5 s. Here the writer cannot store the lines queued after the first ten until
    the search has answered."""
    monkeypatch.setattr(log_store, "BUSY_SECONDS", 60)
    store = LogStore(tmp_path / "logs.sqlite3", search_seconds=2)
    try:
        for n in range(10):
            store.add(line(f"line {n:04}"))
        assert store.flush(30)
        found: list[str] = []
        with held_by_another_program(tmp_path / "logs.sqlite3"):
            for n in range(10, 2000):
                store.add(line(f"line {n:04}"))
            searching = threading.Thread(target=lambda: found.extend(search(store, limit=5000)), daemon=True)
            searching.start()
            searching.join(30)
            assert not searching.is_alive(), "it waited for the lines the writer could not store"
        assert found == [f"line {n:04}" for n in range(10)], "what was stored by then, in order"
        assert store.flush(30) and len(search(store, limit=5000)) == 2000, "the rest, once the database is free"
    finally:
        store.close()


def test_searches_run_on_their_own_few_threads_and_leave_the_shared_pool_free(tmp_path, monkeypatch):
    """8 `logs_list` waiting for a flood to be stored took every thread of the pool the API's other
    blocking calls share (they took 21.5 s instead of 0.01 s). Here the writer is held meanwhile."""
    held, released = threading.Event(), threading.Event()
    real_insert = log_store.insert_rows

    def held_insert(*args: object, **kwargs: object) -> None:
        held.set()
        released.wait(30)
        real_insert(*args, **kwargs)

    monkeypatch.setattr(log_store, "insert_rows", held_insert)
    store = LogStore(tmp_path / "logs.sqlite3", search_seconds=20)  # each search would wait 10 s for the writer

    async def searches_and_another_call() -> tuple[list[list[LogEntry]], set[str]]:
        store.add(line("one"))
        assert held.wait(10)
        store.add(line("two"))
        finding = [asyncio.ensure_future(store.find("p", '|= "t"', EVERYTHING, 10)) for _ in range(8)]
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 5) == "free", "the shared pool is taken"
        searching = {thread.name for thread in threading.enumerate() if thread.name.startswith("log-search")}
        released.set()
        return await asyncio.gather(*finding), searching

    try:
        found, searching = asyncio.run(searches_and_another_call())
        assert len(searching) == log_store.SEARCH_THREADS
        assert all([entry.log for entry in entries] in ([], ["two"]) for entries in found)
        assert [entry.log for entry in found[-1]] == ["two"], "once stored, the lines are found"
    finally:
        released.set()
        store.close()


def test_the_stop_stores_the_queued_lines_for_a_few_seconds_and_says_how_many_it_dropped(tmp_path, monkeypatch, caplog):
    """The stop stored every line still queued: after a flood of 500k lines it took 23 s. Here the
    writer cannot store the lines queued after the first ten until the stop's time (0 s) has passed."""
    monkeypatch.setattr(log_store, "BUSY_SECONDS", 60)
    store = LogStore(tmp_path / "logs.sqlite3", close_seconds=0)
    for n in range(10):
        store.add(line(f"line {n:04}"))
    assert store.flush(30)
    closing = threading.Thread(target=store.close, daemon=True)
    with held_by_another_program(tmp_path / "logs.sqlite3"):
        for n in range(10, 2000):
            store.add(line(f"line {n:04}"))
        closing.start()
        while not store.flush(0.01):  # True once closed: the writer cannot store the lines queued
            assert closing.is_alive()
    closing.join(30)
    assert not closing.is_alive(), "it stored the whole backlog"
    (warning,) = [record for record in caplog.records if record.name == "emulator.log_store"]
    dropped = int(warning.getMessage().split()[0])
    assert warning.getMessage() == (f"{dropped} log line(s) were not stored: the emulator stopped before it "
                                    "could store them (within 0 s)")
    reopened = LogStore(tmp_path / "logs.sqlite3")
    try:
        stored = search(reopened, limit=5000)
        assert 10 < len(stored) < 2000 and len(stored) + dropped == 2000, "the batch held at the stop, and no more"
        assert stored == [f"line {n:04}" for n in range(len(stored))], "the oldest, in order"
    finally:
        reopened.close()


class CountedPauses:
    """The `time` module as `log_store` sees it, counting the writer's pauses to let lines gather."""

    def __init__(self) -> None:
        self.pauses = 0

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.pauses += 1
        time.sleep(seconds)


def test_behind_a_flood_the_writer_stores_batch_after_batch_without_pausing_to_gather(tmp_path, monkeypatch):
    """The writer paused 50 ms before every batch, to let lines gather, even with a backlog: 500k lines
    took 25 s more to store. Here 5000 lines are queued while the writer cannot store its first batch."""
    clock = CountedPauses()
    monkeypatch.setattr(log_store, "time", clock)
    monkeypatch.setattr(log_store, "BATCH", 10)
    monkeypatch.setattr(log_store, "BUSY_SECONDS", 60)
    store = LogStore(tmp_path / "logs.sqlite3")
    try:
        with held_by_another_program(tmp_path / "logs.sqlite3"):
            for n in range(5000):
                store.add(line(f"line {n:04}"))
        assert store.flush(60)
        assert len(search(store, limit=5000)) == 5000
        assert clock.pauses <= 2, "it paused before each batch (before the first, and the second if the first was short)"
    finally:
        store.close()
