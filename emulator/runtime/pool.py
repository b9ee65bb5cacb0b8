"""The instances of one version: N worker processes taking jobs from one queue, as on UbiOps.

An instance lost to a timeout or a crash fails only the request it was running and is replaced.
If an instance cannot start the first time (`__init__` raised or hung, the process died), the version
is unavailable: queued and new requests get that error rather than waiting forever. A replacement that
cannot start is tried again, ever later (RETRY_SECONDS), while the other instances serve, and so is one
that keeps ending soon after it started (CRASH_LOOP_SECONDS); the version is unavailable only while none of
them can. A version with nothing to run has `NoInstances`, which
refuses every request with the reason.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from contract.environments import CONDA_FILE, CONDA_NOT_BUILT
from contract.revisions import BUILDING
from contract.text import shortened
from emulator.runtime.instance import (
    Instance,
    InstanceLost,
    InstanceStartError,
    InstanceTimedOut,
    InstanceUnreached,
    Launch,
    OnUpdate,
)
from emulator.runtime.protocol import Capabilities, Error, Job, Reply
from emulator.runtime.python_envs import EnvironmentBuilder, EnvironmentBuildError
from emulator.turns import in_turns

log = logging.getLogger("emulator.pool")

STARTING, AVAILABLE, UNAVAILABLE = BUILDING, "available", "unavailable"
"""A pool's status, as UbiOps shows a version's: its instances starting is `building` there too, the
word a revision's build also uses (`contract.revisions.BUILDING`); `Version.status` joins the two."""
REPLY_GRACE_SECONDS = 30
"""How long past its timeout a running job may take to be answered: the instance enforces the
timeout itself (and is then killed); this bound only guarantees no caller ever waits forever."""
STOPPED = "The emulator stopped before this request finished"
START_FAILED = "start"
"""The reason an instance is lost when it cannot start (`__init__` raised or hung, the process died)."""
RETRY_SECONDS = (1, 2, 4, 8, 15, 30, 60)
"""How long a lost instance whose replacement could not start waits before each new try (the last
one for every try after): a cause that goes (a server `__init__` calls comes back up) is soon
noticed, one that stays costs a start a minute."""
CRASH_LOOP_SECONDS = 10
"""An instance whose process ends by itself while idle within this long of becoming ready, twice in a row, is in a
crash loop (its `__init__` left something behind that kills it: a thread, a child process it needs): from the second
such loss, it is restarted as one whose start failed, ever later (RETRY_SECONDS). It was restarted at once, for ever:
224 times in 75 s, its version available throughout. The first loss still restarts at once (a worker killed from
outside). Long enough to catch a loop whose cause takes a few seconds; one whose instance lives longer restarts at
most once per this long anyway."""


Preparation = Callable[[], contextlib.AbstractAsyncContextManager[Error | None]]
"""What an instance that takes a job does around running it (`Ticket.prepared`): entering readies the job
and gives None, or an `Error` that fails it unrun; leaving cleans up after it, before the job is answered."""


class VersionUnavailable(Exception):
    """The version's instances cannot start; the message says why."""


class InstanceEvents(Protocol):
    """Told what happens to a pool's instances (`emulator.metrics.Metrics` counts it,
    `emulator.instance_history.InstanceHistory` keeps it for the API)."""

    def instance_started(self, instance: Instance, restart: bool) -> None:
        """An instance's process is starting; `restart`: it replaces the instance's lost process."""

    def instance_ready(self, instance: Instance) -> None:
        """An instance's `Deployment.__init__` returned: it takes requests."""

    def instance_lost(self, instance: Instance, reason: str, detail: str) -> None:
        """An instance's process ended unasked: `InstanceLost.reason`, or START_FAILED (a first start
        is not tried again, and the instance is stopped next; a restart is); `detail` says what
        happened, in a sentence."""

    def instance_stopped(self, instance: Instance) -> None:
        """An instance was stopped for good: its version was replaced, deleted, or the emulator stops, or
        it could not start the first time."""


