"""In process: the rules of request history, which live in the requests backend (`RequestRunner`) over
its SQLite store — what each retention mode keeps, which filters are refused, what may be cancelled
or deleted, a version's full queue, which requests the retention sweep deletes, and that an
interrupted request is failed at the next start, and that one answered just before a crash is kept.
No server, no instances."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import metric_values

from contract.requests import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING
from contract.spec import Spec
from emulator import request_store
from emulator.exceptions import NotAllowed, NotFound, QueueFull
from emulator.metrics import Metrics
from emulator.registry import Registry
from emulator.request_runner import BATCH, DIRECT, MAX_BATCH_ITEMS, RequestRunner
from emulator.request_store import _COLUMNS, JOURNAL_SUFFIX, RequestRecord, RequestStore
from emulator.settings import Settings
from emulator.state import Deployment, Project, Version, now

DEPLOYMENT = Deployment("d", "p", Spec(), Spec())
ROOT = Path(__file__).resolve().parents[2]


def version(mode: str) -> Version:
    return Version("v1", None, {}, request_retention_mode=mode)


@pytest.mark.parametrize("mode, stored, keeps_data", [("none", False, False), ("metadata", True, False), ("full", True, True)])
def test_each_retention_mode_keeps_what_it_says(runner, mode, stored, keeps_data):
    record = runner.new_record(DEPLOYMENT, version(mode), "r1", "hello", 60, DIRECT)
    runner.fail(record, "boom")
    if not stored:
        with pytest.raises(NotFound, match="Request not found"):
            runner.find("p", "d", None, "r1")
        return
    found = asyncio.run(runner.find_whole("p", "d", "v1", "r1"))
    assert (found.status, found.error_message) == (FAILED, "boom")
    if keeps_data:
        assert runner.kept_input(found) == "hello"
    else:
        with pytest.raises(NotFound, match="request_retention_mode is not full"):
            runner.kept_input(found)


def test_a_request_that_ended_is_not_ended_again(runner):
    """A cancel that lands as the instance replies (Python 3.11's `asyncio.wait_for` then returns the
    reply instead of raising): the canceller was told `cancelled`, then the request completed over it,
    and was counted and logged twice."""
    record = runner.new_record(DEPLOYMENT, version("full"), "r1", "hello", 60, DIRECT)
    assert [r.status for r in asyncio.run(runner.cancel_many("p", "d", None, ["r1"], None))] == [CANCELLED]
    assert runner.fail(record, "the reply came as it was cancelled").record.status == CANCELLED
    found = runner.find("p", "d", "v1", "r1")
    assert (found.status, found.error_message) == (CANCELLED, None)


def test_a_request_failed_before_an_instance_took_it_has_no_time_started(runner):
    """As a cancelled one, and one failed at the next start: before, the emulator stopping (SIGTERM)
    gave a queued request a `time_started`, the time it failed."""
    record = runner.new_record(DEPLOYMENT, version("full"), "r1", "hello", 60, DIRECT)
    runner.fail(record, "The emulator stopped before this request finished")
    found = runner.find("p", "d", "v1", "r1")
    assert (found.status, found.time_started) == (FAILED, None) and found.time_completed is not None


def test_batch_requests_are_always_kept_whole(runner):
    record = runner.new_record(DEPLOYMENT, version("none"), "b1", {"x": 1}, 60, BATCH)
    assert runner.kept_input(asyncio.run(runner.find_whole("p", "d", None, "b1"))) == {"x": 1} and record.keeps_data


def test_a_request_is_found_only_under_its_own_names(runner):
    runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    for project, deployment, name in (("p", "other", None), ("other", "d", None), ("p", "d", "v2")):
        with pytest.raises(NotFound):
            runner.find(project, deployment, name, "r1")


@pytest.mark.parametrize("ids, message", [
    (["r1", "gone"], "Request not found: gone"),
    (["gone", "r1", "gone", "lost"], "Requests not found: gone, lost"),
    ([f"gone-{n}" for n in range(12)] + ["r1"], "Requests not found: " + ", ".join(f"gone-{n}" for n in range(10)) + " and 2 more"),
])
def test_a_batch_naming_unknown_requests_says_which(runner, ids, message):
    """A batch get, cancel or delete of up to 250 ids answered `Request not found`, naming none."""
    runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    with pytest.raises(NotFound) as refused:
        runner.collect("p", "d", None, ids)
    assert str(refused.value) == message
    assert [record.id for record in runner.collect("p", "d", None, ["r1", "r1"])] == ["r1", "r1"]


@pytest.mark.parametrize("statuses, message", [
    (("pending", "processing"), "pending cannot be combined with other statuses in one status filter"),
    (("completed", "pending"), "pending cannot be combined with other statuses"),
    (("processing", "failed"), "processing cannot be combined with other statuses"),
    (("done",), "Unknown status done"),
])
def test_refused_history_filters(runner, statuses, message):
    with pytest.raises(NotAllowed, match=message):
        runner.history("p", "d", None, statuses, 50, 0, None, None, None)


def test_unfinished_requests_cannot_be_deleted_and_ended_ones_cannot_be_cancelled(runner):
    record = runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    with pytest.raises(NotAllowed, match="r1 is pending; cancel it or wait before deleting it"):
        asyncio.run(runner.delete([record]))
    with pytest.raises(NotAllowed, match=r'Only \{"status": "cancelled"\}'):
        runner.set_status(record, COMPLETED)
    assert runner.set_status(runner.find("p", "d", None, "r1"), CANCELLED).status == CANCELLED
    ended = runner.find("p", "d", None, "r1")
    assert (ended.status, ended.time_started) == (CANCELLED, None) and ended.time_completed is not None
    with pytest.raises(NotAllowed, match="r1 is cancelled; only pending and processing requests can be cancelled"):
        runner.set_status(ended, CANCELLED)
    asyncio.run(runner.delete([ended]))
    with pytest.raises(NotFound):
        runner.find("p", "d", None, "r1")


def test_deleting_a_request_deletes_its_files_and_a_bad_one_stops_the_whole_batch(runner):
    kept, ended = (runner.new_record(DEPLOYMENT, version("full"), name, "x", 60, DIRECT) for name in ("r1", "r2"))
    runner.fail(ended, "done")
    output = runner.storage.request_output_dir("r2") / "out.txt"
    output.parent.mkdir(parents=True)
    output.write_text("result")
    with pytest.raises(NotAllowed, match="r1 is pending"):
        asyncio.run(runner.delete([ended, kept]))
    assert output.exists(), "nothing of a refused batch is deleted"
    asyncio.run(runner.delete([ended]))
    assert not runner.storage.request_dir("r2").exists()


def test_cancel_many_takes_ids_or_a_status_filter_not_both(runner):
    first, second, other = (runner.new_record(DEPLOYMENT, version("full"), name, "x", 60, BATCH) for name in ("a", "b", "c"))
    runner.fail(other, "ended")
    with pytest.raises(NotAllowed, match="not both"):
        asyncio.run(runner.cancel_many("p", "d", None, ["a"], "pending"))
    with pytest.raises(NotAllowed, match="cancelled by status; got status=completed"):
        asyncio.run(runner.cancel_many("p", "d", None, [], "completed"))
    with pytest.raises(NotAllowed, match="or status=pending or status=processing with an empty body"):
        asyncio.run(runner.cancel_many("p", "d", None, [], None))
    with pytest.raises(NotAllowed, match="c is failed"):
        asyncio.run(runner.cancel_many("p", "d", None, ["a", "c"], None))
    with pytest.raises(NotFound):
        asyncio.run(runner.cancel_many("p", "d", None, ["a", "nope"], None))
    with pytest.raises(NotAllowed, match="At most 250 request ids can be cancelled at once; got 251"):
        asyncio.run(runner.cancel_many("p", "d", None, ["a"] * 251, None))
    assert first.status == PENDING, "nothing of a refused call is cancelled"
    assert [r.id for r in asyncio.run(runner.cancel_many("p", "d", "v1", [], "pending"))] == ["a", "b"]
    assert (first.status, second.status) == (CANCELLED, CANCELLED)


def test_a_mass_cancel_lets_other_calls_in_between_and_ends_each_request(runner, caplog):
    """Cancelling 50 000 pending requests held the event loop ~4.6 s, every call (/livez too) waiting:
    they are cancelled MAX_BATCH_ITEMS at a time, the loop serving others in between. Each still ends
    cancelled, recorded, counted and logged, and all are answered; one that ended in between is left
    as it ended."""
    caplog.set_level(logging.INFO, logger="emulator.requests")
    count = 3 * MAX_BATCH_ITEMS

    async def cancel_while_another_call_comes() -> tuple[int, list[RequestRecord]]:
        records = [runner.new_record(DEPLOYMENT, version("full"), f"r{n}", "x", 60, BATCH) for n in range(count)]
        cancelling = asyncio.create_task(runner.cancel_many("p", "d", "v1", [], PENDING))
        await asyncio.sleep(0)  # the cancel's first turn of the loop, then this call's
        still_pending = len(runner.history("p", "d", "v1", (PENDING,), count, 0, None, None, None))
        runner.fail(records[-1], "ended while the others were cancelled")
        return still_pending, await cancelling

    still_pending, cancelled = asyncio.run(cancel_while_another_call_comes())
    assert 0 < still_pending < count, "another call was answered while the cancel was under way"
    assert [r.id for r in cancelled] == [f"r{n}" for n in range(count - 1)]
    found = runner.collect("p", "d", "v1", [f"r{n}" for n in range(count - MAX_BATCH_ITEMS, count)])
    assert {r.status for r in found[:-1]} == {CANCELLED} and found[-1].status == FAILED
    assert runner.history("p", "d", "v1", (PENDING,), count, 0, None, None, None) == []
    logged = sorted((r.request_id, r.status) for r in caplog.records if hasattr(r, "request_id"))
    assert logged == sorted([(f"r{n}", CANCELLED) for n in range(count - 1)] + [(f"r{count - 1}", FAILED)])
    counted = metric_values(runner.metrics.exposition().decode())
    assert counted("ubiops_emulator_requests_total", project="p", deployment="d", version="v1",
                   status=CANCELLED) == count - 1


def test_a_deleted_version_s_history_goes_a_few_at_a_time_other_calls_answered_in_between(runner):
    """Deleting a version with 50 000 requests deleted their records in one go, the event loop held ~3 s:
    they go MAX_BATCH_ITEMS at a time, another call answered in between; then all are gone, and the
    other version's stay."""
    count = 3 * MAX_BATCH_ITEMS
    for n in range(count):
        runner.fail(runner.new_record(DEPLOYMENT, version("full"), f"r{n}", "x", 60, BATCH), "ended")
    kept = runner.new_record(DEPLOYMENT, Version("v2", None, {}), "other", "x", 60, BATCH)

    async def delete_while_other_calls_come() -> set[int]:
        deleting = asyncio.create_task(runner.forget("p", "d", "v1"))
        left_then = set()
        while not deleting.done():  # another call, one turn of the loop at a time
            left_then.add(len(runner.store.ids_of("p", "d", "v1")))
            await asyncio.sleep(0)
        return left_then

    assert asyncio.run(delete_while_other_calls_come()) - {0, count}, "some were gone while others were still there"
    assert runner.store.ids_of("p", "d", "v1") == [] and asyncio.run(runner.find_whole("p", "d", "v2", "other")) == kept


