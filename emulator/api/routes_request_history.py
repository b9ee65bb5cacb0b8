"""Recorded deployment requests: get, list, collect, their input and output, cancel and delete.

What is kept follows the version's `request_retention_mode` (`none`, `metadata`, `full`); batch
requests are always kept, so they can be collected.
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from contract.requests import CANCELLED, COMPLETED, PENDING, PROCESSING, STATUSES
from emulator.api.errors import ApiError
from emulator.api.paths import at_both_levels, path_version
from emulator.api.request_body import parse_json
from emulator.api.request_schemas import (
    DeploymentRequestDetail,
    DeploymentRequestList,
    DeploymentRequestSingleDetail,
    detail,
    list_item,
)
from emulator.request_runner import MAX_BATCH_ITEMS
from emulator.request_store import RequestRecord
from emulator.api.dependencies import Services, get_services

router = APIRouter()


@at_both_levels(router.get, "/requests", response_model=list[DeploymentRequestList])
async def deployment_requests_list(
    project_name: str,
    deployment_name: str,
    status: str = Query(COMPLETED, description="Comma-separated statuses (pending and processing not together)"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    search_id: str | None = None,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> list[DeploymentRequestList]:
    _check_target(services, project_name, deployment_name, version)
    statuses = tuple(s.strip() for s in status.split(",") if s.strip())
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise ApiError(400, f"Unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
    if PENDING in statuses and PROCESSING in statuses:
        raise ApiError(400, "pending and processing cannot be combined in one status filter")
    records = services.runner.store.list(
        project_name, deployment_name, version, statuses, limit, offset, start_date, end_date, search_id
    )
    return [list_item(r) for r in records]


def stored_request(
    project_name: str,
    deployment_name: str,
    request_id: str,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> RequestRecord:
    """FastAPI dependency: the recorded request a path names (404 for any unknown part of the path)."""
    _check_target(services, project_name, deployment_name, version)
    return _find(services, project_name, deployment_name, version, request_id)


@at_both_levels(router.get, "/requests/{request_id}", response_model=DeploymentRequestSingleDetail)
async def deployment_requests_get(
    metadata_only: bool = False, record: RequestRecord = Depends(stored_request)
) -> DeploymentRequestSingleDetail:
    return detail(record, DeploymentRequestSingleDetail, metadata_only)


@at_both_levels(router.post, "/requests/collect", response_model=list[DeploymentRequestDetail])
async def deployment_requests_batch_get(
    request: Request,
    project_name: str,
    deployment_name: str,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> list[DeploymentRequestDetail]:
    _check_target(services, project_name, deployment_name, version)
    ids = _id_list(parse_json(await request.body()))
    return [detail(_find(services, project_name, deployment_name, version, i), DeploymentRequestDetail) for i in ids]


@at_both_levels(router.get, "/requests/{request_id}/input")
async def deployment_requests_input_get(record: RequestRecord = Depends(stored_request)) -> Response:
    return _stored_data(record, record.request_data, "input")


@at_both_levels(router.get, "/requests/{request_id}/output")
async def deployment_requests_output_get(record: RequestRecord = Depends(stored_request)) -> Response:
    if record.status != COMPLETED:
        raise ApiError(404, f"Request {record.id} has no output: it is {record.status}")
    return _stored_data(record, record.result, "output")


@at_both_levels(router.patch, "/requests/{request_id}")
async def deployment_requests_update(
    data: dict = Body(..., examples=[{"status": "cancelled"}]),
    record: RequestRecord = Depends(stored_request),
    services: Services = Depends(get_services),
) -> dict:
    if data.get("status") != CANCELLED:
        raise ApiError(400, "Only {\"status\": \"cancelled\"} can be set on a request")
    if not services.runner.cancel(record):
        raise ApiError(400, f"Request {record.id} is {record.status}; only pending batch requests can be cancelled")
    return {"id": record.id, "status": record.status}


@at_both_levels(router.delete, "/requests/{request_id}", status_code=204)
async def deployment_requests_delete(
    record: RequestRecord = Depends(stored_request), services: Services = Depends(get_services)
) -> Response:
    if record.status in (PENDING, PROCESSING):
        raise ApiError(400, f"Request {record.id} is {record.status}; cancel it or wait before deleting it")
    services.runner.store.delete(record.id)
    return Response(status_code=204)


def _check_target(services: Services, project: str, deployment: str, version: str | None) -> None:
    """404 for an unknown project, deployment or named version."""
    if version is None:
        services.registry.deployment(project, deployment)
    else:
        services.registry.version(project, deployment, version)


def _find(services: Services, project: str, deployment: str, version: str | None, request_id: str) -> RequestRecord:
    record = services.runner.store.get(request_id)
    if record is None or (record.project, record.deployment) != (project, deployment) or version not in (None, record.version):
        raise ApiError(404, "Request not found")
    return record


def _id_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise ApiError(400, "The body must be a JSON list of request ids")
    if len(value) > MAX_BATCH_ITEMS:
        raise ApiError(400, f"At most {MAX_BATCH_ITEMS} request ids can be collected at once; got {len(value)}")
    return value


def _stored_data(record: RequestRecord, value: object, what: str) -> Response:
    if not record.keeps_data:
        raise ApiError(404, f"The {what} of request {record.id} was not kept (request_retention_mode is not full)")
    if isinstance(value, str):
        return Response(value, media_type="text/plain")
    return Response(json.dumps(value), media_type="application/json")
