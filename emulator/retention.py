"""Request retention: every request is deleted, with its input and output files, once it is older than
its version's `request_retention_time`, as on UbiOps [docs: request settings].

A sweep runs in the background every `--retention-sweep-seconds`, off the event loop: it finds the
expired requests in the history (`RequestStore.expired`, through a connection of its own, in a
thread) and deletes at most `SWEEP_BATCH` of them per pass, their files first, so requests never
wait for it; a full pass is followed at once by the next. The version's current retention time
applies, to requests made before it was changed too; the requests of a version that is no longer
served (the package served under another name) are kept for the default time: a deleted version's
go with it, a renamed one's follow it (`RequestRunner.forget`, `rename`). Requests still pending or processing are
never deleted: they go in the first sweep after they end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

from contract.requests import RETENTION_TIME
from emulator.request_runner import RequestRunner
from emulator.request_store import RequestStore, VersionNames
from emulator.state import Registry, now

SWEEP_BATCH = 500
"""Requests deleted per pass at most: the work of one pass stays small whatever the backlog."""
log = logging.getLogger("emulator.retention")


class RetentionSweeper:
    def __init__(self, registry: Registry, runner: RequestRunner, database: Path, interval: float) -> None:
        self.registry = registry
        self.runner = runner
        self.interval = interval
        self._store = RequestStore(database, journal=False)
        """Its own connection to the history, used only from the sweep's thread."""
        self._sweeping = threading.Lock()
        """Held by a pass, so closing waits for the pass under way."""
        self._closed = False

    async def run(self) -> None:
        """Sweep every `interval` seconds, until cancelled; a pass that fails is logged and tried again."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                while await self.sweep() == SWEEP_BATCH:
                    pass
            except Exception:  # a fault of ours too: the sweep must go on, or expired requests stay for good
                log.exception("deleting expired requests failed; trying again in %g s", self.interval)

    async def sweep(self) -> int:
        """One pass: delete up to SWEEP_BATCH expired requests with their files; how many it deleted."""
        current = now()
        cutoffs: dict[VersionNames, datetime] = {
            (project.name, deployment.name, version.name): current - timedelta(seconds=version.request_retention_time)
            for project, deployment, version in self.registry.versions()
        }
        deleted = await asyncio.to_thread(self._sweep, cutoffs, current - timedelta(seconds=RETENTION_TIME))
        if deleted:
            log.info("deleted %d request(s) past their retention time, with their files", deleted)
        return deleted

    def _sweep(self, cutoffs: dict[VersionNames, datetime], default_cutoff: datetime) -> int:
        with self._sweeping:
            if self._closed:
                return 0
            expired = self._store.expired(cutoffs, default_cutoff, SWEEP_BATCH)
            self.runner.remove_files(expired)
            self._store.delete(expired)
            return len(expired)

    def close(self) -> None:
        """Close its connection, once the pass under way (if any) has finished; cancel `run` first."""
        with self._sweeping:
            self._closed = True
            self._store.close()