def test_a_full_queue_refuses_more_requests_until_one_is_taken(runner):
    limited = Version("v1", None, {}, settings={"maximum_queue_size": 2})
    runner.check_queue(limited, 2)
    waiting = runner.new_record(DEPLOYMENT, limited, "r1", "x", 60, DIRECT)
    with pytest.raises(QueueFull, match="1 requests wait for an instance, 2 of these 2 would, and its maximum_queue_size is 2"):
        runner.check_queue(limited, 2)
    runner.new_record(DEPLOYMENT, limited, "r2", "x", 60, DIRECT)
    with pytest.raises(QueueFull):
        runner.check_queue(limited)
    runner.fail(waiting, "ended")
    runner.check_queue(limited)


def test_requests_unfinished_at_a_stop_are_failed_at_the_next_start(tmp_path, runner, store):
    """But a batch request no instance had taken: it is queued again (`unstarted_batch`, in the order made)."""
    waiting = runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    running = runner.new_record(DEPLOYMENT, version("full"), "r2", "y", 60, DIRECT)
    running.status, running.time_started = PROCESSING, now()
    store.update(running)
    batch_running = runner.new_record(DEPLOYMENT, version("full"), "b1", "z", 60, BATCH)
    batch_running.status, batch_running.time_started = PROCESSING, now()
    store.update(batch_running)
    for n, request_id in enumerate(["b3", "b2"]):
        runner.new_record(DEPLOYMENT, version("full"), request_id, {"n": n}, 60, BATCH)
    restarted = now()
    assert store.mark_interrupted() == 3
    assert [(r.id, r.status, r.request_data) for r in store.unstarted_batch()] == [
        ("b3", PENDING, {"n": 0}), ("b2", PENDING, {"n": 1})]
    for record in (waiting, running, batch_running):
        found = runner.find("p", "d", None, record.id)
        assert (found.status, found.error_message) == (FAILED, "The emulator stopped before this request finished")
        assert found.time_completed is not None and found.time_completed >= restarted, "failed at the restart"
        assert found.time_started == record.time_started, "a request that never started has no time_started"


