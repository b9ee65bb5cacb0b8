"""Recorded deployment requests: get, list (a deployment's, a version's, a project's), collect, their
input and output, cancel and delete, one or many at once.

What is kept follows the version's `request_retention_mode` (`none`, `metadata`, `full`) and, for
how long, its `request_retention_time` (`emulator.retention`); batch requests are always kept, so
they can be collected. The rules are the runner's (`emulator.request_runner`); these routes read the
call, ask it, and render the answer.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import TypeAdapter

from contract.requests import CANCELLED, COMPLETED
from emulator.api.dependencies import Services, get_services
from emulator.api.errors import ApiError
from emulator.api.parameters import comma_separated
from emulator.api.paths import at_both_levels, path_version
from emulator.api.request_body import read_json
from emulator.api.routes_storage import attachment
from emulator.api.sdk_models.requests import (
    DeploymentRequestDetail,
    DeploymentRequestList,
    DeploymentRequestSingleDetail,
    RequestsOverview,
    detail,
    list_item,
    overview_item,
)
from emulator.request_store import RequestRecord

router = APIRouter()
STATUS_QUERY = Query(COMPLETED, description="Comma-separated statuses; pending or processing only alone")
LIMIT_QUERY = Query(50, ge=1, le=500)
OFFSET_QUERY = Query(0, ge=0, le=2**63 - 1, description="Requests to skip; at most 2^63 - 1, SQLite's largest integer")


@at_both_levels(router.get, "/requests", response_model=list[DeploymentRequestList])
async def deployment_requests_list(
    project_name: str,
    deployment_name: str,
    status: str = STATUS_QUERY,
    limit: int = LIMIT_QUERY,
    offset: int = OFFSET_QUERY,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    search_id: str | None = None,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> list[DeploymentRequestList]:
    services.registry.check_path(project_name, deployment_name, version)
    records = services.runner.history(
        project_name, deployment_name, version, comma_separated(status), limit, offset, start_date, end_date, search_id
    )
    return [list_item(r) for r in records]


@router.get("/projects/{project_name}/requests", response_model=list[RequestsOverview])
async def project_requests_list(
    project_name: str,
    object_type: str | None = Query(None, description="deployment (the default) or pipeline (none are served)"),
    status: str = STATUS_QUERY,
    limit: int = LIMIT_QUERY,
    offset: int = OFFSET_QUERY,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    search_id: str | None = None,
    services: Services = Depends(get_services),
) -> list[RequestsOverview]:
    """The requests of every deployment of the project, newest first."""
    services.registry.project(project_name)
    records = services.runner.project_history(
        project_name, object_type, comma_separated(status), limit, offset, start_date, end_date, search_id
    )
    return [overview_item(r) for r in records]


async def stored_request(
    project_name: str,
    deployment_name: str,
    request_id: str,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> RequestRecord:
    """FastAPI dependency: the recorded request a path names (404 for any unknown part of the path),
    without its input and output."""
    services.registry.check_path(project_name, deployment_name, version)
    return services.runner.find(project_name, deployment_name, version, request_id)


async def whole_request(
    project_name: str,
    deployment_name: str,
    request_id: str,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> RequestRecord:
    """FastAPI dependency: `stored_request`'s request with its input and output, read in a worker thread."""
    services.registry.check_path(project_name, deployment_name, version)
    return await services.runner.find_whole(project_name, deployment_name, version, request_id)


