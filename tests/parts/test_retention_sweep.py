"""In process: which requests the retention sweep deletes (with their files) and which it keeps, over a
real SQLite history and bucket folder, requests dated in the past rather than waited for; and a history
an earlier emulator made, whose requests had no expiry of their own."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from contract.requests import COMPLETED, PENDING
from contract.spec import Spec
from emulator.metrics import Metrics
from emulator.registry import Registry
from emulator.request_runner import DIRECT, RequestRunner
from emulator.request_store import JOURNAL_SUFFIX, RequestRecord, RequestStore, _to_row
from emulator.retention import SWEEP_BATCH, RetentionSweeper
from emulator.runtime.manager import Runtime
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.settings import Settings
from emulator.state import Deployment, Project, Version, now
from emulator.storage import Storage

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


RETENTION = {"week": 7 * DAY, "minute": timedelta(minutes=1), "gone": 7 * DAY}
"""The retention time each version had when its requests below were made."""


def add(runner: RequestRunner, request_id: str, version: str, age: timedelta, status: str = COMPLETED) -> None:
    """A recorded request of `version`, created `age` ago under its retention time then, with an output file."""
    created = now() - age
    runner.store.add(RequestRecord(id=request_id, project="p", deployment="d", version=version, mode=DIRECT,
                                   status=status, timeout=60, time_created=created, keeps_data=True,
                                   expires=created + RETENTION[version]))
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
    minute = Version("minute", None, {}, settings={"request_retention_time": 60}, request_retention_mode="none")
    record = runner.new_record(Deployment("d", "p", Spec(), Spec()), minute, "unrecorded", "x", 60, DIRECT)
    assert record.expires == record.time_created + timedelta(minutes=1), "the version's retention time, counted from its creation"
    record.time_created -= timedelta(minutes=2)
    record.expires -= timedelta(minutes=2)
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


def test_changing_a_versions_retention_time_leaves_the_requests_it_already_stored_as_they_were(runner, sweeper):
    """UbiOps: "Changing the retention time or mode does not influence the retention of already stored
    requests" [docs: request settings]. Lowering `week` to a minute deleted its older requests at the
    next sweep, and raising `minute` to a week kept its own for a week."""
    add(runner, "made-under-a-week", "week", timedelta(hours=1))
    add(runner, "made-under-a-minute", "minute", timedelta(minutes=2))
    versions = sweeper.registry.projects["p"].deployments["d"].versions
    versions["week"].settings["request_retention_time"] = 60
    versions["minute"].settings["request_retention_time"] = 7 * 24 * 3600
    assert asyncio.run(sweeper.sweep()) == 1
    assert runner.store.get("made-under-a-week") is not None and runner.store.get("made-under-a-minute") is None


OLD_HISTORY = """
CREATE TABLE requests (id TEXT PRIMARY KEY, project TEXT NOT NULL, deployment TEXT NOT NULL, version TEXT NOT NULL,
    mode TEXT NOT NULL, status TEXT NOT NULL, timeout INTEGER NOT NULL, time_created TEXT NOT NULL, time_started TEXT,
    time_completed TEXT, input_size INTEGER, output_size INTEGER, request_data TEXT, result TEXT, error_message TEXT,
    keeps_data INTEGER NOT NULL);
CREATE TABLE unrecorded_files (id TEXT PRIMARY KEY, project TEXT NOT NULL, deployment TEXT NOT NULL,
    version TEXT NOT NULL, time_created TEXT NOT NULL);
"""
"""The history as emulators made it before requests had an expiry of their own."""


def test_a_history_an_earlier_emulator_made_is_read_and_its_requests_get_their_versions_retention_time_once(tmp_path):
    """Its tables gain the column, a journal line it wrote is still read back, and the first sweep gives
    each request its creation plus its version's retention time then (the default week for a version no
    longer served): past it, it goes; a later change of the setting no longer moves it."""
    database = tmp_path / "requests.sqlite3"
    old = sqlite3.connect(database)
    old.executescript(OLD_HISTORY)
    columns = "id, project, deployment, version, mode, status, timeout, time_created, keeps_data"
    for request_id, version, age in (("minute-old", "minute", timedelta(minutes=2)), ("minute-new", "minute", timedelta(0)),
                                     ("gone-old", "gone", 8 * DAY), ("gone-new", "gone", 6 * DAY)):
        old.execute(f"INSERT INTO requests ({columns}) VALUES (?, 'p', 'd', ?, 'direct', 'completed', 60, ?, 1)",
                    (request_id, version, (now() - age).isoformat()))
    old.execute("INSERT INTO unrecorded_files VALUES ('unrecorded-old', 'p', 'd', 'minute', ?)",
                ((now() - timedelta(minutes=2)).isoformat(),))
    old.commit()
    old.close()
    answered = RequestRecord(id="journaled", project="p", deployment="d", version="minute", mode=DIRECT, status=COMPLETED,
                             timeout=60, time_created=now() - timedelta(minutes=2), keeps_data=True)
    line = json.dumps(list(_to_row(answered))[:-1])  # as an earlier emulator wrote it, without `expires`
    database.with_name(database.name + JOURNAL_SUFFIX).write_text(line + "\n")

    store = RequestStore(database)
    runner = RequestRunner(Storage(tmp_path / "data"), store, Runtime(EnvironmentBuilder()), Metrics())
    try:
        assert store.get("journaled") is not None and store.get("minute-new").expires is None
        registry = Registry(Settings(Path("unused"), "p", "d", "minute"), runner.runtime)
        minute = Version("minute", None, {}, settings={"request_retention_time": 60})
        registry.projects["p"] = Project("p", {"d": Deployment("d", "p", Spec(), Spec(), versions={"minute": minute})})
        sweeper = RetentionSweeper(registry, runner, database, interval=60)
        try:
            assert asyncio.run(sweeper.sweep()) == 4
            kept = store.get("minute-new")
            assert kept is not None and kept.expires == kept.time_created + timedelta(minutes=1)
            assert store.get("gone-new") is not None
            minute.settings["request_retention_time"] = 0
            assert asyncio.run(sweeper.sweep()) == 0, "dated once, as made under the setting of that time"
        finally:
            sweeper.close()
    finally:
        store.close()
