"""Which operation of the `ubiops` SDK a call that no route serves was meant for, so that it is answered
naming the operation (README, "Differences from UbiOps": Not served) instead of a bare "Not Found", or
a "Method Not Allowed" that suggests the caller used the wrong method where UbiOps serves the call.

The table is read from the installed SDK's own API modules (each operation's `url = "…"` and
`call_api(url, "METHOD", …)`), the first time a call finds no route: never at start, never on a served
call. The SDK is the emulator's pinned dependency, so the table is always that of the SDK it serves."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

HTTP_INFO = "_with_http_info("
CALL = re.compile(r'url = \(?\s*"([^"]+)".*?call_api\(\s*url,\s*"(\w+)"', re.S)
PARAMETER = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    """The SDK's path template, e.g. `/projects/{project_name}/quotas`."""
    parts: tuple[str | None, ...]
    """The template's parts between slashes: a literal part, or None for a parameter."""

    def matches(self, method: str, parts: list[str]) -> bool:
        return method == self.method and len(parts) == len(self.parts) and all(
            bool(part) if literal is None else part == literal for literal, part in zip(self.parts, parts, strict=True))


@functools.cache
def sdk_operations() -> tuple[Operation, ...]:
    """Every operation of the SDK's API modules (`ubiops/api/*.py`, read as text, not imported: ~3 ms)."""
    spec = importlib.util.find_spec("ubiops.api")
    folder = Path(next(iter(spec.submodule_search_locations or []))) if spec else None
    operations: dict[str, Operation] = {}
    for module in sorted(folder.glob("*.py")) if folder else []:
        for method_source in module.read_text(encoding="utf-8").split("\n    def ")[1:]:
            name, _, body = method_source.partition(HTTP_INFO)
            if body and name.isidentifier() and (call := CALL.search(body)):
                path = call[1]
                parts = tuple(None if PARAMETER.fullmatch(part) else part for part in path.split("/")[1:])
                operations[name] = Operation(name, call[2].upper(), path, parts)
    return tuple(operations.values())


def unserved_operation(method: str, raw_path: str, prefixes: tuple[str, ...], routes: Sequence[BaseRoute]) -> Operation | None:
    """The SDK operation `method raw_path` (the path as sent, with its %-escapes) calls, if any and if none
    of `routes` (the app's) serves it; of those whose template fits, the one with the most literal parts
    (`…/environments/{name}/tags` over a template of parameters alone).

    A served operation is left out as a name holding `/` (the SDK sends `face-profile%2Fv1`) matches no
    route, as Starlette matches the path decoded: `deployments_get` of such a name answered 501 "not
    served", where it is served and the name is what was not found."""
    prefix = next((p for p in prefixes if raw_path.startswith(p + "/")), None)
    if prefix is None:
        return None
    parts = [unquote(part) for part in raw_path[len(prefix) + 1:].split("/")]
    fitting = [op for op in sdk_operations() if op.matches(method, parts)]
    operation = max(fitting, key=lambda op: sum(part is not None for part in op.parts), default=None)
    if operation is None or (operation.method, _unnamed(operation.path)) in _served(routes, prefix):
        return None
    return operation


def _served(routes: Sequence[BaseRoute], prefix: str) -> set[tuple[str, str]]:
    """Each method and template (`_unnamed`) a route under `prefix` serves. The routes of an included
    router are walked with FastAPI's own `iter_route_contexts` (since 0.165 `app.routes` holds a router
    as one `_IncludedRouter`)."""
    return {(method, _unnamed(route.path.removeprefix(prefix)))
            for route in iter_route_contexts(routes) if route.path and route.path.startswith(prefix + "/")
            for method in route.methods or ()}


def _unnamed(template: str) -> str:
    """A path template with its parameters unnamed and no trailing slash: `{name}`, `{deployment_name}`
    and the route's `{file:rest_of_path}` compare equal."""
    return PARAMETER.sub("{}", template.rstrip("/"))


def not_served_message(operation: Operation) -> str:
    return (f"{operation.name} ({operation.method} {operation.path}) is not served by the emulator "
            "(README: Differences from UbiOps, Not served)")
