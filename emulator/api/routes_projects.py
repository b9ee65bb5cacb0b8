"""Read-only project, deployment and version endpoints, as the SDK's list/get calls expect them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from emulator.api import schemas
from emulator.services import Services, get_services

router = APIRouter()


@router.get("/projects", response_model=list[schemas.ProjectList])
async def projects_list(services: Services = Depends(get_services)) -> list[schemas.ProjectList]:
    return [schemas.project_list(p) for p in services.registry.projects.values()]


@router.get("/projects/{project_name}", response_model=schemas.ProjectDetail)
async def projects_get(project_name: str, services: Services = Depends(get_services)) -> schemas.ProjectDetail:
    return schemas.project_detail(services.registry.project(project_name))


@router.get("/projects/{project_name}/deployments", response_model=list[schemas.DeploymentDetail])
async def deployments_list(project_name: str, services: Services = Depends(get_services)) -> list[schemas.DeploymentDetail]:
    project = services.registry.project(project_name)
    return [schemas.deployment_detail(d) for d in project.deployments.values()]


@router.get("/projects/{project_name}/deployments/{deployment_name}", response_model=schemas.DeploymentDetail)
async def deployments_get(
    project_name: str, deployment_name: str, services: Services = Depends(get_services)
) -> schemas.DeploymentDetail:
    return schemas.deployment_detail(services.registry.deployment(project_name, deployment_name))


@router.get(
    "/projects/{project_name}/deployments/{deployment_name}/versions",
    response_model=list[schemas.DeploymentVersionDetail],
)
async def deployment_versions_list(
    project_name: str, deployment_name: str, services: Services = Depends(get_services)
) -> list[schemas.DeploymentVersionDetail]:
    deployment = services.registry.deployment(project_name, deployment_name)
    return [schemas.version_detail(deployment, v) for v in deployment.versions.values()]


@router.get(
    "/projects/{project_name}/deployments/{deployment_name}/versions/{version}",
    response_model=schemas.DeploymentVersionDetail,
)
async def deployment_versions_get(
    project_name: str, deployment_name: str, version: str, services: Services = Depends(get_services)
) -> schemas.DeploymentVersionDetail:
    deployment = services.registry.deployment(project_name, deployment_name)
    return schemas.version_detail(deployment, services.registry.version(project_name, deployment_name, version))
