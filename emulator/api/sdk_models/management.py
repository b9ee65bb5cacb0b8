"""The management calls' bodies, field for field as the `ubiops` 4.15 SDK models them: what a
deployer sends (`DeploymentCreate`, `DeploymentVersionCreate`, …, with UbiOps' documented limits) and
what the emulator answers (projects, deployments, versions, revisions, environments, the user),
rendered from `emulator.state`.

Request bodies refuse unknown keys, so a misspelt setting is a clear 400 rather than silently
ignored. The SDK validates responses on the client: a required field missing here is an exception
in the user's code. The list endpoints answer with the detail shapes (a superset the SDK accepts).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from contract.names import MAX_NAME_LENGTH, NAME_PATTERN
from contract.requests import KEEP_ALL, RETENTION_TIME
from contract.spec import Spec
from contract.versions import DEFAULT_INSTANCE_TYPE_GROUP, MAXIMUM_IDLE_TIME, MAXIMUM_INSTANCES, MINIMUM_INSTANCES
from emulator.environments import OWN_ENVIRONMENT
from emulator.state import EMULATOR_USER_ID, Deployment, Project, Revision, Serving, Version
from emulator.version_settings import Description, Labels, Strict, VersionSettings

ORGANIZATION = "emulator"


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)]
"""A deployment's or version's name. The registry owns the rule (`contract.names.is_name`); it is also
declared here, so the OpenAPI document states it and a body breaking it is refused in the same 400 as
its other fields."""


class Body(Strict):
    """A request body: unknown keys are refused."""


class DeploymentCreate(Body):
    name: Name
    description: str | None = Description
    supports_request_format: bool = True
    input_type: Literal["structured", "plain"] | None = None
    output_type: Literal["structured", "plain"] | None = None
    input_fields: list[Any] | None = None
    output_fields: list[Any] | None = None
    labels: Labels | None = None


class DeploymentUpdate(Body):
    name: Name | None = None
    default_version: str | None = None
    description: str | None = Description
    input_fields: list[Any] | None = None
    output_fields: list[Any] | None = None
    labels: Labels | None = None


class VersionCreate(VersionSettings):
    version: Name


class VersionUpdate(VersionSettings):
    version: Name | None = None


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


class InputOutputFieldDetail(BaseModel):
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
    input_fields: list[InputOutputFieldDetail]
    output_fields: list[InputOutputFieldDetail]
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
    environment_name: str = OWN_ENVIRONMENT
    environment_tag: str | None = None
    status: str
    active_revision: str | None = None
    latest_revision: str | None = None
    maximum_instances: int
    minimum_instances: int
    maximum_idle_time: int = MAXIMUM_IDLE_TIME
    labels: dict[str, str] = {}
    creation_date: datetime
    last_updated: datetime
    request_retention_time: int = RETENTION_TIME
    request_retention_mode: str = KEEP_ALL
    maximum_queue_size: int | None = None
    restart_request_interruption: bool = False
    ports: list[dict[str, Any]] = []
    instance_type: str | None = None
    scaling_strategy: str = "default"
    instance_processes: int = 1
    instance_type_group_id: str | None = None
    instance_type_group_name: str = DEFAULT_INSTANCE_TYPE_GROUP
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


def _fields(spec: Spec) -> list[InputOutputFieldDetail]:
    return [InputOutputFieldDetail(**f) for f in spec.to_api()]


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


def version_detail(deployment: Deployment, version: Version, serving: Serving) -> DeploymentVersionDetail:
    """A version as it is served now (`Registry.serving`)."""
    latest, newest = version.latest_revision, version.newest_revision
    return DeploymentVersionDetail(**{
        "maximum_instances": MAXIMUM_INSTANCES,
        "minimum_instances": MINIMUM_INSTANCES,
        **version.settings,
        **asdict(serving.capabilities),
        "id": version.id,
        "deployment": deployment.name,
        "version": version.name,
        "default": deployment.default_version == version.name,
        "status": serving.status,
        "request_retention_mode": version.request_retention_mode,
        "active_revision": version.active_revision,
        "latest_revision": latest.id if latest else None,
        "last_file_upload": newest.created if newest else None,
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
        has_request_method=revision.capabilities.get("has_request_method"),
        has_requests_method=revision.capabilities.get("has_requests_method"),
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


def environment_list(project: Project, name: str) -> EnvironmentList:
    return EnvironmentList(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment/{name}")), name=name,
        creation_date=project.created, last_updated=project.created,
    )


def environment_tag_list(project: Project, environment_name: str, tag: str) -> EnvironmentTagList:
    return EnvironmentTagList(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"environment/{environment_name}/{tag}")),
        name=tag, environment=environment_name, creation_date=project.created,
    )


class User(BaseModel):
    """A `UserDetail`: the SDK's `user_get` requires `authentication`; the CLI's sign-in reads `email`."""

    id: str = EMULATOR_USER_ID
    email: str = "developer@emulator.local"
    name: str = "Emulator"
    surname: str = "User"
    registration_date: datetime
    authentication: str = "password"
