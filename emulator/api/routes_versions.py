"""Deployment versions: create, get, list, update and delete, as the SDK's `deployment_versions_*`
calls expect them. Each route reads the call, asks the registry (`emulator.registry.Registry`, which
holds the rules: names, the version cap, settings, the default version) and renders the answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from emulator.api.dependencies import Services, get_services
from emulator.api.labels import parse_label_filter
from emulator.api.sdk_models import management
from emulator.state import Version

router = APIRouter()
LIST_PATH = "/projects/{project_name}/deployments/{deployment_name}/versions"
PATH = LIST_PATH + "/{version}"


@router.get(LIST_PATH, response_model=list[management.DeploymentVersionDetail])
async def deployment_versions_list(
    project_name: str,
    deployment_name: str,
    labels: str | None = Query(None, description="key:value pairs, comma-separated"),
    services: Services = Depends(get_services),
) -> list[management.DeploymentVersionDetail]:
    found = services.registry.list_versions(project_name, deployment_name, parse_label_filter(labels))
    deployment = services.registry.deployment(project_name, deployment_name)
    return [management.version_detail(deployment, v, services.registry.serving(v)) for v in found]


@router.get(PATH, response_model=management.DeploymentVersionDetail)
async def deployment_versions_get(
    project_name: str, deployment_name: str, version: str, services: Services = Depends(get_services)
) -> management.DeploymentVersionDetail:
    found = services.registry.version(project_name, deployment_name, version)
    return _detail(services, project_name, deployment_name, found)


@router.post(LIST_PATH, response_model=management.DeploymentVersionDetail, status_code=201)
async def deployment_versions_create(
    project_name: str, deployment_name: str, body: management.VersionCreate, services: Services = Depends(get_services)
) -> management.DeploymentVersionDetail:
    created = await services.registry.create_version(project_name, deployment_name, body.version, _given(body))
    return _detail(services, project_name, deployment_name, created)


@router.patch(PATH, response_model=management.DeploymentVersionDetail)
async def deployment_versions_update(
    project_name: str, deployment_name: str, version: str, body: management.VersionUpdate, services: Services = Depends(get_services)
) -> management.DeploymentVersionDetail:
    updated = await services.registry.update_version(project_name, deployment_name, version, _given(body),
                                                     new_name=body.version)
    return _detail(services, project_name, deployment_name, updated)


@router.delete(PATH, status_code=204)
async def deployment_versions_delete(
    project_name: str, deployment_name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    await services.registry.delete_version(project_name, deployment_name, version)
    return Response(status_code=204)


def _detail(services: Services, project_name: str, deployment_name: str, version: Version) -> management.DeploymentVersionDetail:
    """The answer of a call about one version: it as served now."""
    return management.version_detail(services.registry.deployment(project_name, deployment_name), version,
                                     services.registry.serving(version))


def _given(body: management.VersionSettings) -> dict:
    """The settings the call gives, and only those (the name is passed on by itself)."""
    return body.model_dump(exclude_unset=True, exclude={"version"})
