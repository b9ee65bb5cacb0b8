"""Environment variables' bodies, field for field as the `ubiops` 4.15 SDK models them: what a client
sends (`EnvironmentVariableCreate`, `EnvironmentVariableCopy`) and what the emulator answers
(`EnvironmentVariableList`, `InheritedEnvironmentVariableList`), rendered from `emulator.state`.

A secret's value is answered as null, as UbiOps documents ("will be null for secret variables").
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from emulator.api.sdk_models.management import Body
from emulator.state import Seen, Variable


class EnvironmentVariableCreate(Body):
    name: str
    value: str
    secret: bool = False


class EnvironmentVariableUpdate(Body):
    """The SDK sends the whole `EnvironmentVariableCreate`; other clients (Terraform's provider) send
    only what changes."""

    name: str | None = None
    value: str | None = None
    secret: bool | None = None


class EnvironmentVariableCopy(Body):
    source_deployment: str = Field(min_length=1)
    source_version: str | None = Field(None, min_length=1)


class EnvironmentVariableList(BaseModel):
    id: str
    name: str
    value: str | None
    secret: bool


class InheritedEnvironmentVariableList(EnvironmentVariableList):
    inheritance_type: str | None = None
    inheritance_name: str | None = None


def variable_list(variable: Variable) -> EnvironmentVariableList:
    return EnvironmentVariableList(id=variable.id, name=variable.name, value=_shown(variable), secret=variable.secret)


def inherited_list(seen: Seen) -> InheritedEnvironmentVariableList:
    variable = seen.variable
    return InheritedEnvironmentVariableList(id=variable.id, name=variable.name, value=_shown(variable),
                                            secret=variable.secret, inheritance_type=seen.inheritance_type,
                                            inheritance_name=seen.inheritance_name)


def _shown(variable: Variable) -> str | None:
    """The value the API shows: none for a secret."""
    return None if variable.secret else variable.value
