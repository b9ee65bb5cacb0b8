"""UbiOps' system environments, read-only: what `ubiops.utils.wait_for_deployment_version` asks about
before it polls a build. Every package runs in the emulator's own Python whatever its environment."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from emulator.api import schemas
from emulator.api.errors import ApiError
from emulator.api.dependencies import Services, get_services
from emulator.state import Project

router = APIRouter()

SYSTEM_ENVIRONMENTS = tuple(f"python3-{minor}" for minor in range(9, 14)) + (
    "ubiops-ubuntu22-04-python3-11", "ubiops-ubuntu22-04-python3-12",
    "ubiops-ubuntu24-04-python3-12", "ubiops-ubuntu24-04-python3-13",
)
TAG = "latest"
PATH = "/projects/{project_name}/environments"


def check_environment(name: str) -> None:
    """A version may only name a known system environment (the emulator has no custom ones)."""
    if name not in SYSTEM_ENVIRONMENTS:
        raise ApiError(400, f"environment: {name!r} is not an environment; the emulator knows {', '.join(SYSTEM_ENVIRONMENTS)}")


def _environment(project: Project, name: str) -> schemas.EnvironmentList:
    if name not in SYSTEM_ENVIRONMENTS:
        raise ApiError(404, "Environment not found")
    return schemas.EnvironmentList(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment/{name}")), name=name,
        creation_date=project.created, last_updated=project.created,
    )


def _tag(project: Project, environment: str, tag: str) -> schemas.EnvironmentTagList:
    if tag != TAG:
        raise ApiError(404, "Environment tag not found")
    return schemas.EnvironmentTagList(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment/{environment}/{tag}")),
        name=tag, environment=environment, creation_date=project.created,
    )


@router.get(PATH, response_model=list[schemas.EnvironmentList])
async def environments_list(
    project_name: str, labels: str | None = None, system: bool | None = None, services: Services = Depends(get_services)
) -> list[schemas.EnvironmentList]:
    project = services.registry.project(project_name)
    return [] if system is False else [_environment(project, name) for name in SYSTEM_ENVIRONMENTS]


@router.get(PATH + "/{environment_name}", response_model=schemas.EnvironmentList)
async def environments_get(project_name: str, environment_name: str, services: Services = Depends(get_services)) -> schemas.EnvironmentList:
    return _environment(services.registry.project(project_name), environment_name)


@router.get(PATH + "/{environment_name}/tags", response_model=list[schemas.EnvironmentTagList])
async def environment_tags_list(
    project_name: str, environment_name: str, services: Services = Depends(get_services)
) -> list[schemas.EnvironmentTagList]:
    project = services.registry.project(project_name)
    _environment(project, environment_name)
    return [_tag(project, environment_name, TAG)]


@router.get(PATH + "/{environment_name}/tags/{tag_name}", response_model=schemas.EnvironmentTagList)
async def environment_tags_get(
    project_name: str, environment_name: str, tag_name: str, services: Services = Depends(get_services)
) -> schemas.EnvironmentTagList:
    project = services.registry.project(project_name)
    _environment(project, environment_name)
    return _tag(project, environment_name, tag_name)