@at_both_levels(router.get, "/requests/{request_id}", response_model=DeploymentRequestSingleDetail)
async def deployment_requests_get(
    project_name: str,
    deployment_name: str,
    request_id: str,
    metadata_only: bool = False,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> DeploymentRequestSingleDetail | Response:
    """The input and output are read only when asked: `ubiops.utils.wait_for_deployment_request` asks
    for the metadata every few seconds, and they can be hundreds of MB."""
    if metadata_only:
        return detail(await stored_request(project_name, deployment_name, request_id, version, services),
                      DeploymentRequestSingleDetail, metadata_only=True)
    record = await whole_request(project_name, deployment_name, request_id, version, services)
    return await _rendered(_SINGLE_DETAIL, detail(record, DeploymentRequestSingleDetail))


@at_both_levels(router.post, "/requests/collect", response_model=list[DeploymentRequestDetail])
async def deployment_requests_batch_get(
    request: Request,
    project_name: str,
    deployment_name: str,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> Response:
    services.registry.check_path(project_name, deployment_name, version)
    records = await services.runner.collect_whole(project_name, deployment_name, version,
                                                  _id_list(await read_json(await request.body())))
    return await _rendered(_DETAILS, [detail(record, DeploymentRequestDetail) for record in records])


@at_both_levels(router.get, "/requests/{request_id}/input")
async def deployment_requests_input_get(
    record: RequestRecord = Depends(whole_request), services: Services = Depends(get_services)
) -> Response:
    return await asyncio.to_thread(_data_response, services.runner.kept_input(record), record.id, "input")


@at_both_levels(router.get, "/requests/{request_id}/output")
async def deployment_requests_output_get(
    record: RequestRecord = Depends(whole_request), services: Services = Depends(get_services)
) -> Response:
    return await asyncio.to_thread(_data_response, services.runner.kept_output(record), record.id, "output")


@at_both_levels(router.patch, "/requests/{request_id}")
async def deployment_requests_update(
    data: dict = Body(..., examples=[{"status": CANCELLED}]),
    record: RequestRecord = Depends(stored_request),
    services: Services = Depends(get_services),
) -> dict:
    return _changed(services.runner.set_status(record, data.get("status")))


@at_both_levels(router.delete, "/requests/{request_id}", status_code=204)
async def deployment_requests_delete(
    record: RequestRecord = Depends(stored_request), services: Services = Depends(get_services)
) -> Response:
    await services.runner.delete([record])
    return Response(status_code=204)


@at_both_levels(router.post, "/requests/cancel")
async def deployment_requests_batch_cancel(
    request: Request,
    project_name: str,
    deployment_name: str,
    status: str | None = Query(None, description="pending or processing: cancel all of them (with an empty body)"),
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> list[dict]:
    """Cancel up to 250 requests by id (all or none), or every pending or processing one; the
    requests cancelled."""
    services.registry.check_path(project_name, deployment_name, version)
    body = await request.body()
    request_ids = _id_list(await read_json(body)) if body.strip() else []
    cancelled = await services.runner.cancel_many(project_name, deployment_name, version, request_ids, status)
    return [_changed(record) for record in cancelled]


@at_both_levels(router.post, "/requests/delete")
async def deployment_requests_batch_delete(
    request: Request,
    project_name: str,
    deployment_name: str,
    version: str | None = Depends(path_version),
    services: Services = Depends(get_services),
) -> list[dict]:
    """Delete up to 250 ended requests by id, with their files: all, or none if any is unknown or unfinished."""
    services.registry.check_path(project_name, deployment_name, version)
    records = services.runner.collect(project_name, deployment_name, version,
                                      _id_list(await read_json(await request.body())), "deleted")
    return [{"id": record.id} for record in await services.runner.delete(records)]


_SINGLE_DETAIL = TypeAdapter(DeploymentRequestSingleDetail)
_DETAILS = TypeAdapter(list[DeploymentRequestDetail])


async def _rendered(adapter: TypeAdapter, content: object) -> Response:
    """`content` as FastAPI answers its route's response_model (the same bytes), made in a worker thread by
    pydantic's `dump_json`, which lets the event loop run meanwhile: a request's input and output can be
    hundreds of MB (FastAPI's rendering held the loop ~0.5 s for a 90 MB request's get, ~0.9 s for its
    collect; `json.dumps`, as its JSONResponse renders, holds it even in a thread)."""
    return await asyncio.to_thread(
        lambda: Response(adapter.dump_json(content, by_alias=True), media_type="application/json"))


def _changed(record: RequestRecord) -> dict:
    return {"id": record.id, "status": record.status}


def _id_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise ApiError(400, "The body must be a JSON list of request ids")
    return value


def _data_response(value: object, request_id: str, data_type: str) -> Response:
    """A request's input or output as it was sent: plain text, or JSON (encoded in a worker thread by
    the routes: it can be hundreds of MB). Named as a download, `<id>_<input|output>.json` as the CLI
    names one without a name (plain text too): `ubiops deployments requests input -o DIR` joined the
    name the SDK read from the answer, None without one, to DIR, and crashed."""
    headers = {"content-disposition": attachment(f"{request_id}_{data_type}.json")}
    if isinstance(value, str):
        return Response(value, media_type="text/plain", headers=headers)
    return Response(json.dumps(value), media_type="application/json", headers=headers)
