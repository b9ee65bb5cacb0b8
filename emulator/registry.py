"""The management backend: the `Registry`, whose methods create, update, rename and delete projects'
deployments, versions, revisions and environment variables (`emulator.state`) under UbiOps' rules, each rule
here once; the API's routes only parse a call, call the registry and render what it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from contract.manifest import instance_variables
from contract.names import (
    NAME_RULE,
    VARIABLE_NAME_RULE,
    is_name,
    is_variable_name,
    variable_value_problem,
    variables_size,
    variables_size_problem,
)
from contract.requests import KEEP_ALL
from contract.revisions import UNFINISHED
from contract.spec import Spec, SpecError, parse_fields, same_fields
from contract.versions import DEFAULT_INSTANCE_TYPE_GROUP, MAXIMUM_IDLE_TIME, MAXIMUM_INSTANCES, MINIMUM_INSTANCES, instance_range_problem
from emulator.environments import (
    OWN_ENVIRONMENT,
    check_environment,
    check_environment_tag,
    version_environment,
)
from emulator.exceptions import AlreadyExists, NotAllowed, NotFound, NotSaved
from emulator.labels import has_labels
from emulator.runtime.pool import AVAILABLE
from emulator.settings import Settings
from emulator.state import (
    Deployment,
    Project,
    Revision,
    Scope,
    Seen,
    Serving,
    Variable,
    Version,
    instance_environment,
    now,
    variables_seen,
)

if TYPE_CHECKING:
    from emulator.builds import Builder
    from emulator.catalog import Catalog
    from emulator.metrics import Metrics
    from emulator.request_runner import RequestRunner
    from emulator.runtime.manager import Runtime

log = logging.getLogger("emulator")

VARIABLES_CHANGED = "its environment variables changed"
RENAMED = "it was renamed, and its instances, their log lines and their context carry its names"
FIELDS_CHANGED = ("its deployment's input or output fields changed, which its instances' context names and the files "
                  "they keep follow")
"""Why a version's instances restart (`Builder.restart`)."""


