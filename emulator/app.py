"""The FastAPI application: UbiOps' API under `/v2` and `/v2.1`, serving one package."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import APIRouter, FastAPI

from emulator.api import routes_projects, routes_requests, routes_status, routes_storage
from emulator.api.auth import TokenAuth
from emulator.api.errors import install_error_handlers
from emulator.request_runner import RequestRunner
from emulator.runtime.package import open_package
from emulator.services import Services
from emulator.settings import Settings
from emulator.signing import Signer
from emulator.serving import serve_package
from emulator.state import Registry
from emulator.storage import Storage

API_PREFIXES = ("/v2.1", "/v2")


def create_app(settings: Settings) -> FastAPI:
    """Build the app; a package that cannot be served raises here, before the server starts."""
    storage = Storage(settings.data_dir)
    package = open_package(settings.package, storage.root / "packages")
    registry = Registry()
    serve_package(registry, settings, package)
    services = Services(settings, registry, storage, RequestRunner(storage), Signer())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for version in registry.versions():
            version.pool.start()
        yield
        await registry.close()

    app = FastAPI(
        title="UbiOps emulator",
        description="UbiOps' request API, served locally from a deployment package.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    api = APIRouter()
    for module in (routes_status, routes_projects, routes_requests):
        api.include_router(module.router)
    for prefix in API_PREFIXES:
        app.include_router(api, prefix=prefix, include_in_schema=prefix == API_PREFIXES[0])
    app.include_router(routes_storage.router)
    app.add_middleware(TokenAuth, token=settings.token, open_prefixes=(routes_storage.PREFIX + "/",))
    return app

