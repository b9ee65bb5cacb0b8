"""Deployments: create, get, list, update and delete, as the SDK's `deployments_*` calls expect them.

Each route reads the call, asks the registry (`emulator.registry.Registry`, which holds the rules) and
renders the answer. A deployment's input and output fields are set here, as on UbiOps, not by the
package; a built revision must declare the same fields in its spec files, if it has them.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from emulator.api.dependencies import Services, get_services
from emulator.api.labels import parse_label_filter
from emulator.api.sdk_models import management

router = APIRouter()
PATH = "/projects/{project_name}/deployments/{deployment_name}"


@router.get("/projects/{project_name}/deployments", response_model=list[management.DeploymentDetail])
async def deployments_list(
    project_name: str,
    labels: str | None = Query(None, description="key:value pairs, comma-separated"),
    supports_request_format: bool | None = None,
    services: Services = Depends(get_services),
) -> list[management.DeploymentDetail]:
    found = services.registry.list_deployments(project_name, parse_label_filter(labels), supports_request_format)
    return [management.deployment_detail(d) for d in found]


@router.get(PATH, response_model=management.DeploymentDetail)
async def deployments_get(
    project_name: str, deployment_name: str, services: Services = Depends(get_services)
) -> management.DeploymentDetail:
    return management.deployment_detail(services.registry.deployment(project_name, deployment_name))


@router.post("/projects/{project_name}/deployments", response_model=management.DeploymentDetail, status_code=201)
async def deployments_create(
    project_name: str, body: management.DeploymentCreate, services: Services = Depends(get_services)
) -> management.DeploymentDetail:
    deployment = await services.registry.create_deployment(
        project_name, body.name, input_type=body.input_type, input_fields=body.input_fields,
        output_type=body.output_type, output_fields=body.output_fields, description=body.description,
        labels=body.labels, supports_request_format=body.supports_request_format,
    )
    return management.deployment_detail(deployment)


@router.patch(PATH, response_model=management.DeploymentDetail)
async def deployments_update(
    project_name: str, deployment_name: str, body: management.DeploymentUpdate, services: Services = Depends(get_services)
) -> management.DeploymentDetail:
    deployment = await services.registry.update_deployment(
        project_name, deployment_name, new_name=body.name, default_version=body.default_version,
        description=body.description, input_fields=body.input_fields, output_fields=body.output_fields,
        labels=body.labels,
    )
    return management.deployment_detail(deployment)


@router.delete(PATH, status_code=204)
async def deployments_delete(project_name: str, deployment_name: str, services: Services = Depends(get_services)) -> Response:
    await services.registry.delete_deployment(project_name, deployment_name)
    return Response(status_code=204)
