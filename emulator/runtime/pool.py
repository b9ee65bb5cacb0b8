"""The instances of one version: N worker processes taking jobs from one queue, as on UbiOps.

An instance lost to a timeout or a crash fails only the request it was running and is replaced.
If an instance cannot start (`__init__` raised, the process died), the version is unavailable:
queued and new requests get that error rather than waiting forever. A version with nothing to run
has `NoInstances`, which refuses every request with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from emulator.runtime.instance import Instance, InstanceLost, InstanceStartError, InstanceTimedOut, Launch
from emulator.runtime.protocol import Capabilities, Error, Job, Reply
from emulator.runtime.python_envs import EnvironmentBuilder, EnvironmentBuildError

log = logging.getLogger("emulator.pool")

STARTING, AVAILABLE, UNAVAILABLE = "building", "available", "unavailable"
REPLY_GRACE_SECONDS = 30
"""How long past its timeout a running job may take to be answered: the instance enforces the
timeout itself (and is then killed); this bound only guarantees no caller ever waits forever."""
STOPPED = "The emulator stopped before this request finished"
START_FAILED = "start"
"""The reason an instance is lost when it cannot start (`__init__` raised, the process died)."""


class VersionUnavailable(Exception):
    """The version's instances cannot start; the message says why."""


class InstanceEvents(Protocol):
    """Told what happens to a pool's instances (`emulator.metrics.Metrics` counts it)."""

    def instance_started(self, launch: Launch, restart: bool) -> None:
        """An instance is starting; `restart`: it replaces one that was lost."""

    def instance_lost(self, launch: Launch, reason: str) -> None:
        """An instance stopped: `InstanceLost.reason`, or START_FAILED."""


class NoEvents:
    """Nobody listening."""

    def instance_started(self, launch: Launch, restart: bool) -> None:
        pass

    def instance_lost(self, launch: Launch, reason: str) -> None:
        pass


NO_EVENTS = NoEvents()


