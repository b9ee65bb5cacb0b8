"""Read-only project endpoints, as the SDK's list/get calls expect them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from emulator.api import schemas
from emulator.api.dependencies import Services, get_services

router = APIRouter()


@router.get("/projects", response_model=list[schemas.ProjectList])
async def projects_list(services: Services = Depends(get_services)) -> list[schemas.ProjectList]:
    return [schemas.project_list(p) for p in services.registry.projects.values()]


@router.get("/projects/{project_name}", response_model=schemas.ProjectDetail)
async def projects_get(project_name: str, services: Services = Depends(get_services)) -> schemas.ProjectDetail:
    return schemas.project_detail(services.registry.project(project_name))
