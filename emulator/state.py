"""What the emulator serves: projects, deployments, versions and revisions, and their environment
variables, as UbiOps' hierarchy holds them, so the SDK's list/get calls find the same names they will
find on UbiOps. `emulator.registry.Registry` changes them, under UbiOps' rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contract.manifest import instance_variables
from contract.package import Package
from contract.requests import KEEP_ALL, RETENTION_TIME
from contract.revisions import BUILDING, FAILED, MAX_ERROR_LENGTH, QUEUED, UNFINISHED
from contract.spec import Spec
from emulator.settings import Settings

if TYPE_CHECKING:
    from emulator.runtime.protocol import Capabilities

EMULATOR_USER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "ubiops-emulator"))
"""The user every request is made by: the emulator has one user, the developer running it."""


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Variable:
    """An environment variable set through the API on a project, a deployment or a version. A secret's
    value is kept (the instances need it) but never shown: it is left out of `repr`, so no log or
    error message can carry it, and the API answers it as null."""

    name: str
    value: str = field(repr=False)
    secret: bool = False
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class Scope:
    """Where variables are set: a project, one of its deployments, or one of that deployment's versions."""

    project: str
    deployment: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Seen:
    """A variable as a level sees it: its own (`inheritance_type` None), or inherited from the
    `project` or `deployment` level named `inheritance_name`, as UbiOps lists them."""

    variable: Variable
    inheritance_type: str | None = None
    inheritance_name: str | None = None


@dataclass
class Revision:
    """One package of a version and its build (`queued` → `building` → `deploying` → `success`/`failed`): uploaded,
    or read from the command line's `--package` (`emulator.serving.PackageVersion`)."""

    version: str
    zip_path: str
    """The kept zip of an uploaded package; empty for the `--package`'s, which is the developer's own
    folder or zip, never kept, downloaded or deleted here."""
    environment: str
    """The base environment it is built in, as its version named it then; its instances always run in it."""
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    status: str = QUEUED
    error_message: str | None = None
    capabilities: dict[str, bool] = field(default_factory=dict)
    from_command_line: bool = False
    """Read from the `--package` (at start, or at a `--reload` save), not uploaded through the API."""
    rebuilt: datetime | None = None
    """When its last rebuild started (`Builder.rebuild`), if it was rebuilt: `Version.latest_revision`."""

    def fail(self, reason: str) -> None:
        """End the build as failed, its reason cut to what the SDK reads."""
        self.status, self.error_message = FAILED, reason[:MAX_ERROR_LENGTH]


@dataclass
class Version:
    name: str
    package: Package | None
    variables: dict[str, Variable] = field(default_factory=dict)
    """The version's own environment variables, by id."""
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    request_retention_mode: str = KEEP_ALL
    settings: dict[str, Any] = field(default_factory=dict)
    """The other `DeploymentVersionCreate` settings, as given (echoed by the API)."""
    revisions: dict[str, Revision] = field(default_factory=dict)
    active_revision: str | None = None
    last_updated: datetime = field(default_factory=now)
    from_command_line: bool = False
    """The `--package` version: re-created from the command line at each start; saved only for what
    was set on it through the API, its variables and settings (`emulator.catalog`)."""
    command_line_settings: dict[str, Any] = field(default_factory=dict)
    """The settings the command line gave the `--package` version at this start (`--environment`,
    `--instances`); the next start gives them again, so they are not saved as its own."""

    def status(self, instances: str) -> str:
        """`building` while a revision builds, otherwise `instances`, the status of its instances
        (`emulator.runtime`)."""
        if any(r.status in UNFINISHED for r in self.revisions.values()):
            return BUILDING
        return instances

    @property
    def own_settings(self) -> dict[str, Any]:
        """The settings to save: all of them, but, for the `--package` version, those the command line
        gave it, unless the API changed them since (`command_line_settings`)."""
        given = self.command_line_settings
        return {key: value for key, value in self.settings.items() if key not in given or given[key] != value}

    @property
    def request_retention_time(self) -> int:
        """Seconds its requests are kept, from their creation."""
        return self.settings.get("request_retention_time", RETENTION_TIME)

    @property
    def latest_revision(self) -> Revision | None:
        """The revision whose build started last: the newest one, or one rebuilt since it was made (a new
        environment rebuilds the active revision). The SDK's and the CLI's waits for a version follow it: after
        a failed upload, a new environment's wait ended at once with that upload's error while the active
        revision's rebuild ran."""
        return max(reversed(self.revisions.values()), key=lambda r: r.rebuilt or r.created, default=None)

    @property
    def newest_revision(self) -> Revision | None:
        """The revision made last (its `created`: the version's `last_file_upload`)."""
        return next(reversed(self.revisions.values()), None)

    @property
    def unserved_reason(self) -> str:
        """Why no instances serve it (a version with an active revision always has instances, or a reason
        of its own when they could not be restarted): its first build is still running, its last build
        failed (say so, not that no package came: one did), or no package came yet."""
        active, latest = self.revisions.get(self.active_revision or ""), self.latest_revision
        if latest is not None and latest.status in UNFINISHED:
            return (f"Version {self.name} is not built yet: its build is still running (revision status: "
                    f"{latest.status}); wait for it (`ubiops versions wait`, or ubiops.utils.wait_for_deployment_version)")
        failed = next((r for r in (active, latest) if r is not None and r.status == FAILED), None)
        if failed is not None:
            return f"Version {self.name}'s build failed: {failed.error_message}; upload a corrected package"
        return f"Version {self.name} has no deployment package yet: upload one and wait for its build"


