"""Management state on disk: the projects, deployments, versions and revisions made through the
management API, kept in `<data-dir>/catalog.json` so they survive a restart, as the request history
(`request_store`) and the uploaded zips (`<data-dir>/revisions/`) do.

The whole document is rewritten on every change (it is small), atomically: a new file is written
beside it and moved over it, so a crash leaves the old document or the new one, never half of one.
The file is created readable by its owner only (`mkstemp`'s 0600), as it holds the environment
variables with their values, secrets included: the instances need them after a restart.
The `--package` version is not saved (it comes from the command line at each start) unless
something was set on it through the API: environment variables, or settings (a retention mode, a
queue size), which are all it is kept for; nor is a deployment that holds only that version and
nothing else. What was running is not saved either: `Builder.restore` starts it again from the
kept zips.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ValidationError, field_validator

from contract.requests import KEEP_ALL, RetentionMode
from contract.revisions import EmulatedStatus
from contract.spec import SpecError, parse_fields
from contract.versions import DEFAULT_INSTANCE_TYPE_GROUP
from emulator.data_files import UnreadableDataFile, unreadable
from emulator.environments import version_environment
from emulator.state import Deployment, Project, Revision, Variable, Version
from emulator.version_settings import Labels, VersionSettings

CATALOG_FILE = "catalog.json"
FORMAT: Literal[1] = 1
FORMER_INSTANCE_TYPE_GROUP = "emulator (this machine)"
"""What the emulator named the group of a version created without one, before it gave UbiOps' default
(no UbiOps group is named so, and `ubiops versions get -o yaml` exported it): a saved version's is read
back as that default."""


class SavedRevision(BaseModel):
    id: str
    version: str
    zip_path: str
    """Relative to the data folder, so the folder can be moved."""
    created: datetime
    status: EmulatedStatus
    error_message: str | None = None
    capabilities: dict[str, bool] = {}
    environment: str | None = None
    """The base environment it was built in; missing from a catalog written before revisions kept it."""
    rebuilt: datetime | None = None
    """When its last rebuild started, if it was rebuilt (`Version.latest_revision`)."""


class SavedVariable(BaseModel):
    id: str
    name: str
    value: str
    secret: bool


class SavedVersion(BaseModel):
    name: str
    id: str
    settings: dict[str, Any]
    """As the API took them, and held to the same rules when read back: a value edited into the file
    by hand would otherwise fail every request of the version."""
    request_retention_mode: RetentionMode
    created: datetime
    last_updated: datetime
    active_revision: str | None = None
    revisions: list[SavedRevision] = []
    variables: list[SavedVariable] = []
    from_command_line: bool = False
    """The `--package` version, kept for its variables and the settings set through the API only
    (`emulator.serving.PackageVersion.serve`)."""

    @field_validator("settings")
    @classmethod
    def _as_the_api_takes_them(cls, settings: dict[str, Any]) -> dict[str, Any]:
        VersionSettings.model_validate(settings)
        return settings


class SavedDeployment(BaseModel):
    name: str
    id: str
    input_fields: list[Any]
    """As the API shows them (`Spec.to_api`), parsed again on load."""
    output_fields: list[Any]
    description: str = ""
    labels: Labels = {}
    default_version: str | None = None
    """May name the `--package` version, which is not saved but re-created at start."""
    created: datetime
    last_updated: datetime
    versions: list[SavedVersion] = []
    variables: list[SavedVariable] = []


class SavedProject(BaseModel):
    name: str
    id: str
    created: datetime
    deployments: list[SavedDeployment] = []
    variables: list[SavedVariable] = []


class CatalogDocument(BaseModel):
    format: Literal[1]
    projects: list[SavedProject]


class Catalog:
    """`<data-dir>/catalog.json`: read at start, rewritten after every change."""

    def __init__(self, data_dir: Path) -> None:
        """Made with the data folder locked: a half-written catalog left by a process killed while it
        wrote (it may hold secrets) is no one's, and goes."""
        self.data_dir = data_dir
        self.path = data_dir / CATALOG_FILE
        for left in data_dir.glob(f".{CATALOG_FILE}.*"):
            left.unlink(missing_ok=True)

    def load(self) -> dict[str, Project]:
        """The saved projects (empty without a catalog); their versions get instances from `Builder.restore`.

        Raises UnreadableDataFile for a file that is not a catalog, so the emulator refuses to start
        rather than start without (and then overwrite) the user's deployments.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(str(exc)) from None
        try:
            document = CatalogDocument.model_validate_json(text)
            return {p.name: _project(p, self.data_dir) for p in document.projects}
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise self._unreadable(f"{where}: {first['msg']}" if where else first["msg"]) from None
        except SpecError as exc:
            raise self._unreadable(str(exc)) from None

    def _unreadable(self, problem: str) -> UnreadableDataFile:
        return UnreadableDataFile(unreadable(self.path, "saved deployments", problem))

    def document(self, projects: Iterable[Project]) -> str:
        """The projects' management state as the catalog's text: a snapshot, to be written later."""
        saved = [s for s in (_saved_project(p, self.data_dir) for p in projects) if s.deployments or s.variables]
        return CatalogDocument(format=FORMAT, projects=saved).model_dump_json(indent=1)

    def write(self, document: str) -> None:
        """Replace the catalog with `document` in one step (blocking: the event loop runs it in a thread)."""
        handle, temporary = tempfile.mkstemp(prefix=f".{CATALOG_FILE}.", dir=self.data_dir)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as sink:
                sink.write(document)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise


def _saved_project(project: Project, data_dir: Path) -> SavedProject:
    return SavedProject(name=project.name, id=project.id, created=project.created, deployments=[
        _saved_deployment(d, data_dir) for d in project.deployments.values() if _is_saved(d)],
        variables=_saved_variables(project.variables))


def _is_saved(deployment: Deployment) -> bool:
    """Every deployment but one that holds only the `--package` version (re-created at each start),
    with nothing set on it through the API, and no environment variables."""
    return (not deployment.versions or bool(deployment.variables)
            or any(_is_saved_version(v) for v in deployment.versions.values()))


def _is_saved_version(version: Version) -> bool:
    """Every version but the `--package` one with nothing set on it through the API (`Version.own_settings`)."""
    return (not version.from_command_line or bool(version.variables) or bool(version.own_settings)
            or version.request_retention_mode != KEEP_ALL)


def _saved_variables(variables: dict[str, Variable]) -> list[SavedVariable]:
    return [SavedVariable(id=v.id, name=v.name, value=v.value, secret=v.secret) for v in variables.values()]


def _variables(saved: list[SavedVariable]) -> dict[str, Variable]:
    return {v.id: Variable(v.name, v.value, v.secret, id=v.id) for v in saved}


def _saved_deployment(deployment: Deployment, data_dir: Path) -> SavedDeployment:
    return SavedDeployment(
        name=deployment.name, id=deployment.id,
        input_fields=deployment.input_spec.to_api(), output_fields=deployment.output_spec.to_api(),
        description=deployment.description, labels=deployment.labels, default_version=deployment.default_version,
        created=deployment.created, last_updated=deployment.last_updated,
        versions=[_saved_version(v, data_dir) for v in deployment.versions.values() if _is_saved_version(v)],
        variables=_saved_variables(deployment.variables),
    )


def _saved_version(version: Version, data_dir: Path) -> SavedVersion:
    return SavedVersion(
        name=version.name, id=version.id, settings=version.own_settings,
        # The state holds only checked values; the document's types say which (and check them on load).
        request_retention_mode=cast(RetentionMode, version.request_retention_mode), created=version.created,
        # The `--package` version is kept for what the API set on it only: its revisions come again from the command line.
        last_updated=version.last_updated, active_revision=None if version.from_command_line else version.active_revision,
        revisions=[SavedRevision(id=r.id, version=r.version, zip_path=os.path.relpath(r.zip_path, data_dir),
                                 created=r.created, status=cast(EmulatedStatus, r.status), error_message=r.error_message,
                                 capabilities=r.capabilities, environment=r.environment, rebuilt=r.rebuilt)
                   for r in version.revisions.values() if not version.from_command_line],
        variables=_saved_variables(version.variables), from_command_line=version.from_command_line,
    )


def _project(saved: SavedProject, data_dir: Path) -> Project:
    project = Project(saved.name, id=saved.id, created=saved.created, variables=_variables(saved.variables))
    for item in saved.deployments:
        where = f"deployment {item.name!r}"
        deployment = Deployment(
            item.name, project.name, parse_fields(item.input_fields, f"{where} input_fields"),
            parse_fields(item.output_fields, f"{where} output_fields"), default_version=item.default_version, id=item.id,
            created=item.created, description=item.description, labels=item.labels, last_updated=item.last_updated,
            variables=_variables(item.variables),
        )
        deployment.versions = {v.name: _version(v, data_dir) for v in item.versions}
        project.deployments[deployment.name] = deployment
    return project


def _version(saved: SavedVersion, data_dir: Path) -> Version:
    settings = saved.settings
    if settings.get("instance_type_group_name") == FORMER_INSTANCE_TYPE_GROUP:
        settings = {**settings, "instance_type_group_name": DEFAULT_INSTANCE_TYPE_GROUP}
    return Version(
        saved.name, None, _variables(saved.variables), id=saved.id, created=saved.created,
        request_retention_mode=saved.request_retention_mode, settings=settings,
        active_revision=saved.active_revision, last_updated=saved.last_updated,
        # A revision saved without its environment ran in its version's, as every revision did then.
        revisions={r.id: Revision(r.version, str(data_dir / r.zip_path), r.environment or version_environment(saved.settings),
                                  id=r.id, created=r.created, status=r.status, error_message=r.error_message,
                                  capabilities=r.capabilities, rebuilt=r.rebuilt)
                   for r in saved.revisions},
        from_command_line=saved.from_command_line,
    )
