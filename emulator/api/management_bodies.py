"""Request bodies of the management calls a deployer makes (`DeploymentCreate`, `DeploymentUpdate`,
`DeploymentVersionCreate`, `DeploymentVersionUpdate` in the SDK), with UbiOps' documented limits.

Unknown keys are refused, so a misspelt setting is a clear 400 rather than silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.names import MAX_NAME_LENGTH, NAME_PATTERN

Name = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
Description = Field(None, max_length=400)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentCreate(Body):
    name: str = Name
    description: str | None = Description
    supports_request_format: bool = True
    input_type: Literal["structured", "plain"] | None = None
    output_type: Literal["structured", "plain"] | None = None
    input_fields: list[Any] | None = None
    output_fields: list[Any] | None = None
    labels: dict[str, str] | None = None


class DeploymentUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    default_version: str | None = None
    description: str | None = Description
    input_fields: list[Any] | None = None
    output_fields: list[Any] | None = None
    labels: dict[str, str] | None = None


class VersionSettings(Body):
    """The settings a version create or update may give; the emulator stores and echoes them."""

    environment: str | None = None
    environment_name: str | None = None
    environment_tag: str | None = None
    instance_type: str | None = None
    instance_type_group_id: str | None = None
    instance_type_group_name: str | None = None
    maximum_instances: int | None = Field(None, ge=0)
    minimum_instances: int | None = Field(None, ge=0)
    maximum_idle_time: int | None = Field(None, ge=10, le=3600)
    description: str | None = Description
    labels: dict[str, str] | None = None
    request_retention_time: int | None = Field(None, ge=0)
    request_retention_mode: Literal["none", "metadata", "full"] | None = None
    maximum_queue_size: int | None = Field(None, ge=0)
    restart_request_interruption: bool | None = None
    ports: list[dict[str, Any]] | None = None
    scaling_strategy: Literal["default", "moderate"] | None = None
    instance_processes: int | None = Field(None, ge=1)
    health_check: dict[str, Any] | None = None
    command: Any = None
    args: Any = None


class VersionCreate(VersionSettings):
    version: str = Name


class VersionUpdate(VersionSettings):
    version: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
