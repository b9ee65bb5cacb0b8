"""Request endpoints exist twice in UbiOps' API: for a deployment's default version and for a named
version. One handler serves both; it finds the version, if any, in the path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

DEPLOYMENT = "/projects/{project_name}/deployments/{deployment_name}"
VERSION = DEPLOYMENT + "/versions/{version}"
_VERSION_PARAMETER = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def at_both_levels(route: Callable[..., Callable[[Endpoint], Endpoint]], suffix: str, **options: Any
                   ) -> Callable[[Endpoint], Endpoint]:
    """Register `endpoint` at `DEPLOYMENT + suffix` and `VERSION + suffix` (e.g. `router.post`)."""

    def register(endpoint: Endpoint) -> Endpoint:
        route(DEPLOYMENT + suffix, **options)(endpoint)
        route(VERSION + suffix, **options, openapi_extra={"parameters": [_VERSION_PARAMETER]})(endpoint)
        return endpoint

    return register


async def path_version(request: Request) -> str | None:
    """The version named in the path, or None at deployment level (the default version); async, as
    `get_services` is."""
    return request.path_params.get("version")
