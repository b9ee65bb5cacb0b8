"""Query parameters: those the request-creating routes read themselves, instead of declaring them in
their signature for FastAPI to solve on every call, and how a comma-separated one is split.

FastAPI's parameter handling (two dependencies and two bounded queries) cost ~0.06 ms of the ~0.8 ms
the event loop spent on a trivial request (`bench/app_cpu.py`; BENCHMARKS.md, issue 17). A `BoundedInt` is documented in the
OpenAPI document as FastAPI would document it, and refused with FastAPI's words, through pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import pydantic
from fastapi import Request

from emulator.api.errors import ApiError
from emulator.api.paths import path_parameters


@dataclass(frozen=True)
class BoundedInt:
    """An optional integer query parameter within [ge, le]; `default` when it is left out."""

    name: str
    default: int | None
    ge: int
    le: int
    description: str
    _adapter: pydantic.TypeAdapter[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_adapter", pydantic.TypeAdapter(Annotated[int, pydantic.Field(ge=self.ge, le=self.le)]))

    def parse(self, raw: str) -> int | str:
        """`raw` as this parameter's value, or what is wrong with it in FastAPI's words (`query timeout: …`)."""
        try:
            return self._adapter.validate_python(raw)
        except pydantic.ValidationError as exc:
            return f"query {self.name}: {exc.errors()[0]['msg']}"

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.ge, "maximum": self.le}
        if self.default is not None:
            schema["default"] = self.default
        return {"name": self.name, "in": "query", "required": False, "description": self.description, "schema": schema}


def read_query(request: Request, *parameters: BoundedInt) -> list[Any]:
    """Each parameter's value in the call's query (an int, or its default); ApiError 400 naming every
    one that does not fit."""
    query = request.query_params
    values = [parameter.parse(query[parameter.name]) if parameter.name in query else parameter.default
              for parameter in parameters]
    problems = [value for value in values if isinstance(value, str)]
    if problems:
        raise ApiError(400, "; ".join(problems))
    return values


def documented(*parameters: BoundedInt) -> dict[str, Any]:
    """`openapi_extra` documenting a request route's path parameters and query `parameters` (at version
    level, `paths.at_both_levels` adds `version`)."""
    return {"parameters": [*path_parameters("project_name", "deployment_name")["parameters"],
                           *(parameter.openapi() for parameter in parameters)]}


def comma_separated(value: str | None) -> tuple[str, ...]:
    """A comma-separated query value (`status=pending, running`) as its items, stripped; empty ones left out."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())
