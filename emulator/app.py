"""The FastAPI application: UbiOps' API under `/v2` and `/v2.1`, serving one package."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import APIRouter, FastAPI

from contract.package import Package
from emulator.api import routes_projects, routes_requests, routes_status, routes_storage
from emulator.api.auth import TokenAuth
from emulator.api.errors import install_error_handlers
from emulator.request_runner import RequestRunner
from emulator.runtime.instance import Launch
from emulator.runtime.loader import deployment_file_name
from emulator.runtime.package import open_package
from emulator.runtime.pool import InstancePool
from emulator.services import Services
from emulator.settings import Settings
from emulator.signing import Signer
from emulator.state import Deployment, Project, Registry, Version, new_id
from emulator.storage import DEFAULT_BUCKET, Storage

API_PREFIXES = ("/v2.1", "/v2")


def create_app(settings: Settings) -> FastAPI:
    """Build the app; a package that cannot be served raises here, before the server starts."""
    storage = Storage(settings.data_dir)
    package = open_package(settings.package, storage.root / "packages")
    registry = Registry()
    registry.projects[settings.project] = _serve(settings, package)
    services = Services(settings, registry, storage, RequestRunner(storage), Signer())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for project in registry.projects.values():
            for deployment in project.deployments.values():
                for version in deployment.versions.values():
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


def _serve(settings: Settings, package: Package) -> Project:
    """The project, deployment and version under which the package is served."""
    project = Project(settings.project)
    deployment = Deployment(settings.deployment, project.name, package.input_spec, package.output_spec)
    user_environment = {**package.manifest.environment_variables, **settings.environment}
    version_name, version_id = settings.version, new_id()
    launch = Launch(
        name=f"{deployment.name}/{version_name}",
        package_dir=package.directory,
        deployment_file=deployment_file_name(user_environment),
        environment={"SYS_DEFAULT_BUCKET": DEFAULT_BUCKET, **user_environment},
        init_context={
            "project": project.name,
            "project_id": project.id,
            "deployment": deployment.name,
            "deployment_id": deployment.id,
            "version": version_name,
            "version_id": version_id,
            "input_type": package.input_spec.kind,
            "output_type": package.output_spec.kind,
            "input_fields": package.input_spec.names,
            "output_fields": package.output_spec.names,
            "language": "python",
            "environment_variables": user_environment,
        },
        output_file_fields={f.name: f.data_type for f in package.output_spec.fields if f.is_file},
    )
    version = Version(version_name, package, InstancePool(launch, settings.instances), user_environment, id=version_id)
    deployment.versions[version.name] = version
    deployment.default_version = version.name
    project.deployments[deployment.name] = deployment
    return project
