"""Putting the `--package` into service: a folder or a zip, registered under its project,
deployment and version, each reading of it a revision (`PackageVersion`) with its own copy of the
package (`PackageVersion.read`), its instances (`emulator.version_instances`) put in service by
`emulator.runtime.manager.Runtime.replace`."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from contract.archive import ALWAYS_LEFT_OUT_SUFFIXES, FILES_AT_ROOT, files_at_root, is_left_out_folder, package_files
from contract.package import Package
from contract.revisions import BUILDING, DEPLOYING, SUCCESS, UNFINISHED
from contract.spec import same_fields
from emulator.builds import Builder, describe_fields
from emulator.environments import version_environment
from emulator.registry import Registry
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import AVAILABLE, UNAVAILABLE, InstancePool, NoInstances
from emulator.settings import Settings
from emulator.state import (
    Deployment,
    Project,
    Revision,
    Version,
    new_id,
    now,
)
from emulator.version_instances import new_pool

log = logging.getLogger("emulator")


class PackageError(ValueError):
    """A `--package` the emulator cannot serve; the message says what to fix."""


def note_left_out(folder: Path) -> None:
    """Log what a served package folder's zip would leave out (`make serve` and `--reload` serve the
    folder, UbiOps gets the zip, and `deployer check` tests the zip)."""
    left_out = left_out_of_zip(folder)
    if left_out:
        log.info("served from the folder, with what its zip leaves out and UbiOps will not have: %s",
                 ", ".join(left_out[:10]) + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""))


def left_out_of_zip(folder: Path) -> list[str]:
    """The top-level names under a package folder that hold files its zip leaves out (`.ubiops-ignore`,
    `.env` files, links to folders, which the zip's walk does not follow), a folder's with a `/`; the
    caches and virtual environments the folder's copy leaves out too are not counted."""
    folder = folder.resolve()
    shipped = set(package_files(folder))
    names: set[str] = set()
    for parent, directories, files in os.walk(folder):
        here = Path(parent).relative_to(folder)
        directories[:] = [d for d in directories if not is_left_out_folder(Path(parent, d))]
        links = [d for d in directories if Path(parent, d).is_symlink()]
        names.update(_top(here, name, is_folder=True) for name in links)
        names.update(_top(here, name, is_folder=False) for name in files
                     if not name.endswith(ALWAYS_LEFT_OUT_SUFFIXES) and (here / name).as_posix() not in shipped)
    return sorted(names)


def _top(here: Path, name: str, is_folder: bool) -> str:
    """The top-level name `here / name` lies under, as `left_out_of_zip` lists it."""
    return here.parts[0] + "/" if here.parts else name + ("/" if is_folder else "")


class PackageVersion:
    """The `--package` version: each reading of the package, at start (`serve`) and at each `--reload`
    save (`revise`), is a new revision of it, put in service at once (requests wait for its instances,
    as for a first build). The revision's status follows its instances' start as a build's does:
    `building` (the environment), `deploying` (`__init__`), then `success`, or `failed` with the reason
    (which its requests get too), so the SDK's and the CLI's waits for a version work on it. A reading
    that fails (`refuse`) is a failed revision, and the version unavailable with the reason. Each
    revision runs in its own copy of the package (`read`), never in the developer's folder."""

    def __init__(self, registry: Registry, runtime: Runtime, settings: Settings, builder: Builder) -> None:
        self.registry = registry
        self.runtime = runtime
        self.settings = settings
        self.builder = builder
        self._following: set[asyncio.Task[None]] = set()
        self._started = False

    def read(self, revision_id: str) -> Package:
        """The `--package` as it is now, copied for the revision `revision_id` (`Builder.copy_package`).
        PackageError, ArchiveError, SpecError or ManifestError for one that cannot be served."""
        source = self.settings.package
        if not (source.is_file() or source.is_dir()):
            raise PackageError(f"no package at {source}: give a package folder or a .zip")
        package = self.builder.copy_package(revision_id, source)
        if source.is_dir():
            note_left_out(source)
        elif files_at_root(source):
            log.warning("%s: %s", source.name, FILES_AT_ROOT)
        return package

    def serve(self) -> Version:
        """Read the package and register it under the configured names, served by its instances (at start).

        The command line wins over saved state (`emulator.catalog`): a saved deployment of the same
        name takes the package's fields and keeps its other versions; a saved version of the same name
        is replaced, but its environment variables are kept, and, when it was the `--package` version
        of an earlier start, the settings set on it through the API too (`request_retention_mode`,
        `maximum_queue_size`, …), but those the command line gives (`--environment`, `--instances`),
        which win, with a warning when they differ. The package's version is the default unless the
        saved default still exists. The `--package` version of an earlier start, under other names, is
        forgotten (it is kept only for what the API set on it), and so is its deployment's default: a
        default always names a version that exists, or none.
        """
        registry, settings = self.registry, self.settings
        revision_id = new_id()
        package = self.read(revision_id)
        project = registry.projects.setdefault(settings.project, Project(settings.project))
        deployment = project.deployments.get(settings.deployment)
        if deployment is None:
            deployment = Deployment(settings.deployment, project.name, package.input_spec, package.output_spec)
            project.deployments[deployment.name] = deployment
        kept = deployment.versions.get(settings.version)
        if kept is not None and not kept.from_command_line:
            log.warning("the saved version %s/%s is replaced by --package %s", deployment.name, settings.version,
                        settings.package)
        _forget_earlier_package_versions(registry, deployment, kept)
        version = Version(settings.version, package, kept.variables if kept else {}, from_command_line=True)
        if kept is not None and kept.from_command_line:  # what the API set on it: kept, as its variables are
            version.settings, version.request_retention_mode = dict(kept.settings), kept.request_retention_mode
        given = {"environment_name": settings.base_environment, "minimum_instances": settings.instances,
                 "maximum_instances": settings.instances}
        _warn_of_overridden_settings(deployment, version, given)
        version.settings.update(given)
        version.command_line_settings = given
        self.revise(project, deployment, version, package, revision_id)
        deployment.versions[version.name] = version
        for saved in (d for p in registry.projects.values() for d in p.deployments.values()):
            if saved.default_version not in saved.versions:  # the `--package` version of an earlier start, say
                saved.default_version = version.name if saved is deployment else None
        return version

    def revise(self, project: Project, deployment: Deployment, version: Version, package: Package,
               revision_id: str) -> None:
        """Serve `package`, as just read (`read(revision_id)`), as a new revision of `version`; the
        previous instances finish their running requests first."""
        replaced, revision = self._new_revision(version, revision_id)
        _warn_of_changed_fields(deployment, version, package)
        deployment.input_spec, deployment.output_spec = package.input_spec, package.output_spec
        version.package = package
        self.runtime.replace(version, new_pool(project, deployment, version, package, self.settings, self.runtime,
                                               revision))
        self._discard(version, replaced)
        if self._started:
            self._follow(version, revision)

    def refuse(self, deployment: Deployment, version: Version, problem: str, revision_id: str) -> None:
        """A reading of the package that failed (`problem`): a failed revision, and the version
        unavailable with the reason on its requests until a reading succeeds; its old code is not
        served meanwhile, nor restarted by a change of its variables (it has no package)."""
        replaced, revision = self._new_revision(version, revision_id)
        revision.fail(problem)
        self._timed(revision)
        version.package = None
        self.runtime.replace(version, NoInstances(
            f"{deployment.name}/{version.name} is unavailable: its package is not valid ({problem}); the next good "
            "save serves it"))
        self._discard(version, replaced)

    def start(self) -> None:
        """Follow the start of the revision served at start, now that the event loop runs (after `Runtime.start`)."""
        self._started = True
        served = self.registry.command_line_version()
        if served is not None:
            version = served[2]
            for revision in version.revisions.values():
                if revision.status in UNFINISHED:
                    self._follow(version, revision)

    async def close(self) -> None:
        """Stop following starts (the emulator stops)."""
        for task in self._following:
            task.cancel()
        await asyncio.gather(*self._following, return_exceptions=True)

    def _new_revision(self, version: Version, revision_id: str) -> tuple[Revision | None, Revision]:
        """The revision the version served until now (if any), and the new one, now its active one."""
        replaced = version.revisions.get(version.active_revision or "")
        revision = Revision(version.name, "", version_environment(version.settings), id=revision_id, status=BUILDING,
                            from_command_line=True)
        version.revisions[revision.id] = revision
        version.active_revision, version.last_updated = revision.id, now()
        return replaced, revision

    def _discard(self, version: Version, replaced: Revision | None) -> None:
        """Remove the copy of the revision just `replaced`, once its instances have stopped."""
        if replaced is not None:
            self.builder.discard_when_drained(version, replaced.id)

    def _follow(self, version: Version, revision: Revision) -> None:
        task = asyncio.create_task(self._settle(version, revision))
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _settle(self, version: Version, revision: Revision) -> None:
        """Give `revision` the status of its instances' start. New instances of it (its variables or
        names changed meanwhile) are followed in turn; if it stops being served first (a newer save,
        an upload, the version deleted), it fails saying so."""
        while True:
            replaced = _replaced(self.registry, version, revision)
            if replaced:
                revision.fail(f"{replaced} before its instances started")
                self._timed(revision)
                return
            pool = self.runtime.pool(version)
            assert isinstance(pool, InstancePool), "a served revision's instances are a pool until it is replaced"
            await pool.environment_built()
            if pool.status != UNAVAILABLE:
                revision.status = DEPLOYING
            await pool.started()  # or closed: replaced meanwhile, or the emulator stopping
            if self.runtime.pool(version) is pool:
                break
        if pool.status == AVAILABLE:
            revision.capabilities, revision.status = asdict(pool.capabilities), SUCCESS
        else:
            revision.fail(pool.failure or "the emulator stopped before it started")
        self._timed(revision)

    def _timed(self, revision: Revision) -> None:
        """Count the ended revision in `build_duration_seconds`, as an upload's build is: from its reading
        to its instances' start (none of the `--package`'s and `--reload`'s builds was counted)."""
        served = self.registry.command_line_version()
        if served is not None:
            project, deployment, version = served
            self.builder.metrics.build_ended(project.name, deployment.name, version.name, revision.status,
                                             (now() - revision.created).total_seconds())


def _replaced(registry: Registry, version: Version, revision: Revision) -> str | None:
    """What took the place of a `--package` revision, if anything did."""
    if not registry.holds(version):
        return "its version was deleted"
    if version.active_revision != revision.id:
        return f"revision {version.active_revision} replaced it"
    return None


def _forget_earlier_package_versions(registry: Registry, served: Deployment, replaced: Version | None) -> None:
    """Drop the `--package` version kept from an earlier start under other names (not the one now
    `replaced`), and its deployment if that held nothing else (unless it is the one served now)."""
    for project, deployment, version in list(registry.versions()):
        if version.from_command_line and version is not replaced:
            deployment.remove_version(version.name)
            log.warning("forgot %s/%s, the --package version of an earlier start, and what was set on it through "
                        "the API (environment variables, settings)", deployment.name, version.name)
            if deployment is not served and not deployment.versions and not deployment.variables:
                del project.deployments[deployment.name]


COMMAND_LINE_FLAGS = {"environment_name": "--environment", "minimum_instances": "--instances",
                      "maximum_instances": "--instances"}
"""The flag that gives each setting of the `--package` version at every start."""


def _warn_of_overridden_settings(deployment: Deployment, version: Version, given: dict[str, Any]) -> None:
    """Log each setting kept from an earlier start (set through the API) that the command line now gives
    another value: the flag given at this start wins, as it says what this emulator runs."""
    for key, value in given.items():
        if key in version.settings and version.settings[key] != value:
            log.warning("%s/%s's %s is %r, as %s gives it at this start, not the %r kept from an earlier one (set "
                        "through the API)", deployment.name, version.name, key, value, COMMAND_LINE_FLAGS[key],
                        version.settings[key])


def _warn_of_changed_fields(deployment: Deployment, served: Version, package: Package) -> None:
    """Log what changes when the package's spec files give its deployment other fields (a start, a
    `--reload` save), naming the deployment's other built versions: they stay `available` on their kept
    packages, built for the old fields, and their requests fail where their code does not match the new
    ones ("Missing output field …"). This was said nowhere: their spec files are checked at a build only
    (`builds._check_spec_files`)."""
    changes = [f"{direction} fields {describe_fields(old)} -> {describe_fields(new)}"
               for direction, old, new in (("input", deployment.input_spec, package.input_spec),
                                           ("output", deployment.output_spec, package.output_spec))
               if not same_fields(old.fields, new.fields)]
    others = sorted(v.name for v in deployment.versions.values() if v.name != served.name and v.active_revision)
    if changes and others:
        log.warning("deployment %s takes the package's fields (%s): its version(s) %s were built for the old "
                    "fields and stay available, but their requests fail where their code does not match the new "
                    "ones; push them again or delete them", deployment.name, "; ".join(changes), ", ".join(others))