def test_batch_requests_left_pending_are_queued_again_at_a_start_as_new_ones_are(runner, store):
    """Live again on their version: they count against its `maximum_queue_size` and can be cancelled. One
    whose version no longer exists fails saying so."""
    limited = Version("v1", None, {}, settings={"maximum_queue_size": 2})
    for request_id in ("b1", "b2"):
        runner.new_record(DEPLOYMENT, limited, request_id, "x", 60, BATCH)
    runner.new_record(DEPLOYMENT, Version("gone", None, {}), "b3", "x", 60, BATCH)
    registry = Registry(Settings(Path("unused"), "p", "d", "v1"), runner.runtime)
    registry.projects["p"] = Project("p", {"d": Deployment("d", "p", Spec(), Spec(), versions={"v1": limited})})
    restarted = RequestRunner(runner.storage, store, runner.runtime, Metrics(), registry)

    async def start() -> None:
        assert restarted.resume() == 2
        with pytest.raises(QueueFull, match="2 requests wait for an instance"):
            restarted.check_queue(limited)
        assert restarted.set_status(restarted.find("p", "d", None, "b2"), CANCELLED).status == CANCELLED
        restarted.check_queue(limited)

    asyncio.run(start())
    gone = restarted.find("p", "d", None, "b3")
    assert (gone.status, gone.error_message) == (FAILED, "The emulator stopped before this request ran, and its version "
                                                         "gone of deployment d no longer existed when it started again")