@dataclass(frozen=True)
class Serving:
    """How a version is served now, as the API shows it (`Registry.serving`)."""

    status: str
    """`building` while a revision builds, otherwise its instances' status (`emulator.runtime.pool`)."""
    error: str | None
    """What its instances answer requests with when they cannot run them (None while they can)."""
    capabilities: Capabilities
    """Whether its code has `request` and `requests` methods, once an instance has started."""


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
    variables: dict[str, Variable] = field(default_factory=dict)

    def remove_version(self, name: str) -> Version:
        """Take a version out; a removed default leaves the deployment without one, as on UbiOps (never
        naming a version that no longer exists)."""
        version = self.versions.pop(name)
        if self.default_version == name:
            self.default_version = None
        return version


@dataclass
class Project:
    name: str
    deployments: dict[str, Deployment] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    created: datetime = field(default_factory=now)
    variables: dict[str, Variable] = field(default_factory=dict)


def variables_seen(project: Project, deployment: Deployment | None = None, version: Version | None = None) -> list[Seen]:
    """The variables the most specific level given sees, in UbiOps' order (version over deployment over
    project): its own first, then those of each level above that no level below sets."""
    levels: list[tuple[Project | Deployment | Version, str, str]] = [
        (owner, kind, owner.name) for owner, kind in ((version, "version"), (deployment, "deployment"), (project, "project"))
        if owner is not None]
    seen: dict[str, Seen] = {}
    for depth, (owner, kind, name) in enumerate(levels):
        for variable in owner.variables.values():
            if variable.name not in seen:
                seen[variable.name] = Seen(variable) if depth == 0 else Seen(variable, kind, name)
    return list(seen.values())


def instance_environment(project: Project, deployment: Deployment, version: Version, package: Package,
                         settings: Settings) -> dict[str, str]:
    """The variables a version's instances get, in `os.environ` and `context["environment_variables"]`,
    each overriding the ones before: `ubiops.yaml`'s (built into the package's environment), the
    project's, the deployment's and the version's own (as UbiOps orders them), then `--env`, the
    developer's own overrides for every version this emulator runs (`contract.manifest.instance_variables`)."""
    return instance_variables(package.manifest.environment_variables,
                              {seen.variable.name: seen.variable.value for seen in variables_seen(project, deployment, version)},
                              settings.environment)


def instance_secrets(project: Project, deployment: Deployment, version: Version, settings: Settings) -> tuple[str, ...]:
    """The values of the secrets among what a version's instances get (`instance_environment`): the API's
    secrets they see, but for one `--env` overrides, and `[tool.deployer]`'s (`Settings.secret_names`)."""
    api = (seen.variable.value for seen in variables_seen(project, deployment, version)
           if seen.variable.secret and seen.variable.name not in settings.environment)
    return (*api, *(settings.environment[name] for name in settings.secret_names))