class NoEvents:
    """Nobody listening."""

    def instance_started(self, instance: Instance, restart: bool) -> None:
        pass

    def instance_ready(self, instance: Instance) -> None:
        pass

    def instance_lost(self, instance: Instance, reason: str, detail: str) -> None:
        pass

    def instance_stopped(self, instance: Instance) -> None:
        pass


class EveryListener:
    """Tells each of several listeners, in order."""

    def __init__(self, *listeners: InstanceEvents) -> None:
        self._listeners = listeners

    def instance_started(self, instance: Instance, restart: bool) -> None:
        for listener in self._listeners:
            listener.instance_started(instance, restart)

    def instance_ready(self, instance: Instance) -> None:
        for listener in self._listeners:
            listener.instance_ready(instance)

    def instance_lost(self, instance: Instance, reason: str, detail: str) -> None:
        for listener in self._listeners:
            listener.instance_lost(instance, reason, detail)

    def instance_stopped(self, instance: Instance) -> None:
        for listener in self._listeners:
            listener.instance_stopped(instance)


NO_EVENTS = NoEvents()


@dataclass(eq=False)
class Ticket:
    """A job given to a pool: queued, then running on one of its instances; `future` gets the reply."""

    job: Job
    timeout: float
    deadline: float | None
    """When the job must be answered: `timeout` after it was given, or (None until then) after an instance took it."""
    timed_in_queue: bool = True
    """False: timed from when an instance takes it (a batch request); one given back unrun is timed anew (`adopt`)."""
    on_start: Callable[[Instance], None] | None = None
    on_update: OnUpdate | None = None
    prepared: Preparation | None = None
    """Entered by each instance that takes the job, around sending and running it: a request's input
    files are copied then, not while it waits in the queue, and removed before the instance takes another."""
    instance: Instance | None = None
    """The instance running the job, while it runs."""
    taken: asyncio.Event = field(default_factory=asyncio.Event)
    future: asyncio.Future[Reply] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class JobQueue(asyncio.Queue[Ticket]):
    """First come, first served; a job whose instance was found dead before it ran goes back to the front,
    and jobs given up while they wait are taken out (`note_withdrawn`)."""

    _queue: collections.deque[Ticket]  # asyncio.Queue's own store (its `_init`)
    _withdrawn = 0
    """Jobs given up while they waited since the last sweep (some may have been taken since)."""

    def put_first(self, ticket: Ticket) -> None:
        self.put_nowait(ticket)  # wakes a waiting instance, which takes the first job when it runs
        self._queue.rotate(1)

    def note_withdrawn(self) -> None:
        """A job waiting here was given up (its future is done): such jobs are swept out once they are
        half the queue (so each costs O(1)). 50 000 pending requests cancelled stayed queued, with their
        data and records, until an instance came to each, and were counted in the queue's length."""
        self._withdrawn += 1
        if 2 * self._withdrawn >= len(self._queue):
            waiting = [ticket for ticket in self._queue if not ticket.future.done()]
            self._queue.clear()
            self._queue.extend(waiting)
            self._withdrawn = 0

    def take_all(self) -> list[Ticket]:
        """Every job here, in order, the queue left empty."""
        tickets = list(self._queue)
        self._queue.clear()
        self._withdrawn = 0
        return tickets

    @property
    def waiting(self) -> int:
        """The jobs waiting, those given up but not yet swept out aside."""
        return sum(not ticket.future.done() for ticket in self._queue)


