"""What the emulator serves: projects, deployments and versions (state only; `api.schemas` shapes it).

Mirrors UbiOps' hierarchy so the SDK's list/get calls find the same names they will find on UbiOps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from contract.package import Package
from contract.spec import Spec
from emulator.runtime.pool import InstancePool


EMULATOR_USER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "ubiops-emulator"))
"""The user every request is made by: the emulator has one user, the developer running it."""


class NotFound(LookupError):
    """An unknown project, deployment or version; the message is UbiOps' (`Deployment not found`)."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Version:
    name: str
    package: Package
    pool: InstancePool
    environment: dict[str, str]
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    request_retention_mode: str = "full"

    @property
    def status(self) -> str:
        return self.pool.status


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


@dataclass
class Project:
    name: str
    deployments: dict[str, Deployment] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)


class Registry:
    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}

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

    def versions(self) -> list[Version]:
        """Every version of every deployment."""
        return [v for p in self.projects.values() for d in p.deployments.values() for v in d.versions.values()]

    async def close(self) -> None:
        for version in self.versions():
            await version.pool.close()
