"""The FastAPI application: UbiOps' API under `/v2` and `/v2.1` (requests, management, files, logs),
with the backends it calls, started and stopped with it."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.api import (
    routes_deployments,
    routes_environment_variables,
    routes_environments,
    routes_files,
    routes_health,
    routes_instances,
    routes_logs,
    routes_projects,
    routes_request_history,
    routes_requests,
    routes_revisions,
    routes_status,
    routes_storage,
    routes_user,
    routes_versions,
)
from emulator.api.auth import TokenAuth
from emulator.api.dependencies import Services
from emulator.api.errors import InternalErrors, install_error_handlers
from emulator.api.limits import BodySizeLimit
from emulator.api.origins import install_origin_guard
from emulator.builds import Builder
from emulator.catalog import Catalog
from emulator.data_lock import lock_data_dir
from emulator.instance_history import InstanceHistory
from emulator.log_capture import capture_logs, release_logs
from emulator.log_store import LogStore
from emulator.metrics import Metrics
from emulator.registry import Registry
from emulator.reload import watch
from emulator.request_runner import RequestRunner
from emulator.request_store import RequestStore
from emulator.retention import RetentionSweeper
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import EveryListener
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.serving import PackageVersion
from emulator.settings import Settings
from emulator.signing import Signer
from emulator.storage import Storage

API_PREFIXES = ("/v2.1", "/v2")
WEB_PAGE = Path(__file__).parent / "web"
WEB_ASSETS = "/web"
FRAME_HEADERS = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}
"""Sent with every HTML page (`FramedByNoPage`): a page on another port of this host, the same site
to the origin rule, could frame one and have its user press its buttons (clickjacking): the web
page's Send, `/docs`' Execute."""
WEB_HEADERS = {"Cache-Control": "no-cache", **FRAME_HEADERS}
"""The web page's files are checked again at each load (an upgraded emulator's script, never a cached
older one, which would call the API as it used to) and are framed by no page."""
REQUESTS_DATABASE = "requests.sqlite3"
LOGS_DATABASE = "logs.sqlite3"
log = logging.getLogger("emulator")


def create_app(settings: Settings) -> FastAPI:
    """Build the app; a package that cannot be served raises here, before the server starts."""
    data_lock = lock_data_dir(settings.data_dir)
    storage = Storage(settings.data_dir)
    store = RequestStore(storage.root / REQUESTS_DATABASE)
    interrupted = store.mark_interrupted()
    if interrupted:
        log.warning("%d request(s) were unfinished when the emulator last stopped; they are now failed", interrupted)
    log_store = LogStore(storage.root / LOGS_DATABASE)
    capture = capture_logs(log_store)
    metrics, instances = Metrics(), InstanceHistory()
    runtime = Runtime(EnvironmentBuilder(settings.environments_dir, settings.own_python),
                      EveryListener(metrics, instances))
    registry = Registry(settings, runtime, Catalog(storage.root))
    registry.metrics = metrics
    metrics.watch_queues(registry, runtime)
    builder = registry.builder = Builder(settings, registry, runtime, storage.root, metrics)
    package_version = PackageVersion(registry, runtime, settings, builder)
    package_version.serve()
    registry.warn_shadowed_variables()
    runner = registry.history = RequestRunner(storage, store, runtime, metrics, registry)
    services = Services(settings, registry, storage, runner, Signer(), runtime, metrics, log_store, instances)
    sweeper = RetentionSweeper(registry, runner, storage.root / REQUESTS_DATABASE, settings.retention_sweep_seconds)
    builder.restore()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        package_version.start()
        builder.start()
        queued = runner.resume()
        if queued:
            log.info("%d batch request(s) no instance had taken when the emulator last stopped are queued again", queued)
        watcher = asyncio.create_task(watch(package_version)) if settings.reload else None
        sweeping = asyncio.create_task(sweeper.run())
        # What start-up made (routes, models, modules) lives as long as the server: out of the garbage
        # collector's sight, its full passes are shorter (~5 % of the server's CPU per trivial request).
        gc.freeze()
        yield
        runner.stopping()
        if watcher:
            watcher.cancel()
        await package_version.close()
        sweeping.cancel()
        await asyncio.gather(sweeping, return_exceptions=True)
        await builder.close()
        await runtime.close()
        await asyncio.to_thread(builder.discard_command_line)
        release_logs(capture)
        log_store.close()
        sweeper.close()
        store.close()
        data_lock.close()

    # `/docs` with Swagger UI's files served from the pinned `fastapi-offline` package, not a CDN: it
    # works on a machine without internet. No `/redoc`: ReDoc's page fetches its logo from the web.
    app = FastAPIOffline(
        # FastAPI's own OpenTelemetry is off: its check for a configured provider ran on every call
        # (the emulator's metrics are Prometheus', `/metrics`).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redoc_url=None,
        title="UbiOps emulator",
        description="UbiOps' API, served locally: deployments, versions, requests, files, logs and variables.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app, API_PREFIXES)
    # Each module's routes straight under each prefix, requests first: FastAPI matches routes in
    # order and walks nested routers on every call (a router of routers cost ~0.2 ms per request).
    for prefix in API_PREFIXES:
        for module in (routes_requests, routes_status, routes_projects, routes_request_history, routes_files,
                       routes_user, routes_deployments, routes_versions, routes_revisions, routes_environments,
                       routes_logs, routes_instances, routes_environment_variables):
            app.include_router(module.router, prefix=prefix, include_in_schema=prefix == API_PREFIXES[0])
    app.include_router(routes_storage.router)
    app.include_router(routes_health.router)
    # The direct request route, the hot path, is served first by plain Starlette routes to the same
    # endpoint: FastAPI's route handling cost ~0.06 ms of a trivial request's ~0.6 ms on the event
    # loop (BENCHMARKS.md). FastAPI's own routes above stay, for the OpenAPI document and `/docs`.
    app.router.routes[:0] = [Route(prefix + path, routes_requests.deployment_requests_create, methods=["POST"])
                             for prefix in API_PREFIXES for path in routes_requests.DIRECT_PATHS]

    @app.get("/", include_in_schema=False)
    async def web_page() -> FileResponse:
        """The web page (README, "The web page"): static files that call the API above."""
        return FileResponse(WEB_PAGE / "index.html", headers=WEB_HEADERS)

    app.mount(WEB_ASSETS, WebFiles(directory=WEB_PAGE), name="web")
    app.add_middleware(FramedByNoPage)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_mb * 1024**2)
    # The web page and its scripts hold no data, so they open without the token; the page sends the
    # token its user types with each API call. Health probes rarely can send one (routes_health).
    app.add_middleware(TokenAuth, token=settings.token, open_prefixes=(routes_storage.PREFIX + "/", WEB_ASSETS + "/"),
                       open_paths=("/", *routes_health.PROBES))
    install_origin_guard(app, settings, signed_prefix=routes_storage.PREFIX + "/")
    app.add_middleware(InternalErrors)  # added last, so it answers for the middleware above too
    return app


class WebFiles(StaticFiles):
    """The web page's scripts and styles, with `WEB_HEADERS`."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(WEB_HEADERS)
        return response


class FramedByNoPage:
    """ASGI middleware: every HTML answer (the web page, `/docs` and its OAuth2 redirect page, Swagger
    UI's own routes) carries FRAME_HEADERS, wherever its route is defined. The API answers JSON: its
    calls pass straight through, as the request path's every other step counts (BENCHMARKS.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.update(FRAME_HEADERS)
            await send(message)

        await self.app(scope, receive, sending)
