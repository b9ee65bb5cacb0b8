"""What the emulator serves: projects, deployments and versions (state only; `api.schemas` shapes it).

Mirrors UbiOps' hierarchy so the SDK's list/get calls find the same names they will find on UbiOps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

from contract.package import Package
from contract.spec import Spec

if TYPE_CHECKING:
    from emulator.runtime.manager import Runtime


EMULATOR_USER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "ubiops-emulator"))
"""The user every request is made by: the emulator has one user, the developer running it."""


class NotFound(LookupError):
    """An unknown project, deployment, version or revision; the message is UbiOps' (`Deployment not found`)."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


QUEUED, BUILDING, SUCCESS, FAILED = "queued", "building", "success", "failed"


@dataclass
class Revision:
    """One uploaded package of a version and its build (`queued` → `building` → `success`/`failed`)."""

    version: str
    zip_path: str
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    status: str = QUEUED
    error_message: str | None = None
    capabilities: dict[str, bool] = field(default_factory=dict)


@dataclass
class Version:
    name: str
    package: Package | None
    environment: dict[str, str]
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    request_retention_mode: str = "full"
    settings: dict[str, Any] = field(default_factory=dict)
    """The other `DeploymentVersionCreate` settings, as given (echoed by the API)."""
    revisions: dict[str, Revision] = field(default_factory=dict)
    active_revision: str | None = None
    last_updated: datetime = field(default_factory=now)
    from_command_line: bool = False
    """The `--package` version: re-created from the command line at each start, never saved."""

    def status(self, instances: str) -> str:
        """`building` while a revision builds, otherwise `instances`, the status of its instances
        (`emulator.runtime`)."""
        if any(r.status in (QUEUED, BUILDING) for r in self.revisions.values()):
            return BUILDING
        return instances

    @property
    def latest_revision(self) -> Revision | None:
        return next(reversed(self.revisions.values()), None)


@dataclass
class Deployment:
    name: str
    project: str
    input_spec: Spec
    output_spec: Spec
    default_version: str | None = None
    versions: dict[str, Version] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    last_updated: datetime = field(default_factory=now)


@dataclass
class Project:
    name: str
    deployments: dict[str, Deployment] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)


Saver = Callable[[Iterable[Project]], None]


class Registry:
    """Every project, deployment, version and revision; each method that changes them saves them
    (`emulator.catalog`), so management state survives a restart."""

    def __init__(self, projects: dict[str, Project] | None = None, save: Saver | None = None, *, runtime: Runtime) -> None:
        self.projects: dict[str, Project] = projects or {}
        self._save = save
        self._runtime = runtime

    def changed(self) -> None:
        """Save the management state after a change (nothing to do without a catalog)."""
        if self._save is not None:
            self._save(self.projects.values())

    def project(self, name: str) -> Project:
        try:
            return self.projects[name]
        except KeyError:
            raise NotFound("Project not found") from None

    def deployment(self, project: str, name: str) -> Deployment:
        try:
            return self.project(project).deployments[name]
        except KeyError:
            raise NotFound("Deployment not found") from None

    def version(self, project: str, deployment: str, name: str | None = None) -> Version:
        """A version by name, or the deployment's default version when `name` is None."""
        found = self.deployment(project, deployment)
        try:
            return found.versions[name or found.default_version]
        except KeyError:
            raise NotFound("Version not found") from None

    def revision(self, project: str, deployment: str, version: str, revision_id: str) -> Revision:
        try:
            return self.version(project, deployment, version).revisions[revision_id]
        except KeyError:
            raise NotFound("Revision not found") from None

    def add_deployment(self, deployment: Deployment) -> None:
        """Register a new deployment in its (existing) project; the caller checked its name is free."""
        self.project(deployment.project).deployments[deployment.name] = deployment
        self.changed()

    def update_deployment(
        self,
        deployment: Deployment,
        *,
        name: str | None = None,
        input_spec: Spec | None = None,
        output_spec: Spec | None = None,
        default_version: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Apply the changes given (None: unchanged), already checked by the caller; a new name moves
        the deployment within its project."""
        if input_spec is not None:
            deployment.input_spec = input_spec
        if output_spec is not None:
            deployment.output_spec = output_spec
        if default_version is not None:
            deployment.default_version = default_version
        if description is not None:
            deployment.description = description
        if labels is not None:
            deployment.labels = labels
        if name is not None and name != deployment.name:
            deployments = self.project(deployment.project).deployments
            deployments[name] = deployments.pop(deployment.name)
            deployment.name = name
        deployment.last_updated = now()
        self.changed()

    def add_version(self, deployment: Deployment, version: Version) -> None:
        """Register a new version; the first one becomes the deployment's default, as on UbiOps."""
        deployment.versions[version.name] = version
        if deployment.default_version is None:
            deployment.default_version = version.name
        self.changed()

    def update_version(
        self, deployment: Deployment, version: Version, settings: dict[str, Any], request_retention_mode: str,
        name: str | None = None,
    ) -> None:
        """Store checked settings; a new name (free, as the caller checked) follows into the default."""
        version.settings, version.request_retention_mode = settings, request_retention_mode
        if name is not None and name != version.name:
            deployment.versions[name] = deployment.versions.pop(version.name)
            if deployment.default_version == version.name:
                deployment.default_version = name
            version.name = name
        version.last_updated = now()
        self.changed()

    async def delete_deployment(self, project: str, name: str) -> None:
        """Remove a deployment and stop the instances of its versions."""
        deployment = self.deployment(project, name)
        del self.projects[project].deployments[name]
        self.changed()
        for version in deployment.versions.values():
            await self._runtime.stop(version, f"Deployment {name} was deleted before this request finished")

    async def delete_version(self, project: str, deployment: str, name: str) -> None:
        """Remove a version and stop its instances; a deleted default leaves the deployment without one."""
        found = self.deployment(project, deployment)
        version = self.version(project, deployment, name)
        del found.versions[name]
        if found.default_version == name:
            found.default_version = None
        self.changed()
        await self._runtime.stop(version, f"Version {name} was deleted before this request finished")
