"""The metrics a pool's instances feed, in process: each start, restart and loss (by reason) is
counted, read back from the exposition Prometheus would scrape; and two emulators' metrics in one
process are apart."""

from __future__ import annotations

import pytest
from harness import metric_values
from submitting import TIMEOUT

from emulator.metrics import Metrics
from emulator.runtime.pool import AVAILABLE, UNAVAILABLE
from emulator.runtime.protocol import Error, Result

pytestmark = pytest.mark.anyio


async def test_instance_starts_restarts_and_losses_are_counted_by_reason(pools, job):
    metrics = Metrics()
    crashing = pools("crashing", events=metrics)
    crashing.start()
    assert isinstance(await crashing.submit(job({"mode": "sys_exit"}), TIMEOUT), Error)
    assert isinstance(await crashing.submit(job({"mode": "sleep 60"}), 0.5), Error)
    assert isinstance(await crashing.submit(job({"mode": "ok"}), TIMEOUT), Result)
    broken = pools("broken_init", events=metrics)
    broken.start()
    await broken.started()
    assert (crashing.status, broken.status) == (AVAILABLE, UNAVAILABLE)

    value = metric_values(metrics.exposition().decode())
    crashing_labels = {"project": "runtime-tests", "deployment": "tests", "version": "crashing"}
    assert value("ubiops_emulator_instance_starts_total", **crashing_labels) == 3
    assert value("ubiops_emulator_instance_restarts_total", **crashing_labels) == 2
    assert [value("ubiops_emulator_instance_crashes_total", **crashing_labels, reason=reason)
            for reason in ("crash", "timeout", "memory", "start")] == [1, 1, 0, 0]
    broken_labels = {"project": "runtime-tests", "deployment": "tests", "version": "broken_init"}
    assert value("ubiops_emulator_instance_starts_total", **broken_labels) == 1
    assert value("ubiops_emulator_instance_restarts_total", **broken_labels) == 0
    assert value("ubiops_emulator_instance_crashes_total", **broken_labels, reason="start") == 1


async def test_each_emulator_has_its_own_metrics(pools, job):
    counted, other = Metrics(), Metrics()
    pool = pools("minimal", events=counted)
    pool.start()
    assert await pool.submit(job("hello"), TIMEOUT) == Result("hello #1")
    labels = {"project": "runtime-tests", "deployment": "tests", "version": "minimal"}
    assert metric_values(counted.exposition().decode())("ubiops_emulator_instance_starts_total", **labels) == 1
    assert metric_values(other.exposition().decode())("ubiops_emulator_instance_starts_total", **labels) == 0


def test_the_same_names_in_two_projects_are_counted_apart():
    """One data folder can hold several projects (a restart with another `--project`), each free to
    name a deployment as another does: their series must not add up."""
    metrics = Metrics()
    for project in ("face-profile", "face-profile", "other"):
        metrics.request_ended(project, "slow", "v1", "completed", 0.2)
    value = metric_values(metrics.exposition().decode())
    assert [value("ubiops_emulator_requests_total", project=project, deployment="slow", version="v1", status="completed")
            for project in ("face-profile", "other")] == [2, 1]
