"""The instances of every version as UbiOps' instance calls show them: each worker process's slot,
with its status, its times and its events (`instances_list/get`, `project_instances_list/get`,
`instance_events_list`).

Told by the runtime (`InstanceEvents`), never by reading the log: an instance is created
`initialising`, becomes `running` when its `Deployment.__init__` returns, goes back to
`initialising` when a lost process (a crash, a timeout, the memory limit) is replaced, and leaves
the list when it is stopped for good or cannot start. Its events stay readable after it left, for
the last `KEPT_STOPPED` instances that left, by the names of the version it ran as, even once that
version is deleted, until another version takes those names; each instance keeps its last
`KEPT_EVENTS` events. Nothing here survives a restart: the instances do not.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from emulator.exceptions import NotAllowed, NotFound
from emulator.registry import Registry
from emulator.runtime.instance import Instance
from emulator.state import now

PENDING, INITIALISING, RUNNING, STOPPING = "pending", "initialising", "running", "stopping"
STATUSES = (PENDING, INITIALISING, RUNNING, STOPPING)
"""UbiOps' instance statuses; the emulator's instances are only ever `initialising` or `running`."""
KEPT_STOPPED = 200
KEPT_EVENTS = 500


@dataclass(frozen=True)
class InstanceEvent:
    description: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time_created: datetime = field(default_factory=now)


@dataclass
class InstanceRecord:
    id: str
    project: str
    deployment: str
    version: str
    version_id: str | None
    """The id of the version it runs (its context's `version_id`): a version deleted and created again
    under the same name is another version, with instances of its own."""
    status: str = INITIALISING
    time_created: datetime = field(default_factory=now)
    time_updated: datetime = field(default_factory=now)
    events: deque[InstanceEvent] = field(default_factory=lambda: deque(maxlen=KEPT_EVENTS))
    live: bool = True

    def of(self, project: str, deployment: str | None, version: str | None, version_id: str | None) -> bool:
        """Whether it is an instance of `project`, and of the version of those names when named: the one
        now of those names, `version_id`, or (None) one since deleted or renamed."""
        return (self.project == project and deployment in (None, self.deployment) and version in (None, self.version)
                and version_id in (None, self.version_id))

    def note(self, description: str) -> None:
        self.events.append(InstanceEvent(description))

    def change_status(self, status: str) -> None:
        self.status, self.time_updated = status, now()
        self.note(f"Instance status changed to {status}")


class InstanceHistory:
    def __init__(self, kept_stopped: int = KEPT_STOPPED) -> None:
        self._records: dict[str, InstanceRecord] = {}
        self._stopped: deque[str] = deque()
        self._kept_stopped = kept_stopped

    # What the runtime tells (emulator.runtime.pool.InstanceEvents)

    def instance_started(self, instance: Instance, restart: bool) -> None:
        record = self._records.get(instance.id)
        if record is None:
            launch = instance.launch
            record = self._records[instance.id] = InstanceRecord(instance.id, launch.project, launch.deployment,
                                                                 launch.version, launch.init_context.get("version_id"))
            record.note("Instance created")
        elif restart:
            record.note("Instance restarted in a new process")
        record.change_status(INITIALISING)

    def instance_ready(self, instance: Instance) -> None:
        if (record := self._live(instance)) is not None:
            record.change_status(RUNNING)

    def instance_lost(self, instance: Instance, reason: str, detail: str) -> None:
        if (record := self._live(instance)) is None:
            return
        record.note(f"Instance lost ({reason}): {detail}")

    def instance_stopped(self, instance: Instance) -> None:
        if (record := self._live(instance)) is not None:
            record.note("Instance stopped")
            self._leave(record)

    # What the API asks

    def current(self, project: str, deployment: str | None = None, version: str | None = None,
                statuses: tuple[str, ...] = (), version_id: str | None = None) -> list[InstanceRecord]:
        """The live instances of a project (of one version, when named: `InstanceRecord.of`) in the
        statuses asked, oldest first."""
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise NotAllowed(f"status: unknown instance status {', '.join(unknown)}; use {', '.join(STATUSES)}")
        return sorted((r for r in self._records.values() if r.live and r.of(project, deployment, version, version_id)
                       and (not statuses or r.status in statuses)), key=lambda r: r.time_created)

    def get(self, project: str, instance_id: str, deployment: str | None = None, version: str | None = None,
            version_id: str | None = None, live: bool = True) -> InstanceRecord:
        """One instance of a project (of one version, when named: `InstanceRecord.of`); a stopped one only
        when not `live`."""
        record = self._records.get(instance_id)
        if record is None or (live and not record.live) or not record.of(project, deployment, version, version_id):
            raise NotFound("Instance not found")
        return record

    def events(self, project: str, deployment: str, version: str, instance_id: str,
               registry: Registry | None = None) -> list[InstanceEvent]:
        """An instance's events, newest first; a stopped instance's too. With the `registry`: of the version
        now of these names, or, when there is none (deleted), of an instance that ran under them (README);
        when none did either, the registry's NotFound, which names what is unknown (project, deployment or
        version). Without it: of an instance that ran under these names, whichever version it was."""
        if registry is None:
            return self._events(project, deployment, version, instance_id, None)
        try:
            version_id = registry.version(project, deployment, version).id
        except NotFound as unknown:
            try:
                return self._events(project, deployment, version, instance_id, None)
            except NotFound:
                raise unknown from None
        return self._events(project, deployment, version, instance_id, version_id)

    def _events(self, project: str, deployment: str, version: str, instance_id: str,
                version_id: str | None) -> list[InstanceEvent]:
        return list(reversed(self.get(project, instance_id, deployment, version, version_id, live=False).events))

    def _live(self, instance: Instance) -> InstanceRecord | None:
        record = self._records.get(instance.id)
        return record if record is not None and record.live else None

    def _leave(self, record: InstanceRecord) -> None:
        record.live, record.time_updated = False, now()
        self._stopped.append(record.id)
        while len(self._stopped) > self._kept_stopped:
            self._records.pop(self._stopped.popleft(), None)
