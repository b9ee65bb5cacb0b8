"""Request endpoints exist twice in UbiOps' API: for a deployment's default version and for a named
version. One handler serves both; it takes the version the path names, or the deployment's default one.
Environment variables exist three times, at project, deployment and version level, again with one
handler each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.convertors import PathConvertor, register_url_convertor

from emulator.api.dependencies import services_of

PROJECT = "/projects/{project_name}"
DEPLOYMENT = PROJECT + "/deployments/{deployment_name}"
VERSION = DEPLOYMENT + "/versions/{version}"


class _RestOfPath(PathConvertor):
    """Starlette's `path` convertor, which also matches a newline: its `.*` does not, so a call naming a
    file with one (`a%0Ab.txt`) found no route and answered a bare 404 "Not Found", where the storage's
    check of the name says what is wrong with it."""

    regex = "(?s:.*)"


register_url_convertor("rest_of_path", _RestOfPath())


def rest_of_path(name: str) -> str:
    """A path parameter that takes the rest of the path, as `{name:path}` does, whatever it holds."""
    return f"{{{name}:rest_of_path}}"


def path_parameters(*names: str) -> dict[str, Any]:
    """Path parameters a handler reads from the request rather than its signature, for the OpenAPI document."""
    return {"parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]}

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def at_both_levels(route: Callable[..., Callable[[Endpoint], Endpoint]], suffix: str, **options: Any
                   ) -> Callable[[Endpoint], Endpoint]:
    """Register `endpoint` at `DEPLOYMENT + suffix` and `VERSION + suffix` (e.g. `router.post`)."""

    extra = options.pop("openapi_extra", {})
    parameters = extra.get("parameters", [])

    def register(endpoint: Endpoint) -> Endpoint:
        route(DEPLOYMENT + suffix, **options, openapi_extra=extra or None)(endpoint)
        version = {**extra, "parameters": [*path_parameters("version")["parameters"], *parameters]}
        route(VERSION + suffix, **options, openapi_extra=version)(endpoint)
        return endpoint

    return register


LEVEL_PARAMETERS = {PROJECT: (), DEPLOYMENT: ("deployment_name",), VERSION: ("deployment_name", "version")}


def at_levels(route: Callable[..., Callable[[Endpoint], Endpoint]], suffix: str,
              levels: tuple[str, ...] = (PROJECT, DEPLOYMENT, VERSION), **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Register `endpoint`, which takes only `project_name` from its signature and reads the deployment
    and version from the request, at `level + suffix` for each of `levels`."""

    def register(endpoint: Endpoint) -> Endpoint:
        for level in levels:
            extra = path_parameters(*LEVEL_PARAMETERS[level]) if LEVEL_PARAMETERS[level] else None
            route(level + suffix, **options, openapi_extra=extra)(endpoint)
        return endpoint

    return register


async def path_version(request: Request) -> str:
    """The version a request endpoint is for: the one named in the path, or at deployment level the
    deployment's default version, as UbiOps documents those endpoints ("for the default version of a
    deployment"), so that none of them reaches another version's requests. NotFound for an unknown
    project or deployment, or one without a default version. Async, as `get_services` is."""
    path = request.path_params
    named: str | None = path.get("version")
    if named is not None:
        return named
    return services_of(request).registry.version(path["project_name"], path["deployment_name"]).name
