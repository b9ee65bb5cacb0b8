"""The settings a version holds, held to the rules the `ubiops` 4.15 SDK holds them to: the API's
version create and update bodies take them (`emulator.api.sdk_models.management`), and the catalog
checks a saved version's by them again as it reads them back (`emulator.catalog`): a value edited into
the file by hand would otherwise fail every request of the version."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from contract.requests import MAX_RETENTION_TIME, RetentionMode
from contract.spec import json_value_problem
from contract.text import LONE_SURROGATE, is_unicode_text
from contract.versions import IDLE_TIME_RANGE

Description = Field(None, max_length=400)
NotEmpty = Field(None, min_length=1)


def _unicode_text(value: Any) -> Any:
    """Refuse a lone UTF-16 surrogate (JSON's `"\\udcff"` gives one): kept, it would fail every answer and
    every save that holds it."""
    if isinstance(value, str) and not is_unicode_text(value):
        raise ValueError(f"{value!r} holds {LONE_SURROGATE}")
    return value


def _unicode_labels(labels: Any) -> Any:
    """`_unicode_text` for each key and value, checked as a whole: an error's place would name the key as U+FFFDs."""
    if isinstance(labels, dict):
        for key, value in labels.items():
            _unicode_text(key)
            _unicode_text(value)
    return labels


def _json_value(value: Any) -> Any:
    """Refuse what `json_value_problem` refuses: nested too deeply for the catalog to read it back (its own
    nesting counts too), or a value JSON cannot carry."""
    if problem := json_value_problem(value):
        raise ValueError(problem)
    return value


UnicodeText = Annotated[str, BeforeValidator(_unicode_text)]
"""A string the emulator keeps and answers with, as UTF-8 can carry it."""
Labels = Annotated[dict[str, str], BeforeValidator(_unicode_labels)]
"""A deployment's, version's or bucket's labels."""
JsonValue = Annotated[Any, AfterValidator(_json_value)]
"""A setting the SDK types as any `object` (a version's `command` and `args`), kept and answered as given."""


class Strict(BaseModel):
    """Unknown keys are refused, so a misspelt setting is a clear 400 (and a saved one a clear error)."""

    model_config = ConfigDict(extra="forbid")


class Port(Strict):
    """A `DeploymentVersionPort`: the SDK requires all three of a stored port, so a version holding less
    could no longer be read or listed."""

    public_port: int
    deployment_port: int
    protocol: str = Field(min_length=1, max_length=16)


class HealthCheck(Strict):
    interval: int | None = None
    timeout: int | None = None
    failure_threshold: int | None = None
    port: int | None = None
    path: UnicodeText | None = None


class VersionSettings(Strict):
    """The settings a version create or update may give; the emulator stores and echoes them, so each
    is held to the SDK's own rules for it (an empty `environment_tag`, say, would make every later
    answer holding it one the SDK refuses)."""

    environment: str | None = NotEmpty
    environment_name: str | None = NotEmpty
    environment_tag: str | None = NotEmpty
    instance_type: str | None = NotEmpty
    instance_type_group_id: UnicodeText | None = None
    instance_type_group_name: str | None = NotEmpty
    maximum_instances: int | None = Field(None, ge=0)
    minimum_instances: int | None = Field(None, ge=0)
    maximum_idle_time: int | None = Field(None, ge=IDLE_TIME_RANGE[0], le=IDLE_TIME_RANGE[1])
    description: str | None = Description
    labels: Labels | None = None
    request_retention_time: int | None = Field(None, ge=0, le=MAX_RETENTION_TIME)
    request_retention_mode: RetentionMode | None = None
    maximum_queue_size: int | None = Field(None, ge=0)
    restart_request_interruption: bool | None = None
    ports: list[Port] | None = None
    scaling_strategy: Literal["default", "moderate"] | None = None
    instance_processes: int | None = Field(None, ge=1)
    health_check: HealthCheck | None = None
    command: JsonValue = None
    args: JsonValue = None
