"""The instances of one version: N worker processes taking jobs from one queue, as on UbiOps.

An instance lost to a timeout or a crash fails only the request it was running and is replaced.
If an instance cannot start (`__init__` raised, the process died), the version is unavailable:
queued and new requests get that error rather than waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator.runtime.instance import Instance, InstanceLost, InstanceStartError, InstanceTimedOut, Launch
from emulator.runtime.protocol import Capabilities, Error, Job, Reply

log = logging.getLogger("emulator.pool")

STARTING, AVAILABLE, UNAVAILABLE = "building", "available", "unavailable"
RETIRE_POLL_SECONDS = 0.05
REPLY_GRACE_SECONDS = 30
"""How long past its timeout a running job may take to be answered: the instance enforces the
timeout itself (and is then killed); this bound only guarantees no caller ever waits forever."""
STOPPED = "The emulator stopped before this request finished"


class VersionUnavailable(Exception):
    """The version's instances cannot start; the message says why."""


@dataclass(eq=False)
class Ticket:
    """A job given to a pool: queued, then running on one of its instances; `future` gets the reply."""

    job: Job
    timeout: float
    deadline: float
    on_start: Callable[[], None] | None = None
    on_update: Callable[[str], None] | None = None
    started: bool = False
    future: asyncio.Future[Reply] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class InstancePool:
    def __init__(self, launch: Launch, count: int) -> None:
        self.launch = launch
        self.count = count
        self.status = STARTING
        self.error: str | None = None
        self.capabilities = Capabilities()
        self._queue: asyncio.Queue[Ticket] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._instances: list[Instance] = []
        self._running: set[Ticket] = set()

    def start(self) -> None:
        """Start the instances in the background; requests queue until they are ready."""
        self._instances = [Instance(self.launch, n + 1) for n in range(self.count)]
        self._tasks = [asyncio.create_task(self._serve(i)) for i in self._instances]

    async def submit(
        self,
        job: Job,
        timeout: float,
        on_start: Callable[[], None] | None = None,
        on_update: Callable[[str], None] | None = None,
    ) -> Reply:
        """Run one job on the first free instance; the worker's reply, or an `Error`.

        `on_start` is called when an instance takes the job, `on_update` with each partial output
        the deployment streams. A job an instance has taken is timed by that instance (which is
        then replaced); this timeout ends a job still waiting in the queue, and bounds the wait
        for a running one's answer. Cancelling the caller withdraws a job that is still waiting.
        """
        self.check_available()
        ticket = Ticket(job, timeout, time.monotonic() + timeout, on_start, on_update)
        self._queue.put_nowait(ticket)
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

    def check_available(self) -> None:
        """Raise VersionUnavailable if the instances cannot start (waiting for them to start is fine)."""
        if self.status == UNAVAILABLE:
            raise VersionUnavailable(self.error)

    async def retire(self, successor: InstancePool | None = None) -> None:
        """Step down for `successor`: queued jobs move to its queue at once, running jobs finish
        here (each bounded by its timeout), then the instances stop. New jobs go to the successor."""
        while successor is not None and not self._queue.empty():
            successor._queue.put_nowait(self._queue.get_nowait())
        try:
            while not self._queue.empty() or self._running:
                await asyncio.sleep(RETIRE_POLL_SECONDS)
        finally:
            await self.close()

    async def close(self, reason: str = STOPPED) -> None:
        """Stop the instances now; every job still queued or running is answered with `reason`."""
        for ticket in self._running:
            _settle(ticket, Error(reason))
        while not self._queue.empty():
            _settle(self._queue.get_nowait(), Error(reason))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
            if ticket.on_start:
                ticket.on_start()
            self._running.add(ticket)
            try:
                _settle(ticket, await instance.run(ticket.job, remaining, ticket.on_update))
            except InstanceLost as exc:
                timed_out = isinstance(exc, InstanceTimedOut)
                _settle(ticket, Error(f"The request timed out after {ticket.timeout:g} seconds; its instance was restarted"
                                      if timed_out else str(exc)))
                if not await self._start(instance):
                    return
            finally:
                self._running.discard(ticket)

    async def _start(self, instance: Instance) -> bool:
        try:
            self.capabilities = await instance.start()
        except InstanceStartError as exc:
            self._fail(f"{self.launch.name} is unavailable: the deployment failed to start ({exc}); see the emulator log")
            return False
        if self.status == STARTING:
            self.status = AVAILABLE
        return True

    def _fail(self, error: str) -> None:
        log.error("%s", error)
        self.status, self.error = UNAVAILABLE, error
        while not self._queue.empty():
            _settle(self._queue.get_nowait(), Error(error))


def _settle(ticket: Ticket, reply: Reply) -> None:
    if not ticket.future.done():
        ticket.future.set_result(reply)
