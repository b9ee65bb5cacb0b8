"""UbiOps' system environments (`emulator.environments`), read-only: what
`ubiops.utils.wait_for_deployment_version` asks about before it polls a build."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from emulator.api.dependencies import Services, get_services
from emulator.api.labels import parse_label_filter
from emulator.api.sdk_models import management
from emulator.environments import TAG, environment, environment_tag, list_environments

router = APIRouter()
PATH = "/projects/{project_name}/environments"


@router.get(PATH, response_model=list[management.EnvironmentList])
async def environments_list(
    project_name: str, labels: str | None = None, system: bool | None = None, services: Services = Depends(get_services)
) -> list[management.EnvironmentList]:
    project = services.registry.project(project_name)
    return [management.environment_list(project, name) for name in list_environments(system, parse_label_filter(labels))]


@router.get(PATH + "/{environment_name}", response_model=management.EnvironmentList)
async def environments_get(
    project_name: str, environment_name: str, services: Services = Depends(get_services)
) -> management.EnvironmentList:
    project = services.registry.project(project_name)
    return management.environment_list(project, environment(environment_name))


@router.get(PATH + "/{environment_name}/tags", response_model=list[management.EnvironmentTagList])
async def environment_tags_list(
    project_name: str, environment_name: str, services: Services = Depends(get_services)
) -> list[management.EnvironmentTagList]:
    project = services.registry.project(project_name)
    return [management.environment_tag_list(project, environment_name, environment_tag(environment_name, TAG))]


@router.get(PATH + "/{environment_name}/tags/{tag_name}", response_model=management.EnvironmentTagList)
async def environment_tags_get(
    project_name: str, environment_name: str, tag_name: str, services: Services = Depends(get_services)
) -> management.EnvironmentTagList:
    project = services.registry.project(project_name)
    return management.environment_tag_list(project, environment_name, environment_tag(environment_name, tag_name))
