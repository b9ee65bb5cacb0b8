"""The runtime: every version's instances, owned in one place, and the one way to change them.

`replace` puts new instances in service for a version — a build, `--reload`, the start-up alike:
new and queued requests go to them at once; requests running on the previous instances finish
there, then those stop. `stop` ends a version's instances (it was deleted) and `close` all of them
(the emulator stops): every request still queued or running is answered with the reason.
Versions are known here by id (and name, for messages) only; what they are is `emulator.state`'s.
What happens to the instances is told to `events` (each pool made for the runtime is given them),
and their Python comes from `environments`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from emulator.runtime.pool import NO_EVENTS, STOPPED, InstanceEvents, Instances, NoInstances
from emulator.runtime.python_envs import EnvironmentBuilder


class VersionKey(Protocol):
    id: str
    name: str

    @property
    def unserved_reason(self) -> str:
        """Why no instances serve it (yet), for its requests and its status."""


class Runtime:
    def __init__(self, environments: EnvironmentBuilder, events: InstanceEvents = NO_EVENTS) -> None:
        self.environments = environments
        """Builds each version's Python before its instances start (every pool made for the runtime uses it)."""
        self.events = events
        self._pools: dict[str, Instances] = {}
        self._draining: dict[asyncio.Task[None], tuple[str, Instances]] = {}
        """Each previous pool still finishing its running jobs, by its drain: (version id, pool)."""
        self._running = False

    def pool(self, version: VersionKey) -> Instances:
        """The instances serving `version`; none, refusing its requests, until a package of it is served."""
        found = self._pools.get(version.id)
        if found is None:
            return NoInstances(version.unserved_reason)
        return found

    def start(self) -> None:
        """Start the instances put in service before the event loop ran; later ones start as they come."""
        self._running = True
        for pool in self._pools.values():
            pool.start()

    def replace(self, version: VersionKey, pool: Instances) -> asyncio.Task[None] | None:
        """Serve `version` with `pool` from now on (starting it if need be). Jobs queued for the
        previous instances move to it; running ones finish there, then those stop: the returned
        drain ends then (None when nothing ran before)."""
        previous = self._pools.get(version.id)
        self._pools[version.id] = pool
        if not self._running:
            return None
        pool.start()
        if previous is None:
            return None
        previous.replaced = pool
        drain = asyncio.create_task(previous.retire(pool))
        self._draining[drain] = (version.id, previous)
        drain.add_done_callback(lambda done: self._draining.pop(done, None))
        return drain

    def drains(self, version: VersionKey) -> list[asyncio.Task[None]]:
        """The drains of `version`'s previous instances still running: once they end, no request runs
        on the packages those served."""
        return [drain for drain, (version_id, _) in self._draining.items() if version_id == version.id]

    async def stop(self, version: VersionKey, reason: str) -> None:
        """Stop `version`'s instances, those still draining too; every job queued or running there
        is answered with `reason`."""
        pools = [pool for version_id, pool in self._draining.values() if version_id == version.id]
        current = self._pools.pop(version.id, None)
        if current is not None:
            pools.append(current)
        await asyncio.gather(*(pool.close(reason) for pool in pools))

    async def close(self) -> None:
        """Stop every instance, as the emulator stops: each job queued or running gets STOPPED. A
        request arriving later is answered the same."""
        pools = [*self._pools.values(), *(pool for _, pool in self._draining.values())]
        await asyncio.gather(*(pool.close(STOPPED) for pool in pools))
