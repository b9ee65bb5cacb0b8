"""In process: which requests the retention sweep deletes (with their files) and which it keeps, over a
real SQLite history and bucket folder, requests dated in the past rather than waited for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from contract.requests import COMPLETED, PENDING
from contract.spec import Spec
from emulator.request_runner import DIRECT, RequestRunner
from emulator.request_store import RequestRecord
from emulator.retention import SWEEP_BATCH, RetentionSweeper
from emulator.settings import Settings
from emulator.state import Deployment, Project, Registry, Version, now

DAY = timedelta(days=1)


@pytest.fixture
def sweeper(runner, database) -> Iterator[RetentionSweeper]:
    """A sweeper over a project with version `week` (the default retention) and `minute` (60 s)."""
    registry = Registry(Settings(Path("unused"), "p", "d", "week"), runner.runtime)
    versions = {"week": Version("week", None, {}), "minute": Version("minute", None, {}, settings={"request_retention_time": 60})}
    registry.projects["p"] = Project("p", {"d": Deployment("d", "p", Spec(), Spec(), versions=versions)})
    sweeper = RetentionSweeper(registry, runner, database, interval=60)
    yield sweeper
    sweeper.close()


def add(runner: RequestRunner, request_id: str, version: str, age: timedelta, status: str = COMPLETED) -> None:
    """A recorded request of `version`, created `age` ago, with an output file."""
    runner.store.add(RequestRecord(id=request_id, project="p", deployment="d", version=version, mode=DIRECT,
                                   status=status, timeout=60, time_created=now() - age, keeps_data=True))
    output = runner.storage.request_output_dir(request_id) / "out.txt"
    output.parent.mkdir(parents=True)
    output.write_text(request_id)


def test_requests_older_than_their_versions_retention_time_go_with_their_files(runner, sweeper):
    add(runner, "week-old", "week", 8 * DAY)
    add(runner, "week-new", "week", 6 * DAY)
    add(runner, "minute-old", "minute", timedelta(minutes=2))
    add(runner, "minute-new", "minute", timedelta(seconds=10))
    add(runner, "still-waiting", "week", 8 * DAY, status=PENDING)
    add(runner, "deleted-version-old", "gone", 8 * DAY)
    add(runner, "deleted-version-new", "gone", 6 * DAY)
    assert asyncio.run(sweeper.sweep()) == 3
    for gone in ("week-old", "minute-old", "deleted-version-old"):
        assert runner.store.get(gone) is None and not runner.storage.request_dir(gone).exists()
    for kept in ("week-new", "minute-new", "still-waiting", "deleted-version-new"):
        assert runner.store.get(kept) is not None and (runner.storage.request_output_dir(kept) / "out.txt").exists()
    assert asyncio.run(sweeper.sweep()) == 0


def test_the_files_of_a_request_not_recorded_expire_too(runner, sweeper):
    record = runner.new_record(Deployment("d", "p", Spec(), Spec()), Version("minute", None, {}, request_retention_mode="none"),
                               "unrecorded", "x", 60, DIRECT)
    record.time_created -= timedelta(minutes=2)
    runner.storage.request_output_dir(record.id).mkdir(parents=True)
    runner.fail(record, "ended")
    assert runner.store.get(record.id) is None, "retention mode none: no record"
    assert asyncio.run(sweeper.sweep()) == 1
    assert not runner.storage.request_dir(record.id).exists()


def test_one_pass_deletes_a_bounded_batch_and_the_next_the_rest(runner, sweeper):
    for n in range(SWEEP_BATCH + 5):
        add(runner, f"old-{n}", "minute", timedelta(hours=1))
    assert asyncio.run(sweeper.sweep()) == SWEEP_BATCH
    assert asyncio.run(sweeper.sweep()) == 5
    assert runner.store.list("p", statuses=(COMPLETED,), limit=1000) == []