@dataclass(eq=False)
class Ticket:
    """A job given to a pool: queued, then running on one of its instances; `future` gets the reply."""

    job: Job
    timeout: float
    deadline: float
    on_start: Callable[[int], None] | None = None
    on_update: Callable[[str], None] | None = None
    started: bool = False
    future: asyncio.Future[Reply] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class InstancePool:
    def __init__(self, launch: Launch, count: int, environments: EnvironmentBuilder,
                 events: InstanceEvents = NO_EVENTS) -> None:
        self.launch = launch
        self.count = count
        self.environments = environments
        self.events = events
        self.status = STARTING
        self.error: str | None = None
        self.capabilities = Capabilities()
        self._queue: asyncio.Queue[Ticket] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        """Builds the environment, then runs the instances."""
        self._instances: list[Instance] = []
        self._running: set[Ticket] = set()
        self._settled = asyncio.Event()
        """Set once the status is no longer STARTING."""
        self._idle = asyncio.Event()
        """Set while no job is running."""
        self._idle.set()
        self._closed: str | None = None
        """Once closed, the reason, which answers any job still given to the pool."""
        self._stopping: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Build the version's environment, then start the instances, in the background (once);
        requests queue until they are ready."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        fields = {"deployment": self.launch.deployment, "version": self.launch.version}
        try:
            python = await self.environments.prepare(self.launch.python_environment, fields)
        except (EnvironmentBuildError, OSError) as exc:  # OSError: the cache folder cannot be written, say
            self._fail(f"{self.launch.name} is unavailable: its environment could not be built: {exc}")
            return
        self._instances = [Instance(self.launch, n + 1, python) for n in range(self.count)]
        await asyncio.gather(*(self._serve(instance) for instance in self._instances))

    async def started(self) -> None:
        """Return once the instances are ready (`available`) or cannot start (`unavailable`)."""
        await self._settled.wait()

    async def submit(
        self,
        job: Job,
        timeout: float,
        on_start: Callable[[int], None] | None = None,
        on_update: Callable[[str], None] | None = None,
    ) -> Reply:
        """Run one job on the first free instance; the worker's reply, or an `Error`.

        `on_start` is called with the instance's number when one takes the job, `on_update` with each
        partial output the deployment streams. A job an instance has taken is timed by that instance (which is
        then replaced); this timeout ends a job still waiting in the queue, and bounds the wait
        for a running one's answer. Cancelling the caller withdraws a job that is still waiting.
        """
        self.check_available()
        ticket = Ticket(job, timeout, time.monotonic() + timeout, on_start, on_update)
        self.adopt(ticket)
        try:
            return await asyncio.wait_for(asyncio.shield(ticket.future), timeout)
        except asyncio.CancelledError:
            ticket.future.cancel()
            raise
        except TimeoutError:
            if not ticket.started:
                ticket.future.cancel()
                return Error(f"The request timed out after {timeout:g} seconds waiting for a free instance")
        try:
            return await asyncio.wait_for(asyncio.shield(ticket.future), REPLY_GRACE_SECONDS)
        except TimeoutError:
            ticket.future.cancel()
            return Error(f"The request timed out after {timeout:g} seconds and its instance did not answer")

    @property
    def queued(self) -> int:
        """How many jobs wait for a free instance."""
        return self._queue.qsize()

    def check_available(self) -> None:
        """Raise VersionUnavailable if the instances cannot start (waiting for them to start is fine)."""
        if self.status == UNAVAILABLE:
            raise VersionUnavailable(self.error)

    def adopt(self, ticket: Ticket) -> None:
        """Queue a job, given here or by a pool this one replaces; answer it at once if it cannot run."""
        if self._closed is not None:
            _settle(ticket, Error(self._closed))
        elif self.status == UNAVAILABLE:
            _settle(ticket, Error(self.error or f"{self.launch.name} is unavailable"))
        else:
            self._queue.put_nowait(ticket)

    async def retire(self, successor: InstancePool | NoInstances) -> None:
        """Step down for `successor`: queued jobs move to it at once, running jobs finish here (each
        bounded by its timeout), then the instances stop. Cancelled, they stop at once."""
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
            for ticket in self._running:
                _settle(ticket, Error(reason))
            while not self._queue.empty():
                _settle(self._queue.get_nowait(), Error(reason))
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(i.stop() for i in self._instances), return_exceptions=True)

    async def _serve(self, instance: Instance) -> None:
        if not await self._start(instance):
            return
        while True:
            ticket = await self._queue.get()
            remaining = ticket.deadline - time.monotonic()
            if ticket.future.done() or remaining <= 0:
                continue
            ticket.started = True
            self._running.add(ticket)
            self._idle.clear()
            if ticket.on_start:
                ticket.on_start(instance.number)
            lost = False
            try:
                reply = await instance.run(ticket.job, remaining, ticket.on_update)
            except InstanceLost as exc:
                lost = True
                self.events.instance_lost(self.launch, exc.reason)
                reply = Error(f"The request timed out after {ticket.timeout:g} seconds; its instance was restarted"
                              if isinstance(exc, InstanceTimedOut) else str(exc))
            finally:
                self._running.discard(ticket)
                if not self._running:
                    self._idle.set()
            _settle(ticket, reply)
            if lost and not await self._start(instance, restart=True):
                return

    async def _start(self, instance: Instance, restart: bool = False) -> bool:
        self.events.instance_started(self.launch, restart)
        try:
            self.capabilities = await instance.start()
        except InstanceStartError as exc:
            self.events.instance_lost(self.launch, START_FAILED)
            self._fail(f"{self.launch.name} is unavailable: the deployment failed to start ({exc}); see the emulator log")
            return False
        if self.status == STARTING:
            self.status = AVAILABLE
            self._settled.set()
        return True

    def _fail(self, error: str) -> None:
        log.error("%s", error, extra={"deployment": self.launch.deployment, "version": self.launch.version})
        self.status, self.error = UNAVAILABLE, error
        self._settled.set()
        while not self._queue.empty():
            _settle(self._queue.get_nowait(), Error(error))


class NoInstances:
    """The instances of a version with nothing to run: none, so the version is unavailable, as on UbiOps."""

    status = UNAVAILABLE
    capabilities = Capabilities()
    queued = 0

    def __init__(self, error: str) -> None:
        self.error = error

    def start(self) -> None:
        """Nothing to start."""

    def check_available(self) -> None:
        raise VersionUnavailable(self.error)

    async def submit(self, job: Job, timeout: float, on_start: Callable[[int], None] | None = None,
                     on_update: Callable[[str], None] | None = None) -> Reply:
        raise VersionUnavailable(self.error)

    def adopt(self, ticket: Ticket) -> None:
        """A job queued for the instances this replaces cannot run here either."""
        _settle(ticket, Error(self.error))

    async def retire(self, successor: InstancePool | NoInstances) -> None:
        """Nothing runs here, so nothing to hand over."""

    async def close(self, reason: str = STOPPED) -> None:
        """Nothing to stop."""


Instances = InstancePool | NoInstances


def _settle(ticket: Ticket, reply: Reply) -> None:
    if not ticket.future.done():
        ticket.future.set_result(reply)
