"""Deployments: create, get, list, update and delete, as the SDK's `deployments_*` calls expect them.

A deployment's input and output fields are set here, as on UbiOps, not by the package; a built
revision must declare the same fields in its spec files, if it has them (`emulator.builds`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from contract.spec import Spec, SpecError, parse_fields
from emulator.api import schemas
from emulator.api.errors import ApiError
from emulator.api.labels import matches, parse_label_filter
from emulator.api.management_bodies import DeploymentCreate, DeploymentUpdate
from emulator.services import Services, get_services
from emulator.state import Deployment

router = APIRouter()
PATH = "/projects/{project_name}/deployments/{deployment_name}"


@router.get("/projects/{project_name}/deployments", response_model=list[schemas.DeploymentDetail])
async def deployments_list(
    project_name: str,
    labels: str | None = Query(None, description="key:value pairs, comma-separated"),
    supports_request_format: bool | None = None,
    services: Services = Depends(get_services),
) -> list[schemas.DeploymentDetail]:
    project = services.registry.project(project_name)
    wanted = parse_label_filter(labels)
    return [schemas.deployment_detail(d) for d in project.deployments.values()
            if matches(d.labels, wanted) and supports_request_format in (None, True)]


@router.get(PATH, response_model=schemas.DeploymentDetail)
async def deployments_get(
    project_name: str, deployment_name: str, services: Services = Depends(get_services)
) -> schemas.DeploymentDetail:
    return schemas.deployment_detail(services.registry.deployment(project_name, deployment_name))


@router.post("/projects/{project_name}/deployments", response_model=schemas.DeploymentDetail, status_code=201)
async def deployments_create(
    project_name: str, body: DeploymentCreate, services: Services = Depends(get_services)
) -> schemas.DeploymentDetail:
    project = services.registry.project(project_name)
    if not body.supports_request_format:
        raise ApiError(400, "supports_request_format: the emulator serves only deployments that take requests")
    if body.name in project.deployments:
        raise ApiError(409, f"A deployment named {body.name!r} already exists in project {project_name!r}")
    deployment = Deployment(
        body.name,
        project.name,
        _spec(body.input_fields, body.input_type, "input"),
        _spec(body.output_fields, body.output_type, "output"),
        description=body.description or "",
        labels=body.labels or {},
    )
    services.registry.add_deployment(deployment)
    return schemas.deployment_detail(deployment)


@router.patch(PATH, response_model=schemas.DeploymentDetail)
async def deployments_update(
    project_name: str, deployment_name: str, body: DeploymentUpdate, services: Services = Depends(get_services)
) -> schemas.DeploymentDetail:
    project = services.registry.project(project_name)
    deployment = services.registry.deployment(project_name, deployment_name)
    if body.default_version is not None and body.default_version not in deployment.versions:
        raise ApiError(400, f"default_version: deployment {deployment.name!r} has no version {body.default_version!r}")
    if body.name is not None and body.name != deployment.name and body.name in project.deployments:
        raise ApiError(409, f"A deployment named {body.name!r} already exists in project {project_name!r}")
    services.registry.update_deployment(
        deployment,
        name=body.name,
        input_spec=_spec(body.input_fields, None, "input") if body.input_fields is not None else None,
        output_spec=_spec(body.output_fields, None, "output") if body.output_fields is not None else None,
        default_version=body.default_version,
        description=body.description,
        labels=body.labels,
    )
    return schemas.deployment_detail(deployment)


@router.delete(PATH, status_code=204)
async def deployments_delete(project_name: str, deployment_name: str, services: Services = Depends(get_services)) -> Response:
    await services.registry.delete_deployment(project_name, deployment_name)
    return Response(status_code=204)


def _spec(raw: list | None, declared_type: str | None, direction: str) -> Spec:
    """Fields from an API body; `plain` takes none, `structured` at least one."""
    try:
        spec = parse_fields(raw, f"{direction}_fields")
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None
    if declared_type == "plain" and spec.fields:
        raise ApiError(400, f"{direction}_fields must be empty when {direction}_type is plain")
    if declared_type == "structured" and not spec.fields:
        raise ApiError(400, f"{direction}_fields must list at least one field when {direction}_type is structured")
    return spec
