"""Direct deployment requests, at deployment level (default version) and at version level.

A failure inside the deployment, or data that does not match the spec, is HTTP 200 with
`status: "failed"`, as on UbiOps; only problems with the call itself are HTTP errors.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from contract.spec import DataError
from emulator.api.request_body import read_request_data
from emulator.api.routes_storage import download_url
from emulator.api.request_schemas import DeploymentRequestCreateResponse
from emulator.request_runner import FAILED, Outcome
from emulator.services import Services, get_services
from emulator.state import new_id

router = APIRouter()

TIMEOUT_QUERY = Query(300, ge=10, le=3600, description="Seconds before the request fails (UbiOps: 10 to 3600)")
PRIORITY_QUERY = Query(None, ge=0, le=1, description="Accepted for compatibility; the emulator runs requests in order")


@router.post(
    "/projects/{project_name}/deployments/{deployment_name}/requests",
    response_model=DeploymentRequestCreateResponse,
)
async def deployment_requests_create(
    request: Request,
    project_name: str,
    deployment_name: str,
    timeout: int = TIMEOUT_QUERY,
    priority: int | None = PRIORITY_QUERY,
    services: Services = Depends(get_services),
) -> JSONResponse:
    return await _create(request, services, project_name, deployment_name, None, timeout)


@router.post(
    "/projects/{project_name}/deployments/{deployment_name}/versions/{version}/requests",
    response_model=DeploymentRequestCreateResponse,
)
async def deployment_version_requests_create(
    request: Request,
    project_name: str,
    deployment_name: str,
    version: str,
    timeout: int = TIMEOUT_QUERY,
    priority: int | None = PRIORITY_QUERY,
    services: Services = Depends(get_services),
) -> JSONResponse:
    return await _create(request, services, project_name, deployment_name, version, timeout)


async def _create(
    request: Request, services: Services, project_name: str, deployment_name: str, version_name: str | None, timeout: int
) -> JSONResponse:
    deployment = services.registry.deployment(project_name, deployment_name)
    version = services.registry.version(project_name, deployment_name, version_name)
    request_id = new_id()
    try:
        try:
            data = await read_request_data(request, deployment.input_spec, services.storage.request_work_dir(request_id))
        except DataError as exc:
            outcome = Outcome(FAILED, error_message=str(exc))
        else:
            outcome = await services.runner.run(deployment, version, request_id, data, timeout)
    finally:
        services.storage.remove_work_dir(request_id)
    body = DeploymentRequestCreateResponse(
        id=request_id,
        deployment=deployment.name,
        version=version.name,
        status=outcome.status,
        success=outcome.success,
        result=outcome.result,
        error_message=outcome.error_message,
        timeout=timeout,
        emulator_file_urls={services.storage.uri(p): download_url(request, services, p) for p in outcome.files},
    )
    return JSONResponse(body.model_dump(mode="json", exclude=None if outcome.files else {"emulator_file_urls"}))