RUNNER_IN_A_PROCESS = """
import asyncio, os, resource, sys
from pathlib import Path
from contract.spec import Spec
from emulator.exceptions import QueueFull
from emulator.metrics import Metrics
from emulator.request_runner import DIRECT, RequestRunner
from emulator.request_store import RequestStore
from emulator.runtime.manager import Runtime
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.state import Deployment, Version
from emulator.storage import Storage

folder = Path(sys.argv[1])
deployment = Deployment("d", "p", Spec(), Spec())
one_place = Version("v1", None, settings={"maximum_queue_size": 1}, request_retention_mode="full")

async def main():
    runner = RequestRunner(Storage(folder / "data"), RequestStore(folder / "requests.sqlite3"),
                           Runtime(EnvironmentBuilder()), Metrics())
    record = runner.new_record(deployment, one_place, "r1", "hello", 60, DIRECT)
{steps}
asyncio.run(main())
"""
"""A process of its own (a crash to survive, a file-size limit) running a request's end in a requests
backend over `folder`, with the event loop running, as in the server; `steps` are `main`'s last lines."""


def run_in_a_process(folder: Path, steps: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUNNER_IN_A_PROCESS.replace("{steps}", steps), str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_a_request_answered_just_before_a_crash_is_kept(tmp_path, database, caplog):
    """A request that ends is in the journal before it is answered; the next start writes it into
    the history and empties the journal. A last line cut short by the crash was never answered; a
    line that does not read is left out, with a warning."""
    run_in_a_process(tmp_path, """
    runner.fail(record, "answered just before the crash")
    os._exit(1)  # killed outright, before the grouped write runs
""")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM requests").fetchone() == (0,), "not written before the crash"
    journal = database.with_name(database.name + JOURNAL_SUFFIX)
    answered = journal.read_bytes()
    misfit = json.loads(answered)
    misfit[0], misfit[1] = "r4", None  # reads, but the history takes no request without a project
    edited = [[f"r{5 + n}", *misfit[1:]] for n in range(3)]
    edited[0][2] = ["d"]  # a list where a text goes
    edited[1][_COLUMNS.index("timeout")] = 2**70  # an integer SQLite cannot hold
    edited[2][_COLUMNS.index("time_created")] = "yesterday"  # a time that is none
    journal.write_bytes(b'["r3", "p", "d"]\n' + answered + json.dumps(misfit).encode() + b"\n"  # r3: too short a row
                        + b"".join(json.dumps(row).encode() + b"\n" for row in edited))
    with journal.open("ab") as file:
        file.write(b'["r2", "p", "d"')  # the crash came while the next line was being appended
    store = RequestStore(database)
    try:
        found = store.get("r1")
        assert found is not None and (found.status, found.error_message, found.request_data) == (
            FAILED, "answered just before the crash", "hello")
        assert [store.get(f"r{n}") for n in range(2, 8)] == [None] * 6
        assert journal.read_bytes() == b""
        assert "a line of the requests' journal could not be read; that request is not kept" in caplog.text
        assert "a line of the requests' journal does not fit the history; that request is not kept" in caplog.text
    finally:
        store.close()


def test_a_request_the_journal_cannot_take_on_a_full_disk_is_answered_and_leaves_the_queue(tmp_path):
    """The journal cannot be written (a real failed write: the process may not grow any file): the
    request ends as it would (its caller was given a 500, without its id, while it was kept as it
    ended), the log says so, and it does not hold its version's queue place forever."""
    run = run_in_a_process(tmp_path, """
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))  # no file may grow, as on a full disk
    try:
        print("ended:", runner.fail(record, "ended").record.status)
    except OSError as exc:
        print("not kept:", exc.strerror)
    try:
        runner.check_queue(one_place)
        print("its place in the queue is free")
    except QueueFull:
        print("its place in the queue is still taken")
""")
    assert run.stdout.splitlines() == ["ended: failed", "its place in the queue is free"], run.stderr
    assert "the requests' journal could not be written ([Errno 27] File too large): request r1 and" in run.stderr


async def until(probe: Callable[[], bool], what: str, seconds: float = 10) -> None:
    """Return once `probe` holds, the event loop running the store's timed writes meanwhile; past `seconds`
    the test fails, saying `what`."""
    deadline = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


def test_a_history_write_that_fails_keeps_its_requests_and_the_journal_until_one_succeeds(database, monkeypatch, caplog):
    """Another program holding the database (the sqlite3 shell in a transaction) made a write fail:
    before, its records were dropped, and the next write emptied the journal that still held them."""
    monkeypatch.setattr(request_store, "BUSY_SECONDS", 0.1)
    monkeypatch.setattr(request_store, "RETRY_SECONDS", 0.1)
    store = RequestStore(database)
    journal = database.with_name(database.name + JOURNAL_SUFFIX)
    other = sqlite3.connect(database, isolation_level=None)
    try:
        async def answered_while_locked() -> None:
            other.execute("BEGIN IMMEDIATE")
            store.answered(RequestRecord(id="a", project="p", deployment="d", version="v", mode=DIRECT, status=COMPLETED,
                                         timeout=60, time_created=now(), keeps_data=True, result="kept"))
            await until(lambda: "the request history could not be written (database is locked)" in caplog.text,
                        "the timed write failed")
            assert journal.read_bytes().count(b"\n") == 1, "still in the journal"
            other.execute("ROLLBACK")
            await until(lambda: journal.read_bytes() == b"", "the retry emptied the journal once what it held was written")

        asyncio.run(answered_while_locked())
        found = store.get("a")
        assert found is not None and (found.status, found.result) == (COMPLETED, "kept")
    finally:
        other.close()
        store.close()


def test_a_request_whose_message_holds_a_lone_surrogate_is_kept_with_it_escaped_and_so_are_the_others(database):
    """SQLite takes no lone surrogate (a file name Python could not decode, in a message): such a record
    failed the write of every record of its 50 ms, and, from the journal, every later start."""
    store = RequestStore(database)
    journal = database.with_name(database.name + JOURNAL_SUFFIX)
    name = b"photo-\xff.jpg".decode("utf-8", "surrogateescape")
    try:
        async def answered() -> None:
            for request_id, message in (("a", f"no such file: {name}"), ("b", "fine")):
                store.answered(RequestRecord(id=request_id, project="p", deployment="d", version="v", mode=DIRECT,
                                             status=FAILED, timeout=60, time_created=now(), keeps_data=True,
                                             error_message=message))
            assert journal.read_bytes().count(b"\n") == 2
            await until(lambda: journal.read_bytes() == b"", "the timed write emptied the journal")

        asyncio.run(answered())
    finally:
        store.close()
    store = RequestStore(database)
    try:
        assert [store.get(i).error_message for i in "ab"] == ["no such file: photo-\\udcff.jpg", "fine"]
    finally:
        store.close()



@pytest.mark.parametrize("statuses", [(PENDING,), (PROCESSING,), (COMPLETED, FAILED, CANCELLED)])
def test_a_version_s_history_is_found_by_its_index_not_by_scanning_its_deployment_s(tmp_path, statuses):
    """The web page asks each version for its unfinished and its ended requests every second while one runs:
    through the deployment's index, each asking scanned the deployment's whole history when the version had
    none (~50 ms at 100 000 requests, the event loop held meanwhile)."""
    database = tmp_path / "requests.sqlite3"
    RequestStore(database).close()
    plan = sqlite3.connect(database).execute(
        "EXPLAIN QUERY PLAN SELECT id FROM requests WHERE project = ? AND deployment = ? AND version = ? "
        f"AND status IN ({', '.join('?' * len(statuses))}) ORDER BY time_created DESC, rowid DESC LIMIT 20",
        ("p", "d", "v", *statuses)).fetchall()
    assert any("requests_by_version" in row[-1] for row in plan), plan
