"""Request retention: every request is deleted, with its input and output files, once its retention
time has passed, as on UbiOps [docs: request settings]: "The time the request is stored, counting from
the start of the request", and "Changing the retention time or mode does not influence the retention of
already stored requests". So each request expires at its creation plus its version's
`request_retention_time` as it was then (`RequestRecord.expires`, set when it is made).

A sweep runs in the background every `--retention-sweep-seconds`, off the event loop: it finds the
expired requests in the history (`RequestStore.expired`, through a connection of its own, in a
thread) and deletes at most `SWEEP_BATCH` of them per pass, their files first, so requests never
wait for it; a full pass is followed at once by the next. Requests an earlier emulator stored without
an expiry are given one by the first pass: their version's retention time then, or the default for a
version no longer served (`RequestStore.date_undated`). A deleted version's requests go with it, a
renamed one's follow it (`RequestRunner.forget`, `rename`). Requests still pending or processing are
never deleted: they go in the first sweep after they end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from pathlib import Path

from contract.requests import RETENTION_TIME
from emulator.registry import Registry
from emulator.request_runner import RequestRunner
from emulator.request_store import RequestStore, VersionNames
from emulator.state import now

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
        self._dated = False
        """Whether a pass has dated the requests an earlier emulator stored without an expiry."""

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
        retention_times = None if self._dated else {
            (project.name, deployment.name, version.name): version.request_retention_time
            for project, deployment, version in self.registry.versions()
        }
        deleted = await asyncio.to_thread(self._sweep, now(), retention_times)
        if deleted:
            log.info("deleted %d request(s) past their retention time, with their files", deleted)
        return deleted

    def _sweep(self, moment: datetime, retention_times: dict[VersionNames, int] | None) -> int:
        with self._sweeping:
            if self._closed:
                return 0
            if retention_times is not None:
                dated = self._store.date_undated(retention_times, RETENTION_TIME)
                if dated:
                    log.info("gave %d request(s) stored by an earlier emulator their version's retention time", dated)
                self._dated = True
            expired = self._store.expired(moment, SWEEP_BATCH)
            self.runner.remove_files(expired)
            self._store.delete(expired)
            return len(expired)

    def close(self) -> None:
        """Close its connection, once the pass under way (if any) has finished; cancel `run` first."""
        with self._sweeping:
            self._closed = True
            self._store.close()
