"""In process: the rules of request history, which live in the requests backend (`RequestRunner`) over
its SQLite store — what each retention mode keeps, which filters are refused, what may be cancelled
or deleted, and that an interrupted request is failed at the next start. No server, no instances."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contract.requests import COMPLETED, FAILED, PROCESSING
from contract.spec import Spec
from emulator.exceptions import NotAllowed, NotFound
from emulator.metrics import Metrics
from emulator.request_runner import BATCH, DIRECT, RequestRunner
from emulator.request_store import RequestStore
from emulator.runtime.manager import Runtime
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.state import Deployment, Version
from emulator.storage import Storage


@pytest.fixture
def store(tmp_path) -> Iterator[RequestStore]:
    store = RequestStore(tmp_path / "requests.sqlite3")
    yield store
    store.close()


@pytest.fixture
def runner(tmp_path, store) -> RequestRunner:
    return RequestRunner(Storage(tmp_path / "data"), store, Runtime(EnvironmentBuilder()), Metrics())


DEPLOYMENT = Deployment("d", "p", Spec(), Spec())


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
    found = runner.find("p", "d", "v1", "r1")
    assert (found.status, found.error_message) == (FAILED, "boom")
    if keeps_data:
        assert runner.kept_input(found) == "hello"
    else:
        with pytest.raises(NotFound, match="request_retention_mode is not full"):
            runner.kept_input(found)


def test_batch_requests_are_always_kept_whole(runner):
    record = runner.new_record(DEPLOYMENT, version("none"), "b1", {"x": 1}, 60, BATCH)
    assert runner.kept_input(runner.find("p", "d", None, "b1")) == {"x": 1} and record.keeps_data


def test_a_request_is_found_only_under_its_own_names(runner):
    runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    for project, deployment, name in (("p", "other", None), ("other", "d", None), ("p", "d", "v2")):
        with pytest.raises(NotFound):
            runner.find(project, deployment, name, "r1")


@pytest.mark.parametrize("statuses, message", [
    (("pending", "processing"), "pending and processing cannot be combined in one status filter"),
    (("done",), "Unknown status done"),
])
def test_refused_history_filters(runner, statuses, message):
    with pytest.raises(NotAllowed, match=message):
        runner.history("p", "d", None, statuses, 50, 0, None, None, None)


def test_unfinished_requests_cannot_be_deleted_and_only_pending_batch_ones_cancelled(runner):
    record = runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    with pytest.raises(NotAllowed, match="r1 is pending; cancel it or wait before deleting it"):
        runner.delete(record)
    with pytest.raises(NotAllowed, match="only pending batch requests can be cancelled"):
        runner.set_status(record, "cancelled")
    with pytest.raises(NotAllowed, match=r'Only \{"status": "cancelled"\}'):
        runner.set_status(record, COMPLETED)
    runner.fail(record, "done with it")
    runner.delete(record)
    with pytest.raises(NotFound):
        runner.find("p", "d", None, "r1")


def test_requests_unfinished_at_a_stop_are_failed_at_the_next_start(tmp_path, runner, store):
    waiting = runner.new_record(DEPLOYMENT, version("full"), "r1", "x", 60, DIRECT)
    running = runner.new_record(DEPLOYMENT, version("full"), "r2", "y", 60, DIRECT)
    running.status = PROCESSING
    store.update(running)
    assert store.mark_interrupted() == 2
    for record in (waiting, running):
        found = runner.find("p", "d", None, record.id)
        assert (found.status, found.error_message) == (FAILED, "The emulator stopped before this request finished")
