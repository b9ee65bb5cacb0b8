"""The instances of a version and of a project, and an instance's events: `instances_list/get`,
`project_instances_list/get`, `instance_events_list` (`ubiops instances …`,
`ubiops project_instances …`). What they hold is `emulator.instance_history`'s."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from emulator.api.dependencies import Services, get_services
from emulator.api.pagination import Page, paginate
from emulator.api.parameters import comma_separated
from emulator.api.paths import VERSION
from emulator.api.sdk_models.instances import InstanceDetail, InstanceEvent, instance_detail, instance_event

router = APIRouter()
PROJECT_INSTANCES = "/projects/{project_name}/instances"
VERSION_INSTANCES = VERSION + "/instances"
MAX_LIMIT = 250
Cursor = Query(None, description="From a page's next or previous URL")
Limit = Query(50, ge=1, le=MAX_LIMIT)
Statuses = Query(None, description="Comma-separated: pending, initialising, running, stopping")


@router.get(VERSION_INSTANCES, response_model=Page[InstanceDetail])
async def instances_list(
    request: Request, project_name: str, deployment_name: str, version: str,
    cursor: str | None = Cursor, limit: int = Limit, status: str | None = Statuses,
    services: Services = Depends(get_services),
) -> Page[InstanceDetail]:
    version_id = services.registry.version(project_name, deployment_name, version).id
    records = services.instances.current(project_name, deployment_name, version, comma_separated(status), version_id)
    return paginate([instance_detail(r) for r in records], request, cursor, limit)


@router.get(VERSION_INSTANCES + "/{instance_id}", response_model=InstanceDetail)
async def instances_get(
    project_name: str, deployment_name: str, version: str, instance_id: str, services: Services = Depends(get_services)
) -> InstanceDetail:
    version_id = services.registry.version(project_name, deployment_name, version).id
    return instance_detail(services.instances.get(project_name, instance_id, deployment_name, version, version_id))


@router.get(VERSION_INSTANCES + "/{instance_id}/events", response_model=Page[InstanceEvent])
async def instance_events_list(
    request: Request, project_name: str, deployment_name: str, version: str, instance_id: str,
    cursor: str | None = Cursor, limit: int = Limit, services: Services = Depends(get_services),
) -> Page[InstanceEvent]:
    events = services.instances.events(project_name, deployment_name, version, instance_id, services.registry)
    return paginate([instance_event(e) for e in events], request, cursor, limit)


@router.get(PROJECT_INSTANCES, response_model=Page[InstanceDetail])
async def project_instances_list(
    request: Request, project_name: str, cursor: str | None = Cursor, limit: int = Limit,
    status: str | None = Statuses, services: Services = Depends(get_services),
) -> Page[InstanceDetail]:
    services.registry.project(project_name)
    records = services.instances.current(project_name, statuses=comma_separated(status))
    return paginate([instance_detail(r) for r in records], request, cursor, limit)


@router.get(PROJECT_INSTANCES + "/{instance_id}", response_model=InstanceDetail)
async def project_instances_get(
    project_name: str, instance_id: str, services: Services = Depends(get_services)
) -> InstanceDetail:
    services.registry.project(project_name)
    return instance_detail(services.instances.get(project_name, instance_id))
