"""One version's instances, in process: jobs run, time out, crash, stream and are answered when the
pool closes; a pool whose deployment cannot start refuses them with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import metric_values
from submitting import TIMEOUT, queued, running

from emulator.metrics import Metrics
from emulator.runtime.instance import Instance, OnUpdate
from emulator.runtime.pool import AVAILABLE, START_FAILED, STARTING, UNAVAILABLE, NoEvents, Ticket, VersionUnavailable
from emulator.runtime.protocol import Capabilities, Error, Result
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.turns import PER_TURN

pytestmark = pytest.mark.anyio


async def test_a_job_runs_on_the_first_free_instance_and_the_deployment_keeps_its_state(pools, job):
    pool = pools("minimal")
    pool.start()
    first = await pool.submit(job("hello"), TIMEOUT)
    assert (pool.status, pool.capabilities) == (AVAILABLE, Capabilities(has_request_method=True, has_requests_method=False))
    assert (first, await pool.submit(job("again"), TIMEOUT)) == (Result("hello #1"), Result("again #2"))


async def test_jobs_given_before_the_instances_are_ready_wait_for_them(pools, job):
    pool = pools("minimal")
    pool.start()
    assert pool.status == STARTING
    assert await pool.submit(job("early"), TIMEOUT) == Result("early #1")


async def test_a_job_that_outlives_its_timeout_fails_and_its_instance_is_replaced(pools, job):
    pool = pools("crashing")
    pool.start()
    before = await pool.submit(job({"mode": "ok"}), TIMEOUT)
    assert await pool.submit(job({"mode": "sleep 60"}), 0.5) == \
        Error("The request timed out after 0.5 seconds; its instance is being restarted")
    after = await pool.submit(job({"mode": "ok"}), TIMEOUT)
    assert isinstance(after, Result) and after.result["pid"] != before.result["pid"]


@pytest.mark.parametrize("mode, reason", [("os_exit", "exit code 4"), ("segfault", "killed by signal SIGSEGV")])
async def test_a_crash_fails_only_its_own_job_and_the_instance_is_restarted(pools, job, mode, reason):
    pool = pools("crashing")
    pool.start()
    assert await pool.submit(job({"mode": mode}), TIMEOUT) == \
        Error(f"The instance stopped ({reason}) while handling the request; it is being restarted")
    assert isinstance(await pool.submit(job({"mode": "ok"}), TIMEOUT), Result)
    assert pool.status == AVAILABLE


async def test_a_restart_on_an_interpreter_gone_from_its_environment_names_it(pools, job, tmp_path):
    """It failed with a bare `FileNotFoundError: [Errno 2] No such file or directory`, its traceback logged
    at each try. (An environment whose folder is gone is built again: tests/test_environments.py.)"""
    pool = pools("crashing", environments=EnvironmentBuilder(tmp_path / "environments"))
    pool.start()
    assert isinstance(await pool.submit(job({"mode": "ok"}), TIMEOUT), Result)
    (python,) = (tmp_path / "environments").glob("*/bin/python")
    python.unlink()  # its folder still says it is whole: it is not built again
    assert isinstance(await pool.submit(job({"mode": "os_exit"}), TIMEOUT), Error)
    try:
        error = (await pool.submit(job({"mode": "ok"}), TIMEOUT)).error  # queued as the restart failed
    except VersionUnavailable as exc:  # or sent once it had
        error = str(exc)
    assert f"the deployment failed to restart (its environment's Python {python} is missing" in error, error


async def test_a_worker_that_dies_leaving_a_forked_child_is_noticed_at_once(pools, job):
    """The child holds the worker's channel and pipes open: the death was noticed at the job's timeout."""
    pool = pools("crashing")
    pool.start()
    group = os.getpgid((await pool.submit(job({"mode": "ok"}), TIMEOUT)).result["pid"])  # led by the instance's init
    reply = await asyncio.wait_for(pool.submit(job({"mode": "fork_exit"}), 60), 10)
    assert reply == Error("The instance stopped (exit code 9) while handling the request; it is being restarted")
    assert await gone(group), "its child was killed with it, as a container's processes end with its main one"
    assert isinstance(await pool.submit(job({"mode": "ok"}), TIMEOUT), Result)


async def gone(group: int) -> bool:
    """Whether the processes of `group` end within TIMEOUT (a killed child is reaped by init)."""
    for _ in range(TIMEOUT * 10):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_worker_whose_init_dies_leaving_a_forked_child_fails_its_start_at_once(pools, job):
    pool = pools("crashing", environment={"CRASH_AT_INIT": "fork_exit"}, start_timeout_seconds=60)
    pool.start()
    await asyncio.wait_for(pool.started(), 10)
    assert (pool.status, pool.failure) == (UNAVAILABLE, "the deployment failed to start (the instance stopped "
                                                        "(exit code 9) while starting); see the emulator log")


async def test_closing_answers_the_queued_jobs_a_few_at_a_time_other_work_running_in_between(pools, job):
    """A version deleted with 50 000 requests queued held the event loop ~3.3 s, each of them ending
    at once: they are answered PER_TURN at a time, and another task runs in between."""
    pool = pools("minimal")  # never started: its jobs stay queued
    waiting = [await queued(pool, job(n), timed_in_queue=False) for n in range(3 * PER_TURN)]
    closing = asyncio.create_task(pool.close("gone"))
    answered_then: set[int] = set()
    while not closing.done():  # another task, one turn of the loop at a time
        answered_then.add(sum(task.done() for task in waiting))
        await asyncio.sleep(0)
    assert answered_then - {0, len(waiting)}, "some were answered while others still waited"
    assert [await task for task in waiting] == [Error("gone")] * len(waiting)


@pytest.mark.parametrize("replaced", [False, True])
async def test_jobs_given_up_while_they_wait_leave_the_queue_with_their_data(pools, job, replaced):
    """50 000 pending requests cancelled stayed queued, with their data, until an instance came to each
    (a slow deployment's: for as long as it took), and counted in the version's queue length. Those
    its pool handed to a successor leave the successor's queue."""
    given = pools("minimal")  # never started: its jobs stay queued
    waiting = [await queued(given, job(n), timed_in_queue=False) for n in range(10)]
    timed_out = await queued(given, job("timed out"), timeout=0.01)
    pool = pools("minimal") if replaced else given
    if replaced:
        await given.retire(pool)
    for task in waiting[1:]:
        task.cancel()
    await asyncio.gather(*waiting[1:], return_exceptions=True)
    assert await timed_out == Error("The request timed out after 0.01 seconds waiting for a free instance")
    assert pool.queued == 1
    assert [ticket.job.data for ticket in pool._queue._queue] == [0], "only the job still waiting is kept"


async def test_a_worker_that_has_exited_is_not_killed_again_when_its_pool_closes(pools, job, monkeypatch):
    """Its process group was killed as it exited; by the time the pool closes (hours later, say), its
    number may be another process's."""
    pool = pools("crashing", environment={"CRASH_AT_INIT": "fork_exit"}, start_timeout_seconds=60)
    pool.start()
    await asyncio.wait_for(pool.started(), 10)
    killed: list[int] = []
    monkeypatch.setattr(os, "killpg", lambda group, _signal: killed.append(group))
    await pool.close()
    assert killed == []


async def test_each_worker_process_has_a_temporary_folder_of_its_own_gone_with_it(pools, job):
    """Before, the worker shared the emulator's: killed (a crash, a timeout, the emulator stopping), it
    never ran its own clean-up, and what it left in /tmp stayed for good."""
    pool = pools("crashing")
    pool.start()
    first = (await pool.submit(job({"mode": "temp"}), TIMEOUT)).result["temp"]
    assert Path(first).is_file() and Path(first).parent != Path(tempfile.gettempdir())
    await pool.submit(job({"mode": "os_exit"}), TIMEOUT)
    second = (await pool.submit(job({"mode": "temp"}), TIMEOUT)).result["temp"]
    assert not Path(first).parent.exists() and Path(second).parent != Path(first).parent
    await pool.close()
    assert not Path(second).parent.exists()


async def test_a_worker_that_closes_its_channel_but_runs_on_is_killed_and_its_job_fails(pools, job):
    """Its job once waited until the process happened to end, whatever its timeout."""
    pool = pools("crashing")
    pool.start()
    reply = await asyncio.wait_for(pool.submit(job({"mode": "close_channel"}), TIMEOUT), 30)
    assert reply == Error("The instance stopped (closed its channel to the emulator without exiting, and was "
                          "killed) while handling the request; it is being restarted")
    assert isinstance(await pool.submit(job({"mode": "ok"}), TIMEOUT), Result)


async def test_a_job_whose_instance_died_before_it_was_sent_runs_on_its_replacement(pools, job, monkeypatch):
    """The worker dies just as an instance takes the job, its exit not yet seen (here never): the job,
    which could not be sent, never ran, and goes back to the queue rather than failing."""
    monkeypatch.setattr(Instance, "exited", property(lambda _: asyncio.get_running_loop().create_future()))
    pool = pools("crashing")
    pool.start()
    killed = (await pool.submit(job({"mode": "ok"}), TIMEOUT)).result["pid"]
    group = os.getpgid(killed)
    os.kill(killed, signal.SIGKILL)
    assert await gone(group)
    started: list[int] = []
    after = await pool.submit(job({"mode": "ok"}), TIMEOUT, on_start=lambda instance: started.append(instance.number))
    assert isinstance(after, Result) and after.result["pid"] != killed
    assert started == [1], "started once, when it reached the replacement: not also on the dead instance"


async def test_a_queued_job_times_out_waiting_for_a_free_instance(pools, job):
    pool = pools("crashing")
    pool.start()
    busy = await running(pool, job({"mode": "sleep 2"}))
    assert await pool.submit(job({"mode": "ok"}), 0.2) == \
        Error("The request timed out after 0.2 seconds waiting for a free instance")
    assert isinstance(await busy, Result)


async def test_a_job_the_emulator_fails_to_send_fails_alone_and_the_instance_is_restarted(pools, job):
    """A fault on the emulator's side (here a job JSON cannot carry, which the request checks keep
    out) answers its job with the reason instead of stopping the instance's loop, which left every
    later job waiting."""
    pool = pools("minimal")
    pool.start()
    reply = await asyncio.wait_for(pool.submit(job(float("inf")), TIMEOUT), TIMEOUT)
    assert reply == Error("The emulator could not run the request (ValueError: Out of range float values are not JSON "
                          "compliant); its instance is being restarted")
    assert await asyncio.wait_for(pool.submit(job("after"), TIMEOUT), TIMEOUT) == Result("after #1")


async def test_a_jobs_preparation_is_entered_by_the_instance_that_takes_it_and_left_before_it_is_answered(pools, job):
    """The runner copies a request's input files in its preparation: made while jobs waited, every
    queued request held its copies at once. A preparation that fails, or fails to run, fails its job
    alone, and the instance runs the next (the deployment's count goes on)."""
    pool = pools("minimal")
    pool.start()
    steps: list[str] = []

    @contextlib.asynccontextmanager
    async def prepared(name: str, gives: Error | Exception | None = None) -> AsyncIterator[Error | None]:
        steps.append(f"enter {name}")
        if isinstance(gives, Exception):
            raise gives
        try:
            yield gives
        finally:
            steps.append(f"leave {name}")

    jobs = [pool.submit(job(name), TIMEOUT, prepared=functools.partial(prepared, name, gives))
            for name, gives in (("first", None), ("refused", Error("no copies")), ("faulty", OSError("disk")),
                                ("second", None))]
    assert await asyncio.gather(*jobs) == [
        Result("first #1"), Error("no copies"),
        Error("The emulator could not prepare the request (OSError: disk)"), Result("second #2")]
    assert steps == ["enter first", "leave first", "enter refused", "leave refused", "enter faulty",
                     "enter second", "leave second"]


def collect(updates: list[str]) -> OnUpdate:
    """An `on_update` that appends each update to `updates`."""

    async def append(text: str) -> None:
        updates.append(text)

    return append


async def test_partial_output_reaches_the_caller_before_the_result(pools, job):
    pool = pools("streaming")
    pool.start()
    updates: list[str] = []
    assert await pool.submit(job("hello streaming world"), TIMEOUT, on_update=collect(updates)) == \
        Result("HELLO STREAMING WORLD")
    assert updates == ["HELLO", "STREAMING", "WORLD"]


async def test_updates_a_request_streams_after_it_returned_reach_no_one(pools, job):
    """A thread the deployment left running kept the request's `streaming_update`: what it sent went
    to the caller of the request running then."""
    pool = pools("streaming")
    pool.start()
    alice: list[str] = []
    bob: list[str] = []
    assert await pool.submit(job("leave a thread", "alice"), TIMEOUT, on_update=collect(alice)) == Result("left")
    assert await pool.submit(job("release it", "bob"), TIMEOUT, on_update=collect(bob)) == Result("released")
    assert (alice, bob) == ([], [])
    assert await pool.submit(job("still streams"), TIMEOUT, on_update=collect(bob)) == Result("STILL STREAMS")
    assert bob == ["STILL", "STREAMS"]


async def test_a_cancelled_job_whose_caller_takes_no_update_frees_its_instance_at_once(pools, job):
    """A streamed update waits until the caller takes it (`on_update`): its instance, killed as the job was
    cancelled, was replaced only once the update was taken, or at the job's timeout."""
    pool = pools("streaming")
    pool.start()
    offered = asyncio.Event()

    async def never_taken(text: str) -> None:
        offered.set()
        await asyncio.Event().wait()

    stalled = asyncio.create_task(pool.submit(job("one two"), TIMEOUT, on_update=never_taken))
    await asyncio.wait_for(offered.wait(), TIMEOUT)
    stalled.cancel()
    assert await pool.submit(job("after"), TIMEOUT) == Result("AFTER")


NEAR_LIMIT = "y" * (2 ** 20 - 2 ** 10)
"""A message just under the 1 MiB limit the test sets, which the server reads in pieces all the same."""


@pytest.mark.parametrize("package, what, answer", [
    ("minimal", "The deployment's output", f"{NEAR_LIMIT} #1"),  # the first request of the restarted instance
    ("streaming", "A streaming update of the deployment", NEAR_LIMIT.upper()),
], ids=["output", "update"])
async def test_a_message_past_the_limit_fails_its_request_saying_so_and_restarts_the_instance(
        pools, job, monkeypatch, caplog, package, what, answer):
    """A reply or update past the limit (512 MiB) failed as the emulator's own fault, "The emulator could
    not run the request (ValueError: Separator is not found, and chunk exceed the limit)", with a traceback
    in the log. Here the limit is 1 MiB, and the channel is read 64 KiB at a time."""
    monkeypatch.setattr("emulator.runtime.protocol.MAX_MESSAGE_BYTES", 2 ** 20)
    monkeypatch.setattr("emulator.runtime.instance.READ_LIMIT", 2 ** 16)
    pool = pools(package)
    pool.start()
    assert await pool.submit(job("x" * 2 ** 21), TIMEOUT) == Error(
        f"{what} is larger than the emulator's limit of 1 MiB (as JSON), so the request failed; its instance, "
        "which was still sending it, is being restarted")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert await pool.submit(job(NEAR_LIMIT), TIMEOUT) == Result(answer)


async def test_a_deployments_own_stdout_lock_does_not_deadlock_its_reply(pools, job):
    """The worker flushed stdout holding its sending lock, while a thread of the deployment held its
    stdout's lock and waited to stream: neither went on, and the request timed out."""
    pool = pools("streaming")
    pool.start()
    assert await pool.submit(job("tee"), 5) == Result("teed"), "it timed out: both waited for the other"
    assert await pool.submit(job("still answers"), TIMEOUT) == Result("STILL ANSWERS")


async def test_a_deployment_that_cannot_start_makes_the_pool_unavailable_with_the_reason(pools, job):
    pool = pools("broken_init")
    pool.start()
    waiting = await queued(pool, job("early"))
    await asyncio.wait_for(pool.started(), TIMEOUT)
    assert pool.status == UNAVAILABLE
    expected = ("tests/broken_init is unavailable: the deployment failed to start (FileNotFoundError: model1.pkl "
                "is missing from the package); see the emulator log")
    assert (pool.error, await waiting) == (expected, Error(expected)), "a job already queued is answered too"
    with pytest.raises(VersionUnavailable, match=r"model1\.pkl is missing"):
        await pool.submit(job("late"), TIMEOUT)


async def test_a_pool_turned_unavailable_answers_its_queue_a_few_at_a_time_other_work_running_in_between(pools, job):
    """As a closing pool does: a version whose instances could not start with 50 000 requests queued
    answered them all in one turn of the event loop."""
    pool = pools("broken_init")
    waiting = [await queued(pool, job(n), timed_in_queue=False) for n in range(3 * PER_TURN)]
    pool.start()
    answered_then: set[int] = set()
    while not all(task.done() for task in waiting):  # another task, one turn of the loop at a time
        answered_then.add(sum(task.done() for task in waiting))
        await asyncio.sleep(0)
    assert answered_then - {0, len(waiting)}, "some were answered while others still waited"
    assert {await task for task in waiting} == {Error(pool.error)} and pool.status == UNAVAILABLE


def hanging(pools, folder: Path, hang_at_once: bool):
    """A pool of `hanging_init` allowed 1 s to start; its `__init__` hangs at once, or once a job crashed it."""
    if hang_at_once:
        (folder / "hang").touch()
    pool = pools("hanging_init", environment={"HANG_FOLDER": str(folder)}, start_timeout_seconds=1)
    pool.start()
    return pool


def started_processes(folder: Path) -> list[int]:
    return [int(path.name.removeprefix("started-")) for path in folder.glob("started-*")]


HUNG = ("tests/hanging_init is unavailable: the deployment failed to start (Deployment.__init__ did not return "
        "within 1 seconds; the instance was stopped); see the emulator log")


async def test_a_deployment_whose_init_hangs_is_stopped_and_the_jobs_waiting_for_it_are_answered(pools, job, tmp_path):
    """Before, a job timed from its start (a batch request) waited for ever for an instance that never started."""
    pool = hanging(pools, tmp_path, hang_at_once=True)
    waiting = await queued(pool, job("early"), timed_in_queue=False)
    assert await asyncio.wait_for(waiting, TIMEOUT) == Error(HUNG)
    assert (pool.status, pool.error) == (UNAVAILABLE, HUNG)
    [pid] = started_processes(tmp_path)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


HUNG_RESTART = ("tests/hanging_init is unavailable: the deployment failed to restart (Deployment.__init__ did not "
                "return within 1 seconds; the instance was stopped); its instances are tried again (see the emulator "
                "log): send the request again later")


async def test_an_instance_whose_restart_hangs_makes_the_version_unavailable_until_a_retry_starts(pools, job, tmp_path):
    told = Told()
    pool = pools("hanging_init", events=told, environment={"HANG_FOLDER": str(tmp_path)}, start_timeout_seconds=1)
    pool.start()
    await told.next(READY)
    assert await pool.submit(job("hello"), TIMEOUT) == Result("hello")
    assert await pool.submit(job("crash"), TIMEOUT) == \
        Error("The instance stopped (exit code 5) while handling the request; it is being restarted")
    waiting = await queued(pool, job("after"), timed_in_queue=False)
    assert await asyncio.wait_for(waiting, TIMEOUT) == Error(HUNG_RESTART)
    assert (pool.status, pool.error) == (UNAVAILABLE, HUNG_RESTART)
    (tmp_path / "hang").unlink()
    await told.next(READY)
    assert (pool.status, pool.error) == (AVAILABLE, None)
    assert await pool.submit(job("again"), TIMEOUT) == Result("again")


class Told(NoEvents):
    """What the pool tells of its instances, kept in order for the test to wait for, one at a time."""

    def __init__(self) -> None:
        self._told: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()

    def instance_ready(self, instance: Instance) -> None:
        self._told.put_nowait((READY, instance.number, ""))

    def instance_lost(self, instance: Instance, reason: str, detail: str) -> None:
        self._told.put_nowait((reason, instance.number, detail))

    async def next(self, what: str) -> tuple[int, str]:
        """The instance number and detail of the next event of this kind (READY or a loss's reason)."""
        while True:
            kind, number, detail = await asyncio.wait_for(self._told.get(), TIMEOUT)
            if kind == what:
                return number, detail


READY = "ready"
FLAKY = "The deployment failed to restart: RuntimeError: a transient init failure; retrying in 1 s"


async def test_an_instance_whose_restart_fails_is_retried_while_the_other_instances_serve(pools, job, tmp_path):
    """Before, one failed restart made the version unavailable for good, the other instance running."""
    told = Told()
    pool = pools("flaky_init", count=2, events=told, environment={"FLAG_FOLDER": str(tmp_path)})
    pool.start()
    await told.next(READY)
    await told.next(READY)
    numbers: list[int] = []
    assert await pool.submit(job("crash"), TIMEOUT, on_start=lambda instance: numbers.append(instance.number)) == \
        Error("The instance stopped (exit code 5) while handling the request; it is being restarted")
    assert await told.next(START_FAILED) == (numbers[0], FLAKY)
    assert (pool.status, pool.error) == (AVAILABLE, None)
    assert isinstance(await pool.submit(job("served"), TIMEOUT, on_start=lambda instance: numbers.append(instance.number)),
                      Result)
    assert numbers[1] != numbers[0], "the healthy instance serves meanwhile"
    (tmp_path / "fail").unlink()
    assert await told.next(READY) == (numbers[0], "")


async def test_a_version_whose_every_instance_fails_to_restart_is_unavailable_until_one_starts(pools, job, tmp_path):
    told = Told()
    pool = pools("flaky_init", events=told, environment={"FLAG_FOLDER": str(tmp_path)})
    pool.start()
    await told.next(READY)
    first = await pool.submit(job("hello"), TIMEOUT)
    assert await pool.submit(job("crash"), TIMEOUT) == \
        Error("The instance stopped (exit code 5) while handling the request; it is being restarted")
    await told.next(START_FAILED)
    expected = ("tests/flaky_init is unavailable: the deployment failed to restart (RuntimeError: a transient init "
                "failure); its instances are tried again (see the emulator log): send the request again later")
    assert (pool.status, pool.error) == (UNAVAILABLE, expected)
    with pytest.raises(VersionUnavailable, match="transient init failure"):
        await pool.submit(job("refused"), TIMEOUT)
    (tmp_path / "fail").unlink()
    await told.next(READY)
    assert (pool.status, pool.error) == (AVAILABLE, None)
    after = await pool.submit(job("after"), TIMEOUT)
    assert isinstance(after, Result) and isinstance(first, Result) and after.result != first.result


class Started(NoEvents):
    """Keeps the instances whose processes start, and whether as restarts."""

    def __init__(self) -> None:
        self.started: list[tuple[Instance, bool]] = []

    def instance_started(self, instance: Instance, restart: bool) -> None:
        self.started.append((instance, restart))


@pytest.mark.parametrize("turns", [0, 1, 2])
async def test_a_pool_closed_as_a_lost_worker_is_reaped_stops(pools, job, turns):
    """Closing cancels the instance as it notes how its worker ended: Python 3.11's `asyncio.wait_for`
    handed back the exit code and dropped the cancellation, so the instance was restarted and the
    close (the emulator's shutdown, a version's replacement) waited for it for ever."""
    events = Started()
    pool = pools("crashing", events=events)
    pool.start()
    worker = (await pool.submit(job({"mode": "ok"}), TIMEOUT)).result["pid"]
    [(instance, _)] = events.started
    os.kill(worker, signal.SIGKILL)
    await asyncio.wait_for(instance.exited, TIMEOUT)
    for _ in range(turns):
        await asyncio.sleep(0)
    closing = asyncio.ensure_future(pool.close())
    try:
        await asyncio.wait_for(asyncio.shield(closing), TIMEOUT)
    finally:
        if not closing.done():
            assert pool._task is not None
            pool._task.cancel()  # the restarted instance; the fixture's close would wait for it too
            await closing
    assert [restart for _, restart in events.started] == [False]


async def test_closing_answers_the_running_queued_and_later_jobs_with_the_reason(pools, job):
    pool = pools("crashing")
    pool.start()
    busy = await running(pool, job({"mode": "sleep 60"}))
    waiting = await queued(pool, job({"mode": "ok"}))
    await pool.close("Version v1 was deleted before this request finished")
    gone = Error("Version v1 was deleted before this request finished")
    assert (await busy, await waiting, await pool.submit(job({"mode": "ok"}), TIMEOUT)) == (gone, gone, gone)


async def test_closing_leaves_the_preparation_of_a_job_being_readied_and_answers_it(pools, job):
    """A version deleted, or the emulator stopping, while an instance copies a request's input files:
    the copies are removed all the same."""
    pool = pools("minimal")
    pool.start()
    steps: list[str] = []
    entered = asyncio.Event()

    @contextlib.asynccontextmanager
    async def forever() -> AsyncIterator[Error | None]:
        steps.append("enter")
        entered.set()
        try:
            await asyncio.Event().wait()
            yield None
        finally:
            steps.append("leave")

    readied = asyncio.ensure_future(pool.submit(job("never sent"), TIMEOUT, prepared=forever))
    await asyncio.wait_for(entered.wait(), TIMEOUT)
    await pool.close("Version v1 was deleted before this request finished")
    assert (await readied, steps) == (Error("Version v1 was deleted before this request finished"), ["enter", "leave"])


@pytest.mark.parametrize("stop_held", [True, False])
async def test_a_job_taken_from_the_queue_as_its_pool_retires_runs_on_the_successor(pools, job, stop_held):
    """A save under `--reload` replaced the instances just as an old one took a job from the queue: the
    old pool, its queue empty and nothing running, closed at once. The job then either ran there and was
    cancelled unanswered as the instances stopped, its caller waiting out its timeout (`stop_held`: the
    stop waits until the job is being readied), or went back to the closed pool's queue and was told
    the emulator stopped; it runs on the new instances."""
    old, new = pools("minimal"), pools("minimal")
    stopping, readied = asyncio.Event(), asyncio.Event()
    retiring: list[asyncio.Task[None]] = []
    get, stop = old._queue.get, old._stop

    async def get_as_retired() -> Ticket:  # the old instance takes the job, then the save replaces the pool
        ticket = await get()
        if ticket.job.data == "raced":
            retiring.append(asyncio.create_task(old.retire(new)))
            await stopping.wait()
        return ticket

    async def stop_once_readied() -> None:
        stopping.set()
        if stop_held:
            await readied.wait()
        await stop()

    @contextlib.asynccontextmanager
    async def readying() -> AsyncIterator[Error | None]:  # readied on the old instance, the job waits for it to stop
        readied.set()
        await old.close()
        yield None

    old._queue.get, old._stop = get_as_retired, stop_once_readied  # type: ignore[method-assign]
    old.start()
    new.start()
    assert await old.submit(job("warm"), TIMEOUT) == Result("warm #1"), "the old instance now waits for a job"
    raced = old.submit(job("raced"), TIMEOUT, prepared=readying)
    assert await asyncio.wait_for(raced, TIMEOUT) == Result("raced #1"), "run by the new instance, its first"
    await asyncio.wait_for(retiring[0], TIMEOUT)


async def test_a_job_timed_from_its_start_waits_in_the_queue_longer_than_its_timeout(pools, job):
    """A batch request's timeout counts from when an instance takes it, as on UbiOps."""
    pool = pools("crashing")
    pool.start()
    busy = await running(pool, job({"mode": "sleep 1.5"}))
    waiting = await queued(pool, job({"mode": "ok"}), timeout=0.5, timed_in_queue=False)
    assert isinstance(await busy, Result)
    assert isinstance(await asyncio.wait_for(waiting, TIMEOUT), Result)


async def test_withdrawing_a_running_job_stops_its_instance_which_is_replaced(pools, job):
    metrics = Metrics()
    pool = pools("crashing", events=metrics)
    pool.start()
    before = await pool.submit(job({"mode": "ok"}), TIMEOUT)
    busy = await running(pool, job({"mode": "sleep 60"}))
    busy.cancel()
    with pytest.raises(asyncio.CancelledError):
        await busy
    after = await pool.submit(job({"mode": "ok"}), TIMEOUT)
    assert isinstance(after, Result) and after.result["pid"] != before.result["pid"]
    lost = metric_values(metrics.exposition().decode())("ubiops_emulator_instance_crashes_total", project="runtime-tests",
                                                         deployment="tests", version="crashing", reason="cancelled")
    assert lost == 1
