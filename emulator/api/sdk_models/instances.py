"""The bodies the instance calls answer, field for field as the `ubiops` 4.15 SDK models them
(`InstanceDetail`, `InstanceEvent`; their pages are `emulator.api.pagination.Page`s), rendered
from `emulator.instance_history`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from emulator.instance_history import InstanceEvent as Event
from emulator.instance_history import InstanceRecord


class InstanceType(BaseModel):
    """The emulator's one instance type: this machine (`InstanceInstanceTypeDetail`), whatever instance type
    group its version names (`contract.versions.DEFAULT_INSTANCE_TYPE_GROUP` unless it names one)."""

    id: str = str(uuid.uuid5(uuid.NAMESPACE_URL, "instance-type/emulator"))
    name: str = "emulator"
    display_name: str = "emulator (this machine)"


class Node(BaseModel):
    ipv4_address: str | None = "127.0.0.1"
    ipv6_address: str | None = None


class InstanceDetail(BaseModel):
    """An instance, in every list too: `InstanceList` and `ProjectInstanceList` are subsets of it."""

    id: str
    status: str
    instance_type: InstanceType = InstanceType()
    time_created: datetime
    time_updated: datetime
    deployment: str
    version: str
    node: Node = Node()
    node_pool: None = None


class InstanceEvent(BaseModel):
    id: str
    time_created: datetime
    description: str


def instance_detail(record: InstanceRecord) -> InstanceDetail:
    return InstanceDetail(id=record.id, status=record.status, time_created=record.time_created,
                          time_updated=record.time_updated, deployment=record.deployment, version=record.version)


def instance_event(event: Event) -> InstanceEvent:
    return InstanceEvent(id=event.id, time_created=event.time_created, description=event.description)