class InstancePool:
    def __init__(self, launch: Launch, count: int, environments: EnvironmentBuilder,
                 events: InstanceEvents = NO_EVENTS) -> None:
        self.launch = launch
        self.count = count
        self.environments = environments
        self.events = events
        self.status = STARTING
        self.failure: str | None = None
        """Why the instances cannot start, once they cannot: the cause alone, a build's `error_message`
        (a pool built for a revision is not yet the version's, which goes on serving its previous one)."""
        self.error: str | None = None
        """What the version's requests are answered then: that it is unavailable, and why."""
        self.capabilities = Capabilities()
        self._queue = JobQueue()
        self._task: asyncio.Task[None] | None = None
        """Builds the environment, then runs the instances."""
        self._instances: list[Instance] = []
        self._running: set[Ticket] = set()
        self._failing: set[Instance] = set()
        """The instances whose replacement could not start, waiting to be tried again."""
        self._ready_at: dict[Instance, float] = {}
        """When each instance's current process became ready (`time.monotonic`)."""
        self._losses_soon: dict[Instance, int] = {}
        """How many times in a row each instance was lost while idle soon after it became ready (CRASH_LOOP_SECONDS)."""
        self._free = 0
        self._settled = asyncio.Event()
        """Set once the status is no longer STARTING."""
        self._built = asyncio.Event()
        """Set once the environment is built (or the pool failed): the instances start next."""
        self._idle = asyncio.Event()
        """Set while no job is running."""
        self._idle.set()
        self._closed: str | None = None
        """Once closed, the reason, which answers any job still given to the pool."""
        self.replaced: InstancePool | NoInstances | None = None
        """The pool that took the version over, set by the runtime as it does (and by `retire`): no instance
        of this one starts from then on (one that started as the retirement was on its way counted its start
        under the names the version had before a rename), and every job given here since goes to it (`adopt`)."""
        self._stopping: asyncio.Future[None] | None = None
        self._refusing: asyncio.Future[None] | None = None
        """The answering of the jobs queued when the version last turned unavailable (`_refuse`)."""

    def start(self) -> None:
        """Build the version's environment, then start the instances, in the background (once);
        requests queue until they are ready."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            python = await self.environments.prepare(self.launch.python_environment, self.launch.log_fields)
        except (EnvironmentBuildError, OSError) as exc:  # OSError: the cache folder cannot be written, say
            self._fail(f"its environment could not be built: {exc}")
            return
        except Exception as exc:  # a fault of ours: the version fails with it rather than build for ever
            log.exception("building the environment of %s failed", self.launch.name, extra=self.launch.log_fields)
            self._fail(f"its environment could not be built ({type(exc).__name__}: {exc}); see the emulator log")
            return
        self._built.set()
        if self.replaced is not None:
            return
        self._instances = [Instance(self.launch, n + 1, python) for n in range(self.count)]
        await asyncio.gather(*(self._serve(instance) for instance in self._instances))

    async def environment_built(self) -> None:
        """Return once the version's environment is ready (the instances start next), or the pool failed
        or was closed."""
        await self._built.wait()

    async def started(self) -> None:
        """Return once the instances are ready (`available`) or cannot start (`unavailable`), or the pool
        was closed first (still `building`)."""
        await self._settled.wait()

    async def submit(
        self,
        job: Job,
        timeout: float,
        on_start: Callable[[Instance], None] | None = None,
        on_update: OnUpdate | None = None,
        timed_in_queue: bool = True,
        prepared: Preparation | None = None,
    ) -> Reply:
        """Run one job on the first free instance; the worker's reply, or an `Error`.

        `on_start` is called with the instance when the job has reached one, `on_update` with
        each partial output the deployment streams; the instance that takes the job enters `prepared`
        (`Ticket.prepared`) around running it. The timeout counts from now, waiting in the queue
        included (a direct request), or, with `timed_in_queue=False`, from when an instance takes the
        job (a batch request, which waits for an instance as long as it must). A job an instance has
        taken is timed by that instance (which is then replaced); the pool's own bound only ends a job
        still queued and guarantees no caller waits forever. Cancelling the caller withdraws the job:
        a queued one is dropped, a running one's instance is stopped and replaced.
        """
        self.check_available()
        ticket = Ticket(job, timeout, time.monotonic() + timeout if timed_in_queue else None, timed_in_queue,
                        on_start, on_update, prepared)
        self.adopt(ticket)
        try:
            return await self._answer(ticket)
        except asyncio.CancelledError:
            ticket.future.cancel()
            if ticket.instance is not None:
                ticket.instance.interrupt()
            elif not ticket.taken.is_set():
                self._note_withdrawn()
            raise

    async def _answer(self, ticket: Ticket) -> Reply:
        """The reply by the ticket's deadline; past it, an `Error` for a job still queued, or, after a
        grace period, for one whose instance did not answer. A job timed from its take has no deadline
        until an instance takes it, nor again once it goes back to a queue unrun (`adopt`): it waits."""
        while not ticket.future.done():
            if ticket.deadline is None:
                await _taken_or_answered(ticket)
                continue
            remaining = ticket.deadline - time.monotonic()
            if remaining <= 0:
                return await self._overdue(ticket)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ticket.future), remaining)
        return ticket.future.result()

    async def _overdue(self, ticket: Ticket) -> Reply:
        """An `Error` for a job past its deadline still queued; one an instance runs has a grace period."""
        if not ticket.taken.is_set():
            ticket.future.cancel()
            self._note_withdrawn()
            return Error(f"The request timed out after {ticket.timeout:g} seconds waiting for a free instance")
        try:
            return await asyncio.wait_for(asyncio.shield(ticket.future), REPLY_GRACE_SECONDS)
        except TimeoutError:
            ticket.future.cancel()
            return Error(f"The request timed out after {ticket.timeout:g} seconds and its instance did not answer")

    def _note_withdrawn(self) -> None:
        """A job given up before an instance took it leaves the queue it waits in: this pool's, or, once
        this pool was replaced, its successor's (`retire` moved it there)."""
        pool = self
        while isinstance(pool.replaced, InstancePool):
            pool = pool.replaced
        pool._queue.note_withdrawn()

    @property
    def queued(self) -> int:
        """How many jobs wait for a free instance."""
        return self._queue.waiting

    @property
    def free(self) -> int:
        """How many instances are started and wait for a job: the next jobs given run at once."""
        return self._free

    def check_available(self) -> None:
        """Raise VersionUnavailable if the instances cannot start (waiting for them to start is fine)."""
        if self.status == UNAVAILABLE:
            raise VersionUnavailable(self.error)

    def adopt(self, ticket: Ticket, first: bool = False) -> None:
        """Queue a job, given here or by a pool this one replaces, or (`first`) at the front, one an
        instance took but never ran; answer it at once if it cannot run. A replaced pool passes it on to
        its successor: it never ran here, and the version's instances were only replaced."""
        if self.replaced is not None:
            self.replaced.adopt(ticket, first)
        elif self._closed is not None:
            _settle(ticket, Error(self._closed))
        elif self.status == UNAVAILABLE:
            _settle(ticket, Error(self.error or f"{self.launch.name} is unavailable"))
        elif first:
            ticket.taken.clear()
            if not ticket.timed_in_queue:  # it never ran: its timeout counts from the next take
                ticket.deadline = None
            self._queue.put_first(ticket)
        else:
            self._queue.put_nowait(ticket)

    async def retire(self, successor: InstancePool | NoInstances) -> None:
        """Step down for `successor`: queued jobs move to it at once, running jobs finish here (each
        bounded by its timeout), then the instances stop. Cancelled, they stop at once. A job given here
        from now on, or taken from the queue as it moved, goes to `successor` too (`adopt`)."""
        self.replaced = successor
        while not self._queue.empty():
            successor.adopt(self._queue.get_nowait())
        try:
            await self._idle.wait()
        finally:
            await self.close()

    async def close(self, reason: str = STOPPED) -> None:
        """Stop the instances now; every job still queued or running is answered with `reason`.
        The first call decides the reason; each returns once the instances have stopped."""
        if self._stopping is None:
            self._closed = reason
            self._built.set()  # whoever waits for the start learns that it will not come
            self._settled.set()
            for ticket in self._running:
                _settle(ticket, Error(reason))
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        assert self._closed is not None, "set by `close`"
        await _answer_all(self._queue.take_all(), Error(self._closed))  # one given since is answered by `adopt`
        if self._refusing is not None:
            await self._refusing
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(i.stop() for i in self._instances), return_exceptions=True)
        for instance in self._instances:
            self.events.instance_stopped(instance)

    async def _serve(self, instance: Instance) -> None:
        if self.replaced is not None:
            return
        if (problem := await self._start(instance)) is not None:
            self.events.instance_lost(instance, START_FAILED, f"The deployment failed to start: {problem}")
            self.events.instance_stopped(instance)
            self._fail(f"the deployment failed to start ({problem}); see the emulator log")
            return
        while True:
            self._free += 1
            try:
                ticket = await self._take(instance)
            finally:
                self._free -= 1
            if ticket is None:
                self.events.instance_lost(instance, InstanceLost.reason, await instance.lost_while_idle())
                if self.replaced is not None:
                    return
                await self._restart(instance, self._crash_loop(instance))
                continue
            if self.replaced is not None or self._closed is not None:
                # Taken from the queue just before it was handed over (`retire`) or emptied (`close`), and
                # left unanswered by both: it runs on the successor or is answered now, never here, where
                # stopping the instances would cancel it unanswered (its caller waited out its timeout).
                self.adopt(ticket, first=True)
                continue
            if ticket.deadline is None:
                ticket.deadline = time.monotonic() + ticket.timeout
            if ticket.future.done() or ticket.deadline <= time.monotonic():
                continue
            ticket.taken.set()
            self._running.add(ticket)
            self._idle.clear()
            try:
                reply, lost = await self._run_job(instance, ticket)
            finally:
                ticket.instance = None
                self._running.discard(ticket)
                if not self._running:
                    self._idle.set()
            if reply is not None:
                _settle(ticket, reply)
            elif lost:  # it never reached the instance, found dead: another takes it (its preparation was left)
                self.adopt(ticket, first=True)
            if lost:
                self._losses_soon.pop(instance, None)  # the request it ran may have ended it: no loop of its own
                if self.replaced is not None:  # its successor serves the version
                    return
                await self._restart(instance)

    async def _run_job(self, instance: Instance, ticket: Ticket) -> tuple[Reply | None, bool]:
        """Run a job `instance` has taken, within its preparation: its reply (None when there is none to
        give: it was withdrawn, or, with the instance lost, never reached it), and whether the instance was
        lost. A fault in the preparation fails this job only, never the instance: it never ran the job."""
        if ticket.prepared is None:
            return await self._send(instance, ticket)
        outcome: tuple[Reply | None, bool] | None = None
        try:
            async with ticket.prepared() as failed:
                if failed is not None or ticket.future.done():  # withdrawn while it was readied
                    outcome = failed, False
                else:
                    outcome = await self._send(instance, ticket)
        except Exception as exc:
            log.exception("[%s] could not prepare a request or clean up after it", instance.label,
                          extra=self.launch.log_fields)
            if outcome is None:
                outcome = Error(f"The emulator could not prepare the request ({type(exc).__name__}: {exc})"), False
        return outcome

    async def _send(self, instance: Instance, ticket: Ticket) -> tuple[Reply | None, bool]:
        """Run the job on `instance`, within its deadline (as `_run_job` answers)."""
        assert ticket.deadline is not None, "set when the job was given or taken"
        remaining = ticket.deadline - time.monotonic()
        if remaining <= 0:  # its preparation took the rest of its time
            return Error(f"The request timed out after {ticket.timeout:g} seconds before it reached its instance"), False
        ticket.instance = instance
        try:
            return await instance.run(ticket.job, remaining, ticket.on_update, _on_sent(ticket, instance)), False
        except InstanceUnreached as exc:
            self.events.instance_lost(instance, exc.reason, str(exc))
            return None, True
        except InstanceLost as exc:
            reply = Error(f"The request timed out after {ticket.timeout:g} seconds; its instance is being restarted"
                          if isinstance(exc, InstanceTimedOut) else str(exc))
            self.events.instance_lost(instance, exc.reason, reply.error)
            return reply, True
        except Exception as exc:  # a fault in the emulator: it fails this job, never the jobs after it
            log.exception("[%s] could not run a request", instance.label, extra=self.launch.log_fields)
            await instance.stop()
            reply = Error(f"The emulator could not run the request ({type(exc).__name__}: {exc}); "
                          "its instance is being restarted")
            self.events.instance_lost(instance, InstanceLost.reason, reply.error)
            return reply, True

    async def _take(self, instance: Instance) -> Ticket | None:
        """The next job for `instance`, or None once its process has ended while it waited (killed, or
        ended by a thread of the deployment's): it was noticed only by the next job, which failed
        although it never ran, and was listed running meanwhile."""
        exited = instance.exited
        if exited.done():
            return None
        if not self._queue.empty():
            return self._queue.get_nowait()
        taking = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait((taking, exited), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: the pool closes
            self._give_back(taking)
            raise
        if exited.done():
            self._give_back(taking)
            return None
        return taking.result()

    def _give_back(self, taking: asyncio.Future[Ticket]) -> None:
        """Withdraw from the queue: the job taken, if any, goes back to its front."""
        if taking.done() and not taking.cancelled():
            self.adopt(taking.result(), first=True)
        else:
            taking.cancel()

    async def _start(self, instance: Instance, restart: bool = False) -> str | None:
        """Start the instance's process and wait for its `__init__`: None once it is ready, else why it
        could not start (its process is stopped)."""
        self.events.instance_started(instance, restart)
        try:
            self.capabilities = await instance.start()
        except InstanceStartError as exc:
            problem = str(exc)
        except Exception as exc:  # not the deployment's fault but the machine's (its package folder moved away): it fails alike
            if isinstance(exc, FileNotFoundError) and not os.path.exists(instance.python):
                problem = f"its environment's Python {instance.python} is missing (its cache was removed?)"
            else:
                log.exception("[%s] could not be started", instance.label, extra=self.launch.log_fields)
                problem = f"{type(exc).__name__}: {exc}"
            await instance.stop()
        else:
            self._ready_at[instance] = time.monotonic()
            self.events.instance_ready(instance)
            if self.status == STARTING:
                self.status = AVAILABLE
                self._settled.set()
            return None
        conda = f"; its {CONDA_NOT_BUILT}" if (self.launch.package_dir / CONDA_FILE).is_file() else ""
        return shortened(problem) + conda  # a 45 MB message was logged whole, twice

    def _crash_loop(self, instance: Instance) -> tuple[str, int] | None:
        """For an instance lost while idle: None when it lived past CRASH_LOOP_SECONDS, or for the first such loss
        in a row; else why its restart counts as a failed start, and how many failed before it."""
        lived = time.monotonic() - self._ready_at.pop(instance, -math.inf)
        if lived >= CRASH_LOOP_SECONDS:
            self._losses_soon.pop(instance, None)
            return None
        losses = self._losses_soon[instance] = self._losses_soon.get(instance, 0) + 1
        if losses < 2:
            return None
        return f"the instance stopped within {CRASH_LOOP_SECONDS} s of becoming ready, {losses} times in a row", losses - 2

    async def _restart(self, instance: Instance, crash_loop: tuple[str, int] | None = None) -> None:
        """Replace a lost instance's process, trying again after each failed start (RETRY_SECONDS) for as
        long as it takes: the cause may go (a server its `__init__` calls comes back up). Meanwhile the
        other instances serve; the version is unavailable only while every instance is failing so. An
        instance in a crash loop (`_crash_loop`: why, and the failed starts before) waits as after a failed start."""
        problem, first = crash_loop or (None, 0)
        for retry in itertools.count(first):
            if problem is None:
                problem = await self._prepare_again(instance)
            if problem is None:
                problem = await self._start(instance, restart=True)
            if problem is None:
                break
            delay = RETRY_SECONDS[min(retry, len(RETRY_SECONDS) - 1)]
            log.error("[%s] could not restart: %s; trying again in %d s", instance.label, problem, delay,
                      extra=instance.log_fields)
            self.events.instance_lost(instance, START_FAILED,
                                      f"The deployment failed to restart: {problem}; retrying in {delay} s")
            self._failing.add(instance)
            if len(self._failing) == len(self._instances) and self.failure is None:
                self._refuse(f"{self.launch.name} is unavailable: the deployment failed to restart ({problem}); "
                             "its instances are tried again (see the emulator log): send the request again later")
            await asyncio.sleep(delay)
            problem = None
        self._failing.discard(instance)
        if self.status == UNAVAILABLE and self.failure is None:
            log.info("%s is available again: an instance restarted", self.launch.name, extra=self.launch.log_fields)
            self.status, self.error = AVAILABLE, None

    async def _prepare_again(self, instance: Instance) -> str | None:
        """Before a restart, the version's environment again (`EnvironmentBuilder.prepare_again`: at once
        while it is whole, built again when its cache was removed): None once `instance` has it, else why not."""
        try:
            instance.python = await self.environments.prepare_again(self.launch.python_environment, instance.python,
                                                                    self.launch.log_fields)
        except (EnvironmentBuildError, OSError) as exc:
            return f"its environment could not be built again: {exc}"
        except Exception as exc:  # a fault of ours: the restart is tried again, as after a failed start
            log.exception("[%s] could not prepare its environment again", instance.label, extra=instance.log_fields)
            return f"its environment could not be built again ({type(exc).__name__}: {exc})"
        return None

    def _fail(self, failure: str) -> None:
        """The instances cannot start, for `failure`: every job queued or to come is refused, for good. The
        log line names the cause only, as it may be a revision's build that failed, not the version."""
        log.error("the instances of %s cannot start: %s", self.launch.name, failure, extra=self.launch.log_fields)
        self.failure = failure
        self._refuse(f"{self.launch.name} is unavailable: {failure}")
        self._settled.set()
        self._built.set()

    def _refuse(self, error: str) -> None:
        """Make the version unavailable with `error`, which answers every job queued, and to come until
        an instance can run them."""
        self.status, self.error = UNAVAILABLE, error
        if not self._queue.empty():
            self._refusing = asyncio.ensure_future(_answer_all(self._queue.take_all(), Error(error)))


class NoInstances:
    """The instances of a version with nothing to run: none, so the version is unavailable, as on UbiOps."""

    status = UNAVAILABLE
    capabilities = Capabilities()
    queued = free = 0
    replaced = None

    def __init__(self, error: str) -> None:
        self.error = error

    def start(self) -> None:
        """Nothing to start."""

    def check_available(self) -> None:
        raise VersionUnavailable(self.error)

    async def submit(self, job: Job, timeout: float, on_start: Callable[[Instance], None] | None = None,
                     on_update: OnUpdate | None = None, timed_in_queue: bool = True,
                     prepared: Preparation | None = None) -> Reply:
        raise VersionUnavailable(self.error)

    def adopt(self, ticket: Ticket, first: bool = False) -> None:
        """A job queued for the instances this replaces cannot run here either."""
        _settle(ticket, Error(self.error))

    async def retire(self, successor: InstancePool | NoInstances) -> None:
        """Nothing runs here, so nothing to hand over."""

    async def close(self, reason: str = STOPPED) -> None:
        """Nothing to stop."""


Instances = InstancePool | NoInstances


def _on_sent(ticket: Ticket, instance: Instance) -> Callable[[], None] | None:
    """`on_start` once the job has reached the instance: one that could not be sent goes back to the
    queue (InstanceUnreached), and its request stayed `processing` on a dead instance meanwhile."""
    on_start = ticket.on_start
    return None if on_start is None else lambda: on_start(instance)


async def _taken_or_answered(ticket: Ticket) -> None:
    """Wait, however long, until an instance takes the job or it is answered (its pool closed)."""
    taken = asyncio.ensure_future(ticket.taken.wait())
    try:
        await asyncio.wait((taken, ticket.future), return_when=asyncio.FIRST_COMPLETED)
    finally:
        taken.cancel()


async def _answer_all(tickets: list[Ticket], reply: Reply) -> None:
    """Answer `tickets` with `reply`, a few in each turn of the event loop: a version deleted, or turned
    unavailable, with 50 000 requests queued held it ~3.3 s as they all ended at once."""
    async for some in in_turns(tickets):
        for ticket in some:
            _settle(ticket, reply)


def _settle(ticket: Ticket, reply: Reply) -> None:
    if not ticket.future.done():
        ticket.future.set_result(reply)