class Registry:
    """The backend the management routes call: every project, deployment, version and revision, and
    every change to them, made under UbiOps' rules; a change a rule forbids raises an
    `emulator.exceptions` error that names the rule. Each change is saved to the catalog
    (`emulator.catalog`), so management state survives a restart, or is not made (`change`).
    `builder` builds uploaded revisions (`emulator.builds.Builder`, which needs the registry, so it
    is set once both exist);
    the runtime (`emulator.runtime.manager`) stops the instances of what is deleted, `history`
    (`emulator.request_runner.RequestRunner`) forgets its requests and `metrics` its label sets, as it
    does those left under the names a deployment or version takes (`_forget`).
    """

    def __init__(self, settings: Settings, runtime: Runtime, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.projects: dict[str, Project] = catalog.load() if catalog else {}
        self.builder: Builder | None = None
        self.history: RequestRunner | None = None
        """Whose request history follows a deployment or version that is renamed, and goes with one deleted."""
        self.metrics: Metrics | None = None
        """Whose label sets follow a deployment or version that is renamed, and go with one deleted."""
        self._runtime = runtime
        self._catalog = catalog
        self._saving = asyncio.Lock()

    def save(self) -> None:
        """Save the management state now (at start-up, before requests are served)."""
        if self._catalog is not None:
            self._catalog.write(self._catalog.document(self.projects.values()))

    @asynccontextmanager
    async def change(self) -> AsyncIterator[None]:
        """A management call's change, made whole or not at all: the block checks and makes it, one call's
        block at a time, and it is saved before the next; if the block fails, or the catalog cannot be
        written (a full disk), the change is undone (`_undoer`), and a failed write raises NotSaved (507).
        Made and then saved, a change whose write failed stayed live: its caller got a 500, a retry a 409
        ("already exists"), and the next start had lost it."""
        async with self._saving:
            undo = _undoer(self.projects.values())
            try:
                yield
                if self._catalog is not None:
                    await asyncio.to_thread(self._catalog.write, self._catalog.document(self.projects.values()))
            except Exception as exc:
                undo()
                if isinstance(exc, OSError) and self._catalog is not None:
                    raise NotSaved(self._catalog.path, exc) from exc
                raise

    async def changed(self) -> None:
        """Save the state after a change the emulator made itself (a build's progress), as it is now, written
        in a thread, one save after another so the file always ends with the latest. A save that fails is
        logged, not raised: the change has happened, and the next save that can writes it."""
        if self._catalog is None:
            return
        async with self._saving:
            try:
                await asyncio.to_thread(self._catalog.write, self._catalog.document(self.projects.values()))
            except OSError as exc:
                log.warning("the deployments' state could not be saved to %s (%s); the next change saved writes it",
                            self._catalog.path, exc)

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
        """A version by name, or the deployment's default version when `name` is None (NotFound saying
        so when it has none: the caller named no version to be found)."""
        found = self.deployment(project, deployment)
        wanted = name or found.default_version
        if wanted is None:
            raise NotFound(f"Deployment {found.name} has no default version; set one or name a version")
        if wanted not in found.versions:
            raise NotFound("Version not found")
        return found.versions[wanted]

    def versions(self) -> Iterator[tuple[Project, Deployment, Version]]:
        """Every version of every deployment of every project."""
        for project in self.projects.values():
            for deployment in project.deployments.values():
                for version in deployment.versions.values():
                    yield project, deployment, version

    def holds(self, version: Version) -> bool:
        """Whether `version` is still one of the registry's (not deleted, with its deployment or alone)."""
        return any(held is version for _, _, held in self.versions())

    def check_held(self, project: str, deployment: str, version: Version) -> None:
        """NotFound, as for an unknown one, when `version` (found under these names) was deleted since:
        a request whose body arrived meanwhile is answered as if it came after the deletion."""
        if not self.holds(version):
            self.deployment(project, deployment)
            raise NotFound("Version not found")

    def serving(self, version: Version) -> Serving:
        """How `version` is served now: its status (`Version.status`, from its instances'), its instances' error, and
        their capabilities."""
        instances = self._runtime.pool(version)
        return Serving(version.status(instances.status), instances.error, instances.capabilities)

    def not_ready(self) -> list[tuple[Project, Deployment, Version, Serving]]:
        """The versions that cannot take requests now (a build, a failed start, no package), each with how it is
        served: the emulator is ready (`/readyz`) when there are none."""
        return [(project, deployment, version, serving) for project, deployment, version in self.versions()
                if (serving := self.serving(version)).status != AVAILABLE]

    def command_line_version(self) -> tuple[Project, Deployment, Version] | None:
        """The `--package` version, under the names it has now (the API may have renamed it); None once deleted."""
        return next(((p, d, v) for p, d, v in self.versions() if v.from_command_line), None)

    def check_path(self, project: str, deployment: str, version: str | None = None) -> None:
        """NotFound for an unknown project, deployment or, when one is named, version."""
        if version is None:
            self.deployment(project, deployment)
        else:
            self.version(project, deployment, version)

    def revision(self, project: str, deployment: str, version: str, revision_id: str) -> Revision:
        try:
            return self.version(project, deployment, version).revisions[revision_id]
        except KeyError:
            raise NotFound("Revision not found") from None

    def revision_zip(self, project: str, deployment: str, version: str, revision_id: str) -> str:
        """The zip a revision was uploaded as. A revision of the `--package` has none here: the emulator
        serves that package as the command line gives it (a folder is never zipped), so the call names it."""
        revision = self.revision(project, deployment, version, revision_id)
        if revision.from_command_line:
            raise NotFound(f"Revision {revision.id} is the --package {self.settings.package}, served as the command line "
                           "gives it, not uploaded: it has no kept zip to download (`python -m deployer package` zips "
                           "a package folder as UbiOps gets it)")
        return revision.zip_path

    def list_deployments(self, project: str, labels: dict[str, str], supports_request_format: bool | None = None
                         ) -> list[Deployment]:
        """A project's deployments that carry every label given (all of them take requests)."""
        if supports_request_format is False:
            return []
        return [d for d in self.project(project).deployments.values() if has_labels(d.labels, labels)]

    def list_versions(self, project: str, deployment: str, labels: dict[str, str]) -> list[Version]:
        """A deployment's versions that carry every label given."""
        return [v for v in self.deployment(project, deployment).versions.values()
                if has_labels(v.settings.get("labels") or {}, labels)]

    async def create_deployment(
        self,
        project: str,
        name: str,
        *,
        input_type: str | None = None,
        input_fields: list[Any] | None = None,
        output_type: str | None = None,
        output_fields: list[Any] | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        supports_request_format: bool = True,
    ) -> Deployment:
        """A new deployment in an existing project; its fields are set here, as on UbiOps, not by a package."""
        async with self.change():
            found = self.project(project)
            if not supports_request_format:
                raise NotAllowed("supports_request_format: the emulator serves only deployments that take requests")
            _check_new_deployment_name(found, name)
            deployment = Deployment(
                name, project, _fields(input_fields, input_type, "input"), _fields(output_fields, output_type, "output"),
                description=description or "", labels=labels or {},
            )
            await self._forget(project, name)
            found.deployments[name] = deployment
        return deployment

    async def update_deployment(
        self,
        project: str,
        name: str,
        *,
        new_name: str | None = None,
        default_version: str | None = None,
        description: str | None = None,
        input_fields: list[Any] | None = None,
        output_fields: list[Any] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Deployment:
        """Apply the changes given (None: unchanged), all checked before any is made; a new name moves
        the deployment within its project. New fields keep its input and output types (`plain` or
        `structured`), as UbiOps' update takes none."""
        async with self.change():
            found = self.project(project)
            deployments = found.deployments
            deployment = self.deployment(project, name)
            before_input, before_output = deployment.input_spec, deployment.output_spec
            if default_version is not None and default_version != deployment.default_version:
                self._check_default(deployment, default_version)
            if new_name is not None and new_name != deployment.name:
                _check_new_deployment_name(found, new_name)
            # Held to the kind the deployment has (the update takes no type): an empty list made a structured
            # deployment plain, and fields made a plain one structured, where a create of that kind is refused.
            input_spec = (_fields(input_fields, deployment.input_spec.kind, "input") if input_fields is not None
                          else deployment.input_spec)
            output_spec = (_fields(output_fields, deployment.output_spec.kind, "output") if output_fields is not None
                           else deployment.output_spec)
            if new_name is not None and new_name != deployment.name:
                await self._forget(project, new_name)
            deployment.input_spec, deployment.output_spec = input_spec, output_spec
            if default_version is not None:
                deployment.default_version = default_version
            if description is not None:
                deployment.description = description
            if labels is not None:
                deployment.labels = labels
            old_name = deployment.name
            if new_name is not None and new_name != deployment.name:
                deployments[new_name] = deployments.pop(deployment.name)
                deployment.name = new_name
            deployment.last_updated = now()
        # Running instances were started with the old fields: a string output made a file one was not kept, and
        # failed as "no file at" a path that was there.
        fields_changed = not all(same_fields(new.fields, old.fields)  # a widget, which no code sees, restarts nothing
                                 for new, old in ((input_spec, before_input), (output_spec, before_output)))
        if deployment.name != old_name:
            self._renamed(project, old_name, None, deployment.name)
        if deployment.name != old_name or fields_changed:
            for version in deployment.versions.values():
                self._restart(self.project(project), deployment, version,
                              RENAMED if deployment.name != old_name else FIELDS_CHANGED)
        return deployment

    def _check_default(self, deployment: Deployment, name: str) -> None:
        """NotAllowed unless version `name` may be made `deployment`'s default: UbiOps' docs say "Only
        versions that have passed the building stage and are available can be marked default", so one
        without a package, whose build failed or is still running, or whose instances cannot start is
        refused, saying why. (The first version becomes the default as it is created, before any build,
        as on UbiOps; naming the default again is no change, and not checked.)"""
        version = deployment.versions.get(name)
        if version is None:
            raise NotAllowed(f"default_version: deployment {deployment.name!r} has no version {name!r}")
        serving = self.serving(version)
        if serving.status == AVAILABLE:
            return
        building = next((r for r in reversed(version.revisions.values()) if r.status in UNFINISHED), None)
        if building is not None:
            why = (f"it is still building (revision status: {building.status}); wait for its build (`ubiops versions "
                   "wait`, or ubiops.utils.wait_for_deployment_version), then make it the default")
        elif serving.error:
            why = serving.error
        else:
            why = f"its instances are starting (status: {serving.status}); make it the default once it is available"
        raise NotAllowed(f"default_version: only a version that has passed its build and is available can be the "
                         f"default, and version {name!r} of deployment {deployment.name!r} is not: {why}")

    async def create_version(self, project: str, deployment: str, name: str, settings: dict[str, Any]) -> Version:
        """A new version with `settings` (a `DeploymentVersionCreate`'s, UbiOps' defaults for the rest),
        up to `--max-versions`; it has no package, so it is `unavailable` until a revision is built.
        The first version of a deployment (one that has no other) becomes its default, as on UbiOps; a
        deployment whose default was deleted keeps none until one is made the default, as an unbuilt
        version cannot be (`_check_default`)."""
        async with self.change():
            found = self.deployment(project, deployment)
            _check_new_version_name(found, name)
            cap = self.settings.max_versions
            if cap is not None and len(found.versions) >= cap:
                raise NotAllowed(f"Deployment {found.name!r} has reached its maximum of {cap} versions; delete a "
                                 "version first")
            checked, retention = _version_settings(NEW_VERSION_SETTINGS, KEEP_ALL, settings)
            version = Version(name, None, settings=checked, request_retention_mode=retention)
            await self._forget(project, deployment, name)
            if not found.versions:
                found.default_version = name
            found.versions[name] = version
        return version

    async def update_version(self, project: str, deployment: str, name: str, changes: dict[str, Any],
                             new_name: str | None = None) -> Version:
        """Apply setting changes (null: back to a new version's), checked with the settings kept; a new
        name follows into the deployment's default; a new environment builds the version's revision again
        in it (`Builder.rebuild`)."""
        async with self.change():
            found = self.deployment(project, deployment)
            version = self.version(project, deployment, name)
            if new_name is not None and new_name != version.name:
                _check_new_version_name(found, new_name)
            settings, retention = _version_settings(version.settings, version.request_retention_mode, changes)
            environment = version_environment(version.settings)
            moved = version_environment(settings) != environment
            if moved and version.from_command_line:
                raise NotAllowed(f"environment: version {version.name} is the --package, which runs in the base "
                                 f"environment the command line names ({environment}); start the emulator with "
                                 f"--environment {version_environment(settings)}")
            if new_name is not None and new_name != version.name:
                await self._forget(project, deployment, new_name)
            version.settings, version.request_retention_mode = settings, retention
            old_name = version.name
            if new_name is not None and new_name != version.name:
                found.versions[new_name] = found.versions.pop(version.name)
                if found.default_version == version.name:
                    found.default_version = new_name
                version.name = new_name
                for revision in version.revisions.values():  # each names its version, as `revisions_list` answers
                    revision.version = new_name
            version.last_updated = now()
        if version.name != old_name:
            self._renamed(project, deployment, old_name, version.name)
            self._restart(self.project(project), found, version, RENAMED)
        if moved:  # built again in it: the revision serving, and those still building
            for revision in [r for r in version.revisions.values()
                             if r.id == version.active_revision or r.status in UNFINISHED]:
                await self._builder().rebuild(self.project(project), found, version, revision)
        return version

    async def rebuild_revision(self, project: str, deployment: str, version: str, revision_id: str) -> Revision:
        """Build a revision again from its kept zip in the environment its version names now (`Builder.rebuild`)."""
        found, revision = self.version(project, deployment, version), self.revision(project, deployment, version, revision_id)
        if revision.from_command_line:
            raise NotAllowed(f"Revision {revision.id} is the --package {self.settings.package}, read again at each start "
                             "(and, under --reload, at each save): it has no kept zip to build again from")
        await self._builder().rebuild(self.project(project), self.deployment(project, deployment), found, revision)
        return revision

    async def upload_revision(self, project: str, deployment: str, version: str, package_zip: BinaryIO | None,
                              copy_from: str | None = None) -> Revision:
        """A new revision of `version` from an uploaded zip, built in the background by `builder`. Without one,
        the 400 says to deploy again with `--overwrite`: `ubiops deployments deploy` made the version before
        its upload, and a rerun without it is a 409."""
        self.version(project, deployment, version)
        if copy_from:
            raise NotAllowed("Copying a revision from another version or a template is not supported by the emulator; upload a file")
        if package_zip is None:
            raise NotAllowed("file: empty revisions (no code, as for a custom image) are not served by the emulator; "
                             "a deployment package is needed: upload its zip as the multipart part 'file' "
                             "(ubiops deployments deploy again with -dir, and with --overwrite, as the version it "
                             "made stays)")
        return await self._builder().upload(project, deployment, version, package_zip)

    async def delete_deployment(self, project: str, name: str) -> None:
        """Remove a deployment and stop the instances of its versions."""
        async with self.change():
            deployment = self.deployment(project, name)
            del self.projects[project].deployments[name]
        for version in deployment.versions.values():
            await self._stop(version, f"Deployment {name} was deleted before this request finished")
        await self._forget(project, name)

    async def delete_version(self, project: str, deployment: str, name: str) -> None:
        """Remove a version and stop its instances."""
        async with self.change():
            self.version(project, deployment, name)
            version = self.deployment(project, deployment).remove_version(name)
        await self._stop(version, f"Version {name} was deleted before this request finished")
        await self._forget(project, deployment, name)

    async def _forget(self, project: str, deployment: str, version: str | None = None) -> None:
        """Forget the requests and metrics' label sets kept under a deployment's (or, named, a version's) names.
        On UbiOps requests belong to the version, not to its name: one deleted takes its own with it, and one
        that takes a name (made, or renamed to it) starts with none but its own. A name can hold requests of no
        version: the `--package` version's, when a later start serves it under other names (it is not saved,
        so that start cannot tell it existed); they stay in the project's history until they expire or a
        deployment or version takes their names. Before, that one listed them and answered them by id."""
        if self.history is not None:
            await self.history.forget(project, deployment, version)
        if self.metrics is not None:
            self.metrics.forget(project, deployment, version)

    async def _stop(self, version: Version, reason: str) -> None:
        """Stop a deleted version's builds and instances (its requests still queued or running get
        `reason`), then remove its revisions' files."""
        if self.builder is not None:
            await self.builder.cancel(version)
        await self._runtime.stop(version, reason)
        if self.builder is not None:
            await self.builder.discard(version)

    def variables_at(self, scope: Scope) -> list[Seen]:
        """The variables a project, deployment or version sees: its own and those it inherits."""
        project = self.project(scope.project)
        if scope.deployment is None:
            return variables_seen(project)
        deployment = self.deployment(scope.project, scope.deployment)
        version = self.version(scope.project, scope.deployment, scope.version) if scope.version is not None else None
        return variables_seen(project, deployment, version)

    def variable(self, scope: Scope, key: str) -> Variable:
        """A variable set at this level (never one it inherits, as on UbiOps), by id or by name: the CLI's
        `ubiops environment_variables create --overwrite` looks one up by its name."""
        owner = self._owner(scope)
        found = owner.variables.get(key) or next((v for v in owner.variables.values() if v.name == key), None)
        if found is None:
            raise NotFound("Environment variable not found")
        return found

    async def create_variable(self, scope: Scope, name: str, value: str, secret: bool) -> Variable:
        """A new variable at this level; a name set here already is refused (a level below may shadow it)."""
        async with self.change():
            owner = self._owner(scope)
            _check_variable(name, value)
            _refuse_taken(owner, scope, name)
            variable = Variable(name, value, secret)
            with self._undone_if_too_large(scope):
                owner.variables[variable.id] = variable
        self._variables_changed(scope)
        self.warn_if_shadowed(scope, name)
        return variable

    async def update_variable(self, scope: Scope, key: str, name: str | None = None, value: str | None = None,
                              secret: bool | None = None) -> Variable:
        """Apply the changes given (None: unchanged), all checked first. A secret stays a secret: `secret:
        false` on one is ignored and the rest applied, as UbiOps' docs say a variable "can be updated from
        false to true, but not from true to false" and the CLI sends `secret: false` whenever `--secret` is
        left out, so that `ubiops env update ID --value NEW` (or `env create NAME --value NEW --overwrite`)
        rotates a secret."""
        async with self.change():
            owner, variable = self._owner(scope), self.variable(scope, key)
            new_name = variable.name if name is None else name
            _check_variable(new_name, variable.value if value is None else value)
            if new_name != variable.name:
                _refuse_taken(owner, scope, new_name)
            with self._undone_if_too_large(scope):
                variable.name = new_name
                if value is not None:
                    variable.value = value
                variable.secret = variable.secret or bool(secret)
        self._variables_changed(scope)
        self.warn_if_shadowed(scope, variable.name)
        return variable

    async def delete_variable(self, scope: Scope, key: str) -> None:
        async with self.change():
            variable = self.variable(scope, key)
            del self._owner(scope).variables[variable.id]
        self._variables_changed(scope)

    async def copy_variables(self, scope: Scope, source_deployment: str, source_version: str | None) -> list[Variable]:
        """Copy the variables a deployment or version sets itself (not those it inherits) to this level: a
        variable of the same name here takes the copied value (and stays a secret if it was one). The
        copies, as UbiOps answers."""
        async with self.change():
            source = self._owner(Scope(scope.project, source_deployment, source_version))
            target = self._owner(scope)
            copied = []
            with self._undone_if_too_large(scope):
                for original in list(source.variables.values()):
                    copy = next((v for v in target.variables.values() if v.name == original.name), None)
                    if copy is None:
                        copy = Variable(original.name, original.value, original.secret)
                        target.variables[copy.id] = copy
                    else:
                        copy.value, copy.secret = original.value, copy.secret or original.secret
                    copied.append(copy)
        if copied:
            self._variables_changed(scope)
        for copy in copied:
            self.warn_if_shadowed(scope, copy.name)
        return copied

    def warn_if_shadowed(self, scope: Scope, name: str) -> None:
        """Log that a variable set through the API at `scope` is not what instances see, when `--env` (or
        `[tool.deployer]`'s variables and secrets, set as `--env`) sets the same name: those win for every
        version this emulator runs (`instance_environment`), and the API call itself succeeds."""
        if name in self.settings.environment:
            log.warning("%s, set through the API on %s, is not the value its versions see: --env or [tool.deployer] "
                        "(environment_variables, secrets) sets %s for every version this emulator runs, over the "
                        "API's", name, _where(scope), name)

    def warn_shadowed_variables(self) -> None:
        """`warn_if_shadowed` for every variable kept from an earlier run (at start)."""
        for project in self.projects.values():
            levels: list[tuple[Scope, Project | Deployment | Version]] = [(Scope(project.name), project)]
            for deployment in project.deployments.values():
                levels.append((Scope(project.name, deployment.name), deployment))
                levels += [(Scope(project.name, deployment.name, v.name), v) for v in deployment.versions.values()]
            for scope, owner in levels:
                for variable in owner.variables.values():
                    self.warn_if_shadowed(scope, variable.name)

    @contextmanager
    def _undone_if_too_large(self, scope: Scope) -> Iterator[None]:
        """Refuse (NotAllowed), and undo, the change the block makes to `scope`'s own variables when a level
        that sees them (`scope`, a deployment or version under it) would then see too many bytes for a process
        to start with (`contract.names.variables_size_problem`): each value fitting on its own is not enough.
        A version's instances also get its package's `ubiops.yaml` variables and `--env`'s, so they count too;
        a level already past the bound through those alone may still shrink."""
        owner = self._owner(scope)
        before = {key: replace(variable) for key, variable in owner.variables.items()}
        deployments = self.project(scope.project).deployments if scope.deployment is None else {}
        levels = [scope, *(Scope(scope.project, name) for name in deployments),  # what a new version would see
                  *(Scope(scope.project, deployment.name, version.name) for deployment, version in self._versions_under(scope))]
        sizes = {level: variables_size(self._instance_variables(level)) for level in levels}
        yield
        for level in levels:
            seen = self._instance_variables(level)
            if (problem := variables_size_problem(seen)) and variables_size(seen) > sizes[level]:
                owner.variables = before
                raise NotAllowed(f"value: {_where(level)} would see environment variables of {problem}")

    def _instance_variables(self, level: Scope) -> dict[str, str]:
        """What the instances of a version at `level` get (`instance_environment`); at a project or deployment
        level, what a new version there would get before its package comes."""
        if level.deployment is not None and level.version is not None:
            version = self.version(level.project, level.deployment, level.version)
            if version.package is not None:
                return instance_environment(self.project(level.project), self.deployment(level.project, level.deployment),
                                            version, version.package, self.settings)
        return instance_variables({}, {s.variable.name: s.variable.value for s in self.variables_at(level)},
                                  self.settings.environment)

    def _owner(self, scope: Scope) -> Project | Deployment | Version:
        if scope.deployment is None:
            return self.project(scope.project)
        if scope.version is None:
            return self.deployment(scope.project, scope.deployment)
        return self.version(scope.project, scope.deployment, scope.version)

    def _variables_changed(self, scope: Scope) -> None:
        """Restart the instances of every version under the level changed (once saved), as UbiOps restarts
        them: requests already running finish on the old instances, the rest run on new ones that see
        the new variables (`Builder.restart`)."""
        for deployment, version in self._versions_under(scope):
            self._restart(self.project(scope.project), deployment, version, VARIABLES_CHANGED)

    def _versions_under(self, scope: Scope) -> list[tuple[Deployment, Version]]:
        """The versions that see the variables of `scope`'s level."""
        return [(deployment, version) for project, deployment, version in self.versions()
                if project.name == scope.project and scope.deployment in (None, deployment.name)
                and scope.version in (None, version.name)]

    def _renamed(self, project: str, deployment: str, version: str | None, new_name: str) -> None:
        """Carry a renamed deployment's (or, named, version's) request history and metrics to its new name."""
        if self.history is not None:
            self.history.rename(project, deployment, version, new_name)
        if self.metrics is not None:
            self.metrics.rename(project, deployment, version, new_name)

    def _restart(self, project: Project, deployment: Deployment, version: Version, why: str) -> None:
        self._builder().restart(project, deployment, version, why)

    def _builder(self) -> Builder:
        assert self.builder is not None, "the registry's builder is set before requests are served"
        return self.builder


BUILDS_OWN = frozenset({"package", "revisions", "active_revision"})
"""A version's fields that builds and `--reload` saves change, never a management call: left alone by `_undoer`."""


def _undoer(projects: Iterable[Project]) -> Callable[[], None]:
    """A way back to the management state as it is now, for a change that is not made (`Registry.change`):
    every field of each project, deployment, version and variable, and each revision's version name (a
    rename changes it), put back into the same objects, which the runtime, the builds and the request
    history hold; the dicts among them (deployments, versions, variables, settings, labels) with their
    contents. What builds change meanwhile (`BUILDS_OWN`, a revision's status) is left alone."""
    kept: list[tuple[object, str, Any, dict[Any, Any] | None]] = []

    def keep(owner: Any, names: Iterable[str]) -> None:
        for name in names:
            value = getattr(owner, name)
            kept.append((owner, name, value, dict(value) if isinstance(value, dict) else None))

    def keep_all(owner: Project | Deployment | Version | Variable) -> None:
        keep(owner, (f.name for f in fields(owner) if f.name not in BUILDS_OWN))
        if not isinstance(owner, Variable):
            for variable in owner.variables.values():
                keep_all(variable)

    for project in projects:
        keep_all(project)
        for deployment in project.deployments.values():
            keep_all(deployment)
            for version in deployment.versions.values():
                keep_all(version)
                for revision in version.revisions.values():
                    keep(revision, ("version",))

    def undo() -> None:
        for owner, name, value, contents in kept:
            if contents is not None:
                value.clear()
                value.update(contents)
            setattr(owner, name, value)

    return undo


NEW_VERSION_SETTINGS: dict[str, Any] = {
    "request_retention_mode": KEEP_ALL,  # kept apart from the settings, as `Version.request_retention_mode`
    "environment_name": OWN_ENVIRONMENT,
    "instance_type_group_name": DEFAULT_INSTANCE_TYPE_GROUP,
    "minimum_instances": MINIMUM_INSTANCES,
    "maximum_instances": MAXIMUM_INSTANCES,
    "maximum_idle_time": MAXIMUM_IDLE_TIME,
}
"""What a version created through the API has unless its create call says otherwise."""


def _fields(raw: list[Any] | None, declared_type: str | None, direction: str) -> Spec:
    """A deployment's fields from an API body; `plain` takes none, `structured` at least one."""
    try:
        spec = parse_fields(raw, f"{direction}_fields")
    except SpecError as exc:
        raise NotAllowed(str(exc)) from None
    if declared_type == "plain" and spec.fields:
        raise NotAllowed(f"{direction}_fields must be empty when {direction}_type is plain")
    if declared_type == "structured" and not spec.fields:
        raise NotAllowed(f"{direction}_fields must list at least one field when {direction}_type is structured")
    return spec


def _version_settings(current: dict[str, Any], retention: str, given: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The settings and retention mode a version has with `given` applied, checked against each other.
    A setting given as null is put back to what a new version has (none, or its default): else a
    `maximum_queue_size` once set could never be lifted again."""
    given = dict(given)
    environment = given.pop("environment", None) or given.get("environment_name")
    if environment is not None:
        check_environment(environment)
        given["environment_name"] = environment
    if given.get("environment_tag") is not None:
        check_environment_tag(given["environment_tag"])
    settings = dict(current)
    for key, value in given.items():
        if value is not None:
            settings[key] = value
        elif key in NEW_VERSION_SETTINGS:
            settings[key] = NEW_VERSION_SETTINGS[key]
        else:
            settings.pop(key, None)
    minimum = settings.get("minimum_instances", MINIMUM_INSTANCES)
    maximum = settings.get("maximum_instances", MAXIMUM_INSTANCES)
    if problem := instance_range_problem(minimum, maximum):
        raise NotAllowed(problem)
    retention = settings.pop("request_retention_mode", retention)
    return settings, retention


def _check_name(field: str, name: str) -> None:
    """NotAllowed unless `name` is a UbiOps name (`contract.names`), for a deployment or a version: a name
    goes into the API's paths, the metrics' labels and the logs. (The API's bodies declare the rule too, for
    the OpenAPI document, so a call breaking it is refused there first, with its other fields.)"""
    if not is_name(name):
        raise NotAllowed(f"{field}: {name!r} is not a UbiOps name: {NAME_RULE}")


def _check_variable(name: str, value: str) -> None:
    if not is_variable_name(name):
        raise NotAllowed(f"name: {name!r} is not an environment variable name: use {VARIABLE_NAME_RULE}")
    problem = variable_value_problem(value)
    if problem:
        raise NotAllowed(f"value: the value of {name} {problem}")


def _refuse_taken(owner: Project | Deployment | Version, scope: Scope, name: str) -> None:
    if any(v.name == name for v in owner.variables.values()):
        raise AlreadyExists(f"An environment variable named {name!r} already exists for {_where(scope)}")


def _where(scope: Scope) -> str:
    return (f"version {scope.version} of deployment {scope.deployment}" if scope.version is not None else
            f"deployment {scope.deployment}" if scope.deployment is not None else f"project {scope.project}")


def _check_new_deployment_name(project: Project, name: str) -> None:
    """The name a deployment takes (made, or renamed to it): NotAllowed unless a UbiOps name, AlreadyExists when
    `project` has a deployment of that name."""
    _check_name("name", name)
    if name in project.deployments:
        raise AlreadyExists(f"A deployment named {name!r} already exists in project {project.name!r}")


def _check_new_version_name(deployment: Deployment, name: str) -> None:
    """The name a version takes (made, or renamed to it): NotAllowed unless a UbiOps name, AlreadyExists when
    `deployment` has a version of that name."""
    _check_name("version", name)
    if name in deployment.versions:
        raise AlreadyExists(f"A version named {name!r} already exists for deployment {deployment.name!r}")

