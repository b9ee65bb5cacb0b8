"""Read-only project endpoints, as the SDK's list/get calls expect them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from emulator.api.dependencies import Services, get_services
from emulator.api.sdk_models import management

router = APIRouter()


@router.get("/projects", response_model=list[management.ProjectList])
async def projects_list(services: Services = Depends(get_services)) -> list[management.ProjectList]:
    return [management.project_list(p) for p in services.registry.projects.values()]


@router.get("/projects/{project_name}", response_model=management.ProjectDetail)
async def projects_get(project_name: str, services: Services = Depends(get_services)) -> management.ProjectDetail:
    return management.project_detail(services.registry.project(project_name))
