"""Management response bodies (projects, deployments, versions, revisions, environments), field for
field as the `ubiops` 4.15 SDK models them, built from `emulator.state`. Request bodies are in
`request_schemas` and `management_bodies`.

The SDK validates responses on the client: a required field missing here is an exception in the
user's code. The list endpoints answer with the detail shapes (a superset the SDK accepts).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from contract.spec import Spec
from emulator.runtime.manager import Runtime
from emulator.state import EMULATOR_USER_ID, Deployment, Project, Revision, Version

ORGANIZATION = "emulator"
ENVIRONMENT = f"python{sys.version_info.major}-{sys.version_info.minor}"
INSTANCE_TYPE_GROUP = "emulator (this machine)"


class Status(BaseModel):
    status: str


class ProjectList(BaseModel):
    id: str
    name: str
    creation_date: datetime
    advanced_permissions: bool = False
    credits: float | None = None
    organization_name: str = ORGANIZATION
    labels: dict[str, str] = {}


class ProjectDetail(ProjectList):
    suspended: bool = False
    suspended_reason: str | None = None
    cors_origins: list[str] = []


class Field(BaseModel):
    name: str
    data_type: str
    widget: dict[str, Any] | None = None


class DeploymentDetail(BaseModel):
    id: str
    name: str
    project: str
    supports_request_format: bool = True
    description: str = ""
    input_type: str
    output_type: str
    input_fields: list[Field]
    output_fields: list[Field]
    labels: dict[str, str] = {}
    creation_date: datetime
    last_updated: datetime
    default_version: str | None


class DeploymentVersionDetail(BaseModel):
    id: str
    deployment: str
    version: str
    default: bool
    description: str = ""
    environment_name: str = ENVIRONMENT
    environment_tag: str | None = None
    status: str
    active_revision: str | None = None
    latest_revision: str | None = None
    maximum_instances: int
    minimum_instances: int
    maximum_idle_time: int = 300
    labels: dict[str, str] = {}
    creation_date: datetime
    last_updated: datetime
    request_retention_time: int = 604800
    request_retention_mode: str = "full"
    maximum_queue_size: int | None = None
    restart_request_interruption: bool = False
    ports: list[dict[str, Any]] = []
    instance_type: str | None = None
    scaling_strategy: str = "default"
    instance_processes: int = 1
    instance_type_group_id: str | None = None
    instance_type_group_name: str = INSTANCE_TYPE_GROUP
    last_file_upload: datetime | None = None
    has_request_method: bool | None = None
    has_requests_method: bool | None = None
    health_check: dict[str, Any] | None = None
    command: Any = None
    args: Any = None


def project_list(project: Project) -> ProjectList:
    return ProjectList(id=project.id, name=project.name, creation_date=project.created)


def project_detail(project: Project) -> ProjectDetail:
    return ProjectDetail(id=project.id, name=project.name, creation_date=project.created)


def _fields(spec: Spec) -> list[Field]:
    return [Field(**f) for f in spec.to_api()]


def deployment_detail(deployment: Deployment) -> DeploymentDetail:
    return DeploymentDetail(
        id=deployment.id,
        name=deployment.name,
        project=deployment.project,
        input_type=deployment.input_spec.kind,
        output_type=deployment.output_spec.kind,
        input_fields=_fields(deployment.input_spec),
        output_fields=_fields(deployment.output_spec),
        description=deployment.description,
        labels=deployment.labels,
        creation_date=deployment.created,
        last_updated=deployment.last_updated,
        default_version=deployment.default_version,
    )


def version_detail(deployment: Deployment, version: Version, runtime: Runtime) -> DeploymentVersionDetail:
    latest = version.latest_revision
    instances = runtime.pool(version)
    return DeploymentVersionDetail(**{
        "maximum_instances": 5,
        "minimum_instances": 0,
        **version.settings,
        **asdict(instances.capabilities),
        "id": version.id,
        "deployment": deployment.name,
        "version": version.name,
        "default": deployment.default_version == version.name,
        "status": version.status(instances.status),
        "request_retention_mode": version.request_retention_mode,
        "active_revision": version.active_revision,
        "latest_revision": latest.id if latest else None,
        "last_file_upload": latest.created if latest else None,
        "creation_date": version.created,
        "last_updated": version.last_updated,
    })


class RevisionCreate(BaseModel):
    success: bool = True
    revision: str
    build: str


class RevisionList(BaseModel):
    id: str
    version: str
    creation_date: datetime
    created_by: str = EMULATOR_USER_ID
    status: str
    error_message: str | None = None
    has_request_method: bool | None = None
    has_requests_method: bool | None = None
    empty: bool = False


def revision_created(revision: Revision) -> RevisionCreate:
    return RevisionCreate(revision=revision.id, build=revision.id)


def revision_list(revision: Revision) -> RevisionList:
    return RevisionList(
        id=revision.id,
        version=revision.version,
        creation_date=revision.created,
        status=revision.status,
        error_message=revision.error_message,
        **revision.capabilities,
    )


class EnvironmentList(BaseModel):
    id: str
    name: str
    project: str | None = None
    creation_date: datetime
    last_updated: datetime
    description: str = ""
    labels: dict[str, str] = {}
    system: bool = True


class EnvironmentTagList(BaseModel):
    id: str
    name: str
    environment: str
    creation_date: datetime
    status: str = "success"
    supports_request_format: bool = True
    implicit: bool = False
    deprecated: bool = False
    size: int | None = None
    error_message: str | None = None
    base_environment_name: str | None = None
    base_environment_tag: str | None = None
    built: bool = True


class User(BaseModel):
    id: str = EMULATOR_USER_ID
    email: str = "developer@emulator.local"
    first_name: str = "Emulator"
    last_name: str = "User"
