"""Deployment request response bodies, field for field as the `ubiops` 4.15 SDK models them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from emulator.request_store import RequestRecord


class DeploymentRequestCreateResponse(BaseModel):
    id: str
    deployment: str
    version: str
    status: str
    success: bool
    result: Any = None
    error_message: str | None = None
    timeout: int


class DirectRequestResponse(DeploymentRequestCreateResponse):
    """What the emulator answers a direct request: UbiOps' fields, plus download URLs for curl users
    (the SDK ignores fields it does not know)."""

    emulator_file_urls: dict[str, str] | None = None


class DeploymentRequestBatchCreateResponse(BaseModel):
    id: str
    deployment: str
    version: str
    status: str
    time_created: datetime


class DeploymentRequestList(DeploymentRequestBatchCreateResponse):
    success: bool
    time_started: datetime | None = None
    time_completed: datetime | None = None
    input_size: int | None = None
    output_size: int | None = None


class DeploymentRequestDetail(DeploymentRequestList):
    error_message: str | None = None
    timeout: int
    request_data: Any = None
    result: Any = None
    additional_data: dict[str, Any] | None = None


class DeploymentRequestSingleDetail(DeploymentRequestDetail):
    origin: dict[str, str] = {"created_by": "emulator"}


class RequestsOverview(BaseModel):
    """A request in a project's list (`project_requests_list`): a deployment's, as no pipelines are served."""

    id: str
    deployment: str | None = None
    pipeline: str | None = None
    version: str
    status: str
    time_created: datetime
    time_started: datetime | None = None
    time_completed: datetime | None = None
    input_size: int | None = None
    output_size: int | None = None


def create_response(record: RequestRecord) -> DeploymentRequestCreateResponse:
    return DeploymentRequestCreateResponse(**_fields(record, DeploymentRequestCreateResponse))


def direct_response(record: RequestRecord, file_urls: dict[str, str] | None) -> DirectRequestResponse:
    return DirectRequestResponse(**_fields(record, DirectRequestResponse), emulator_file_urls=file_urls)


def batch_item(record: RequestRecord) -> DeploymentRequestBatchCreateResponse:
    return DeploymentRequestBatchCreateResponse(**_fields(record, DeploymentRequestBatchCreateResponse))


def list_item(record: RequestRecord) -> DeploymentRequestList:
    return DeploymentRequestList(**_fields(record, DeploymentRequestList))


def overview_item(record: RequestRecord) -> RequestsOverview:
    return RequestsOverview(**_fields(record, RequestsOverview))


Detail = TypeVar("Detail", bound=DeploymentRequestDetail)


def detail(record: RequestRecord, model: type[Detail], metadata_only: bool = False) -> Detail:
    values = _fields(record, model)
    if metadata_only:
        values.update(request_data=None, result=None)
    return model(**values)


def _fields(record: RequestRecord, model: type[BaseModel]) -> dict[str, Any]:
    names = model.model_fields  # a property computed on each access: read once
    values = {"success": record.success, **{name: getattr(record, name) for name in names if hasattr(record, name)}}
    return {name: value for name, value in values.items() if name in names}
