"""Deployment versions: create, get, list, update and delete, as the SDK's `deployment_versions_*`
calls expect them. A new version has no package, so it is `unavailable` until a revision is built;
the first version of a deployment becomes its default, as on UbiOps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from emulator.api import schemas
from emulator.api.errors import ApiError
from emulator.api.labels import matches, parse_label_filter
from emulator.api.management_bodies import VersionCreate, VersionSettings, VersionUpdate
from emulator.api.routes_environments import check_environment
from emulator.services import Services, get_services
from emulator.state import Version

router = APIRouter()
LIST_PATH = "/projects/{project_name}/deployments/{deployment_name}/versions"
PATH = LIST_PATH + "/{version}"
DEFAULT_SETTINGS: dict[str, Any] = {
    "environment_name": schemas.ENVIRONMENT,
    "instance_type_group_name": schemas.INSTANCE_TYPE_GROUP,
    "minimum_instances": 0,
    "maximum_instances": 5,
    "maximum_idle_time": 300,
}


@router.get(LIST_PATH, response_model=list[schemas.DeploymentVersionDetail])
async def deployment_versions_list(
    project_name: str,
    deployment_name: str,
    labels: str | None = Query(None, description="key:value pairs, comma-separated"),
    services: Services = Depends(get_services),
) -> list[schemas.DeploymentVersionDetail]:
    deployment = services.registry.deployment(project_name, deployment_name)
    wanted = parse_label_filter(labels)
    return [schemas.version_detail(deployment, v, services.runtime) for v in deployment.versions.values()
            if matches(v.settings.get("labels") or {}, wanted)]


@router.get(PATH, response_model=schemas.DeploymentVersionDetail)
async def deployment_versions_get(
    project_name: str, deployment_name: str, version: str, services: Services = Depends(get_services)
) -> schemas.DeploymentVersionDetail:
    deployment = services.registry.deployment(project_name, deployment_name)
    return schemas.version_detail(deployment, services.registry.version(project_name, deployment_name, version),
                                  services.runtime)


@router.post(LIST_PATH, response_model=schemas.DeploymentVersionDetail, status_code=201)
async def deployment_versions_create(
    project_name: str, deployment_name: str, body: VersionCreate, services: Services = Depends(get_services)
) -> schemas.DeploymentVersionDetail:
    deployment = services.registry.deployment(project_name, deployment_name)
    if body.version in deployment.versions:
        raise ApiError(409, f"A version named {body.version!r} already exists for deployment {deployment.name!r}")
    cap = services.settings.max_versions
    if cap is not None and len(deployment.versions) >= cap:
        raise ApiError(400, f"Deployment {deployment.name!r} has reached its maximum of {cap} versions; delete a version first")
    settings, retention = _settings(DEFAULT_SETTINGS, "full", body)
    version = Version(body.version, None, dict(services.settings.environment),
                      settings=settings, request_retention_mode=retention)
    services.registry.add_version(deployment, version)
    return schemas.version_detail(deployment, version, services.runtime)


@router.patch(PATH, response_model=schemas.DeploymentVersionDetail)
async def deployment_versions_update(
    project_name: str, deployment_name: str, version: str, body: VersionUpdate, services: Services = Depends(get_services)
) -> schemas.DeploymentVersionDetail:
    deployment = services.registry.deployment(project_name, deployment_name)
    found = services.registry.version(project_name, deployment_name, version)
    new_name = body.version
    if new_name is not None and new_name != found.name and new_name in deployment.versions:
        raise ApiError(409, f"A version named {new_name!r} already exists for deployment {deployment.name!r}")
    settings, retention = _settings(found.settings, found.request_retention_mode, body)
    services.registry.update_version(deployment, found, settings, retention, name=new_name)
    return schemas.version_detail(deployment, found, services.runtime)


@router.delete(PATH, status_code=204)
async def deployment_versions_delete(
    project_name: str, deployment_name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    await services.registry.delete_version(project_name, deployment_name, version)
    return Response(status_code=204)


def _settings(current: dict[str, Any], retention: str, body: VersionSettings) -> tuple[dict[str, Any], str]:
    """The settings and retention mode a version has with the body's applied, checked against each other."""
    given = body.model_dump(exclude_unset=True, exclude={"version"})
    environment = given.pop("environment", None) or given.get("environment_name")
    if environment is not None:
        check_environment(environment)
        given["environment_name"] = environment
    settings = {**current, **{k: v for k, v in given.items() if v is not None}}
    if settings.get("minimum_instances", 0) > settings.get("maximum_instances", 5):
        raise ApiError(400, f"minimum_instances ({settings.get('minimum_instances', 0)}) cannot exceed "
                            f"maximum_instances ({settings.get('maximum_instances', 5)})")
    retention = settings.pop("request_retention_mode", retention)
    return settings, retention
