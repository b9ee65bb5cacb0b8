"""UbiOps' system environments (`emulator.environments`), read-only: what
`ubiops.utils.wait_for_deployment_version` asks about before it polls a build."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from emulator.api.dependencies import Services, get_services
from emulator.api.sdk_models import management
from emulator.environments import SYSTEM_ENVIRONMENTS, TAG, environment, environment_tag
from emulator.state import Project

router = APIRouter()
PATH = "/projects/{project_name}/environments"


@router.get(PATH, response_model=list[management.EnvironmentList])
async def environments_list(
    project_name: str, labels: str | None = None, system: bool | None = None, services: Services = Depends(get_services)
) -> list[management.EnvironmentList]:
    project = services.registry.project(project_name)
    return [] if system is False else [_environment(project, name) for name in SYSTEM_ENVIRONMENTS]


@router.get(PATH + "/{environment_name}", response_model=management.EnvironmentList)
async def environments_get(project_name: str, environment_name: str, services: Services = Depends(get_services)) -> management.EnvironmentList:
    project = services.registry.project(project_name)
    return _environment(project, environment(environment_name))


@router.get(PATH + "/{environment_name}/tags", response_model=list[management.EnvironmentTagList])
async def environment_tags_list(
    project_name: str, environment_name: str, services: Services = Depends(get_services)
) -> list[management.EnvironmentTagList]:
    project = services.registry.project(project_name)
    return [_tag(project, environment_name, environment_tag(environment_name, TAG))]


@router.get(PATH + "/{environment_name}/tags/{tag_name}", response_model=management.EnvironmentTagList)
async def environment_tags_get(
    project_name: str, environment_name: str, tag_name: str, services: Services = Depends(get_services)
) -> management.EnvironmentTagList:
    project = services.registry.project(project_name)
    return _tag(project, environment_name, environment_tag(environment_name, tag_name))


def _environment(project: Project, name: str) -> management.EnvironmentList:
    return management.EnvironmentList(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment/{name}")), name=name,
        creation_date=project.created, last_updated=project.created,
    )


def _tag(project: Project, environment_name: str, tag: str) -> management.EnvironmentTagList:
    return management.EnvironmentTagList(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment/{environment_name}/{tag}")),
        name=tag, environment=environment_name, creation_date=project.created,
    )
