"""Health and metrics, outside UbiOps' API (README, "Metrics and health"): `/livez` (the server
answers), `/readyz` (every version of every deployment can take requests now) and `/metrics`
(Prometheus' text format, `emulator.metrics`).

Probes rarely send a token, so `/livez` and `/readyz` are open (`PROBES`) and name no deployment to
a caller without the token, when one is set; `/metrics` names deployments and needs the token like
the API. The origin and `Host` guard covers all three, as every route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from emulator.api.auth import token_accepted
from emulator.api.dependencies import Services, get_services

router = APIRouter(include_in_schema=False)
PROBES = ("/livez", "/readyz")


@router.get(PROBES[0])
async def livez() -> dict[str, str]:
    """The server is up and answering."""
    return {"status": "ok"}


@router.get(PROBES[1])
async def readyz(request: Request, services: Services = Depends(get_services)) -> JSONResponse:
    """200 when every version of every deployment is `available` (a build, a failed start or a version
    without a package makes it 503), with the versions that are not when the caller may see names."""
    not_ready = [{"project": project.name, "deployment": deployment.name, "version": version.name,
                  "status": serving.status, **({"error": serving.error} if serving.error else {})}
                 for project, deployment, version, serving in services.registry.not_ready()]
    if not not_ready:
        return JSONResponse({"status": "ready"})
    body: dict[str, Any] = {"status": "not ready", "not_ready": len(not_ready)}
    if _may_see_names(request, services.settings.token):
        body["versions"] = not_ready
    return JSONResponse(body, status_code=503)


def _may_see_names(request: Request, token: str | None) -> bool:
    """Without a token set, anyone who may call the API; with one, a caller who sends it."""
    if token is None:
        return True
    header = request.headers.get("authorization")
    return header is not None and token_accepted(header.encode("latin-1"), token.encode())


@router.get("/metrics")
async def metrics(services: Services = Depends(get_services)) -> Response:
    """Read in the event loop, where the pools and the registry change, so each scrape is consistent."""
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
