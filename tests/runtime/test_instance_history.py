"""What the instance calls show, in process: `InstanceHistory` told by real pools what happens to their
instances — starts, crashes, timeouts, memory-limit kills, replacements, failed starts and stops —
and what it answers (the same over HTTP, with the SDK and the CLI: tests/test_instances.py)."""

from __future__ import annotations

import asyncio
import os
import resource
import signal

import pytest
from submitting import TIMEOUT

from emulator.exceptions import NotAllowed, NotFound
from emulator.instance_history import InstanceHistory
from emulator.runtime.instance import Instance
from emulator.runtime.pool import EveryListener, NoEvents
from emulator.runtime.protocol import Error, Result

pytestmark = pytest.mark.anyio
PROJECT = "runtime-tests"


def descriptions(history: InstanceHistory, version: str, instance_id: str) -> list[str]:
    """An instance's events, oldest first."""
    return [e.description for e in reversed(history.events(PROJECT, "tests", version, instance_id))]


async def test_an_instance_is_listed_running_and_its_crash_timeout_and_replacements_are_events(pools, job):
    history = InstanceHistory()
    crashing = pools("crashing", events=history)
    crashing.start()
    await crashing.started()
    (listed,) = history.current(PROJECT)
    assert (listed.deployment, listed.version, listed.status) == ("tests", "crashing", "running")
    assert history.current(PROJECT, "tests", "crashing", ("running",)) == [listed]
    assert history.current(PROJECT, "tests", "crashing", ("initialising", "pending")) == []
    assert history.current("another-project") == []

    assert isinstance(await crashing.submit(job({"mode": "sys_exit"}), TIMEOUT), Error)
    assert isinstance(await crashing.submit(job({"mode": "sleep 60"}), 0.5), Error)
    assert isinstance(await crashing.submit(job({"mode": "ok"}), TIMEOUT), Result)
    assert history.get(PROJECT, listed.id, "tests", "crashing").status == "running"
    assert descriptions(history, "crashing", listed.id) == [
        "Instance created",
        "Instance status changed to initialising",
        "Instance status changed to running",
        "Instance lost (crash): The instance stopped (exit code 3) while handling the request; it is being restarted",
        "Instance restarted in a new process",
        "Instance status changed to initialising",
        "Instance status changed to running",
        "Instance lost (timeout): The request timed out after 0.5 seconds; its instance is being restarted",
        "Instance restarted in a new process",
        "Instance status changed to initialising",
        "Instance status changed to running",
    ]

    await crashing.close()
    assert history.current(PROJECT) == []
    with pytest.raises(NotFound):
        history.get(PROJECT, listed.id)
    assert descriptions(history, "crashing", listed.id)[-1] == "Instance stopped", "its events outlive it"


async def test_an_instance_that_dies_while_idle_is_lost_and_restarted_at_once(pools, job):
    """Before, it was listed running until the next request, which failed although it never ran."""
    history = InstanceHistory()
    crashing = pools("crashing", events=history)
    crashing.start()
    killed = (await crashing.submit(job({"mode": "ok"}), TIMEOUT)).result["pid"]
    (instance,) = history.current(PROJECT)
    os.kill(killed, signal.SIGKILL)
    lost = "Instance lost (crash): The instance stopped (killed by signal SIGKILL) while idle; it is being restarted"
    async with asyncio.timeout(TIMEOUT):
        while "Instance status changed to running" not in descriptions(history, "crashing", instance.id)[4:]:
            await asyncio.sleep(0.05)
    assert descriptions(history, "crashing", instance.id)[3:5] == [lost, "Instance restarted in a new process"]
    reply = await crashing.submit(job({"mode": "ok"}), TIMEOUT)
    assert isinstance(reply, Result) and reply.result["pid"] != killed


async def test_an_instance_past_its_memory_limit_is_killed_and_replaced(pools, job):
    history = InstanceHistory()
    leaky = pools("leaky", events=history, memory_limit_mb=200)
    leaky.start()
    replies = [await leaky.submit(job("grow"), TIMEOUT) for _ in range(6)]
    (killed, *_) = [reply for reply in replies if isinstance(reply, Error)]
    assert killed.error.startswith("The instance used more than 200 MB of memory")
    (instance,) = history.current(PROJECT, "tests", "leaky")
    assert f"Instance lost (memory): {killed.error}" in descriptions(history, "leaky", instance.id)


async def test_the_peak_memory_of_the_process_that_started_an_instance_is_not_the_instance_s(pools, job):
    """Linux keeps a process's peak memory (`getrusage`) across `exec`: an instance started by a process that had
    once held more than the instance's limit (this test run, or a server after a large upload) reported that
    peak as its own, and each start failed."""
    held = bytearray(300 * 1024 * 1024)
    for page in range(0, len(held), 4096):  # resident: the pages are touched
        held[page] = 1
    del held
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 250 * 1024, "this process's peak is past the limit"
    leaky = pools("leaky", memory_limit_mb=200)
    leaky.start()
    replies = [await leaky.submit(job("grow"), TIMEOUT) for _ in range(2)]
    assert [reply.result.split()[1:] for reply in replies if isinstance(reply, Result)] == [
        ["holds", "64", "MB"], ["holds", "128", "MB"]], "one instance served both, under its limit"


