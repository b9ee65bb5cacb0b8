"""The runtime, in process: replacing a version's instances while a job runs and another waits
(the running one finishes on the old instances, the waiting one moves to the new), stopping a
version and closing everything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest
from submitting import TIMEOUT, queued, running

from emulator.runtime.manager import Runtime
from emulator.runtime.pool import STOPPED, NoEvents, NoInstances, VersionUnavailable
from emulator.runtime.protocol import Error, Result
from emulator.runtime.python_envs import EnvironmentBuilder

pytestmark = pytest.mark.anyio


@dataclass
class Version:
    name: str = "v1"
    id: str = field(default_factory=lambda: str(uuid4()))

    @property
    def unserved_reason(self) -> str:
        return f"Version {self.name} has no deployment package yet"


@pytest.fixture
async def runtime():
    runtime = Runtime(EnvironmentBuilder())
    runtime.start()
    yield runtime
    await runtime.close()


class Starts(NoEvents):
    """Counts the instances that start."""

    def __init__(self) -> None:
        self.count = 0

    def instance_started(self, instance, restart: bool) -> None:
        self.count += 1


async def test_instances_replaced_before_they_start_never_start(runtime, pools, job):
    """A replaced pool started its instances all the same, as its retirement was on its way: their starts
    were counted under the names the version had before a rename, and their processes started for nothing."""
    version, replaced_starts, serving_starts = Version(), Starts(), Starts()
    replaced, serving = pools("crashing", events=replaced_starts), pools("crashing", events=serving_starts)
    runtime.replace(version, replaced)
    await replaced.environment_built()  # its instances are about to start, their tasks made but not yet run
    runtime.replace(version, serving)
    assert pid_of(await serving.submit(job({"mode": "ok"}), TIMEOUT))
    await asyncio.wait_for(asyncio.gather(*runtime.drains(version)), TIMEOUT)
    assert (replaced_starts.count, serving_starts.count) == (0, 1)


def pid_of(reply) -> int:
    assert isinstance(reply, Result), reply
    return reply.result["pid"]


async def test_replacing_while_busy_finishes_the_running_job_and_moves_the_queued_one(runtime, pools, job):
    version = Version()
    old, new = pools("crashing"), pools("crashing")
    runtime.replace(version, old)
    busy = await running(runtime.pool(version), job({"mode": "sleep 1"}))
    waiting = await queued(runtime.pool(version), job({"mode": "ok"}))
    drain = runtime.replace(version, new)
    assert runtime.pool(version) is new
    later = await runtime.pool(version).submit(job({"mode": "ok"}), TIMEOUT)
    moved, finished = pid_of(await waiting), pid_of(await busy)
    assert moved == pid_of(later) != finished, "the queued job ran on the new instances, the running one on the old"
    await asyncio.wait_for(drain, TIMEOUT)
    assert not Path(f"/proc/{finished}").exists(), "the old instances stopped once their job finished"


@pytest.mark.parametrize("successor, died", [("crashing", "before"), ("crashing", "after"), ("broken_init", "after")])
async def test_a_job_found_on_a_dead_instance_of_a_replaced_pool_goes_to_the_successor(runtime, pools, job, successor,
                                                                                        died):
    """An old instance took the job, and its process died (`before` the save replaced the instances, or
    `after`, while they retire) before the job reached it: the job never ran, and goes to the new
    instances, as one given to the old pool after the save does. Their answer is its answer: their result,
    or why they cannot start."""
    version = Version()
    old, new = pools("crashing"), pools(successor)
    runtime.replace(version, old)
    worker = pid_of(await old.submit(job({"mode": "ok"}), TIMEOUT))
    [instance] = old._instances
    drains: list[asyncio.Task[None] | None] = []

    async def die() -> None:
        os.kill(worker, signal.SIGKILL)
        await asyncio.wait_for(asyncio.shield(instance.exited), TIMEOUT)

    @contextlib.asynccontextmanager
    async def replaced_as_readied() -> AsyncIterator[Error | None]:  # readied on the old instance, which dies
        if not drains:  # the first time: it is readied again by the instance it goes to
            if died == "before":
                await die()
            drains.append(runtime.replace(version, new))
            if died == "after":
                await die()
        yield None

    started: list[int] = []
    reply = await asyncio.wait_for(old.submit(job({"mode": "ok"}), TIMEOUT, on_start=lambda instance: started.append(instance.number),
                                              prepared=replaced_as_readied), TIMEOUT)
    if successor == "crashing":
        assert pid_of(reply) != worker and started == [1], "run by the new instance, started there only"
    else:
        assert reply == Error("tests/broken_init is unavailable: the deployment failed to start (FileNotFoundError: "
                              "model1.pkl is missing from the package); see the emulator log")
    [drain] = drains
    assert drain is not None
    await asyncio.wait_for(drain, TIMEOUT)


async def test_a_batch_job_found_on_a_dead_instance_of_a_replaced_pool_is_timed_anew_by_the_successor(
        runtime, pools, job, tmp_path):
    """A batch job's timeout counts from when an instance takes it. Taken by an old instance that died
    before the job reached it, it goes to the new instances, still starting after a save: it was timed
    from the dead instance's take all the same, and failed as having waited too long for a free instance
    (batch jobs wait as long as they must), though it never ran. It runs once they are ready."""
    version = Version()
    old, new = pools("crashing"), pools("hanging_init", environment={"HANG_FOLDER": str(tmp_path)})
    runtime.replace(version, old)
    worker = pid_of(await old.submit(job({"mode": "ok"}), TIMEOUT))
    [instance] = old._instances
    (tmp_path / "hang").touch()  # the new instances' __init__ runs until the test removes it
    taken: list[float] = []

    @contextlib.asynccontextmanager
    async def replaced_as_readied() -> AsyncIterator[Error | None]:  # readied on the old instance, which dies
        if not taken:  # the first time: it is readied again by the instance it goes to
            taken.append(time.monotonic())
            runtime.replace(version, new)
            os.kill(worker, signal.SIGKILL)
            await asyncio.wait_for(asyncio.shield(instance.exited), TIMEOUT)
        yield None

    timeout = 1
    batch = asyncio.create_task(old.submit(job({"mode": "ok"}), timeout, timed_in_queue=False,
                                           prepared=replaced_as_readied))
    await asyncio.wait_for(new.environment_built(), TIMEOUT)
    await asyncio.sleep(taken[0] + timeout - time.monotonic())  # its timeout, counted from the dead take, passes
    (tmp_path / "hang").unlink()
    assert await asyncio.wait_for(batch, TIMEOUT) == Result({"mode": "ok"})


async def test_replacing_with_no_instances_answers_the_queued_job_with_the_reason(runtime, pools, job):
    version = Version()
    runtime.replace(version, pools("crashing"))
    busy = await running(runtime.pool(version), job({"mode": "sleep 1"}))
    waiting = await queued(runtime.pool(version), job({"mode": "ok"}))
    runtime.replace(version, NoInstances("Version v1 could not be restarted"))
    assert await waiting == Error("Version v1 could not be restarted")
    pid_of(await busy)
    with pytest.raises(VersionUnavailable, match="could not be restarted"):
        runtime.pool(version).check_available()


async def test_stopping_a_version_answers_its_jobs_on_old_and_new_instances_alike(runtime, pools, job):
    version, other = Version(), Version("v2")
    runtime.replace(version, pools("crashing"))
    runtime.replace(other, pools("minimal"))
    on_old = await running(runtime.pool(version), job({"mode": "sleep 60"}))
    runtime.replace(version, pools("crashing"))
    on_new = await running(runtime.pool(version), job({"mode": "sleep 60"}))
    await runtime.stop(version, "Version v1 was deleted before this request finished")
    gone = Error("Version v1 was deleted before this request finished")
    assert (await on_old, await on_new) == (gone, gone)
    with pytest.raises(VersionUnavailable, match="Version v1 has no deployment package yet"):
        runtime.pool(version).check_available()
    assert await runtime.pool(other).submit(job("still here"), TIMEOUT) == Result("still here #1")


async def test_closing_answers_every_job_and_later_ones_with_stopped(runtime, pools, job):
    version = Version()
    runtime.replace(version, pools("crashing"))
    busy = await running(runtime.pool(version), job({"mode": "sleep 60"}))
    await runtime.close()
    assert (await busy, await runtime.pool(version).submit(job({"mode": "ok"}), TIMEOUT)) == (Error(STOPPED), Error(STOPPED))


async def test_instances_put_in_service_before_the_start_wait_for_it(pools, job):
    runtime, version = Runtime(EnvironmentBuilder()), Version("early")
    with pytest.raises(VersionUnavailable, match="Version early has no deployment package yet"):
        runtime.pool(version).check_available()
    first = pools("minimal")
    assert runtime.replace(version, pools("minimal")) is None
    assert runtime.replace(version, first) is None, "nothing ran before, so nothing drains"
    runtime.start()
    try:
        assert runtime.pool(version) is first
        assert await first.submit(job("now"), TIMEOUT) == Result("now #1")
    finally:
        await runtime.close()
