"""The emulator's long-lived parts, shared by every route through `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from emulator.instance_history import InstanceHistory
from emulator.log_store import LogStore
from emulator.metrics import Metrics
from emulator.registry import Registry
from emulator.request_runner import RequestRunner
from emulator.runtime.manager import Runtime
from emulator.settings import Settings
from emulator.signing import Signer
from emulator.storage import Storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    registry: Registry
    storage: Storage
    runner: RequestRunner
    signer: Signer
    runtime: Runtime
    metrics: Metrics
    logs: LogStore
    instances: InstanceHistory


def services_of(request: Request) -> Services:
    """The running emulator's services, for a route that reads them itself (`routes_requests`)."""
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """FastAPI dependency: the running emulator's services (async: FastAPI runs a sync dependency in its
    thread pool, a thread hop per call)."""
    return services_of(request)