async def test_a_job_that_passes_the_memory_limit_between_looks_fails_itself(pools, job, monkeypatch):
    """Jobs shorter than the server's look at the worker's memory: the peak each reply carries fails the
    job that passed the limit (as UbiOps' hard limit would), not a later one, and the instance is replaced."""
    monkeypatch.setattr("emulator.runtime.instance.MEMORY_POLL_SECONDS", 3600)  # one look, before the first job
    leaky = pools("leaky", memory_limit_mb=200)
    leaky.start()
    replies = [await leaky.submit(job("grow"), TIMEOUT) for _ in range(5)]
    first_error = next(n for n, reply in enumerate(replies) if isinstance(reply, Error))
    before, failed, after = replies[:first_error], replies[first_error], replies[first_error + 1:]
    assert failed.error.startswith("The instance used more than 200 MB of memory")
    assert [reply.result for reply in before] == [f"{before[0].result.split()[0]} holds {64 * n} MB"
                                                  for n in range(1, first_error + 1)]
    assert first_error >= 2, "the jobs under the limit (64 and 128 MB held) were not failed"
    assert after and after[0].result.split()[1:] == ["holds", "64", "MB"], "a new instance took the next job"


@pytest.mark.parametrize("how", ["fork", "subprocess"])
async def test_a_process_a_job_started_and_waited_for_between_looks_counts_in_its_peak(pools, job, monkeypatch, how):
    """A child that ended before the server's next look (a tool `subprocess.run` ran, a joined data loader's worker)
    is seen only in the peak the reply carries: the worker's alone let 200 MB past a 128 MB limit."""
    monkeypatch.setattr("emulator.runtime.instance.MEMORY_POLL_SECONDS", 3600)  # one look, before the first job
    limited = pools("child_memory", memory_limit_mb=128)
    limited.start()
    failed = await limited.submit(job(how), TIMEOUT)
    assert isinstance(failed, Error) and failed.error.startswith("The instance used more than 128 MB of memory")
    assert await limited.submit(job("small"), TIMEOUT) == Result("small: done"), "a new instance took the next job"


@pytest.mark.parametrize("environment", [{}, {"INIT_PEAK_HOLD": "1"}], ids=["returns", "holds"])
async def test_an_init_that_passes_the_memory_limit_fails_the_start_as_a_container_limit_would(pools, job, environment):
    """Before, a peak `__init__` reached was let through, so a model too big for its instance type
    served every request here and failed to start on UbiOps. Seen in the peak `__init__` returns with,
    or (one that never returns) by the look every 100 ms."""
    too_big = pools("init_peak", memory_limit_mb=200, environment=environment)
    too_big.start()
    await asyncio.wait_for(too_big.started(), TIMEOUT)
    assert too_big.error == ("tests/init_peak is unavailable: the deployment failed to start (Deployment.__init__ used "
                             "more than 200 MB of memory; the instance was stopped); see the emulator log")
    fits = pools("init_peak", memory_limit_mb=500)
    fits.start()
    replies = [await fits.submit(job("go"), TIMEOUT) for _ in range(3)]
    assert replies == [Result("loaded 300 MB once")] * 3, "a peak under the limit fails no request after it"


class StartedIds(NoEvents):
    """The id of every instance that started, in order (beside the history, as a second listener)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def instance_started(self, instance: Instance, restart: bool) -> None:
        self.ids.append(instance.id)


async def test_an_instance_that_cannot_start_leaves_the_list_with_the_reason_in_its_events(pools):
    history, started = InstanceHistory(), StartedIds()
    broken = pools("broken_init", events=EveryListener(history, started))
    broken.start()
    await broken.started()
    assert history.current(PROJECT) == []
    (instance_id,) = started.ids
    (lost,) = [d for d in descriptions(history, "broken_init", instance_id) if "lost" in d]
    assert lost.startswith("Instance lost (start): The deployment failed to start: ")


async def test_the_events_of_stopped_instances_are_kept_for_the_last_few_only(pools):
    history = InstanceHistory(kept_stopped=1)
    first, second = pools("minimal", events=history), pools("minimal", events=history)
    for pool in (first, second):
        pool.start()
        await pool.started()
    first_id, second_id = (r.id for r in history.current(PROJECT))
    await first.close()
    await second.close()
    with pytest.raises(NotFound):
        history.events(PROJECT, "tests", "minimal", first_id)
    assert descriptions(history, "minimal", second_id)[-1] == "Instance stopped"


async def test_an_unknown_status_filter_is_refused():
    with pytest.raises(NotAllowed, match="status: unknown instance status stopped; use pending, initialising, running, stopping"):
        InstanceHistory().current(PROJECT, statuses=("running", "stopped"))
