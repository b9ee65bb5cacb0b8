"""Building an uploaded revision, as UbiOps does after `revisions_file_upload`: unzip the package,
read its declarations, start it in fresh instances, and only then serve it under its version.

A revision goes `queued` → `building` (its Python environment) → `deploying` (its instances start,
`__init__` runs) → `success`, or `failed` (with `error_message`) from any of them. A failed build
leaves the version as it was: still serving its previous revision, or `unavailable` without one.
`rebuild` builds a revision again the same way, from its kept zip, in the base environment its
version names now (`revisions_rebuild`, and a change of the version's environment).
At start-up, `restore` gives saved versions their instances again from the kept zips; `restart`
gives a version new instances when its environment variables, its names or its deployment's fields change
(`registry.VARIABLES_CHANGED`, `RENAMED`, `FIELDS_CHANGED`). The `--package`'s revisions get
their copies of the package in the same place (`copy_package`), and go the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

from contract.archive import (
    ALWAYS_LEFT_OUT_SUFFIXES,
    FILES_AT_ROOT,
    ArchiveError,
    extract_package,
    files_at_root,
    is_left_out_folder,
    outside_package_hint,
)
from contract.calling import deployment_file_name, missing_file_hint
from contract.manifest import ManifestError
from contract.package import INPUT_SPEC_FILE, OUTPUT_SPEC_FILE, Package, read_package
from contract.revisions import BUILDING, DEPLOYING, FAILED, QUEUED, SUCCESS, UNFINISHED
from contract.spec import Spec, SpecError, same_fields
from contract.text import shortened
from emulator.environments import version_environment
from emulator.exceptions import NotFound, NotSaved
from emulator.metrics import Metrics
from emulator.registry import RENAMED, VARIABLES_CHANGED, Registry
from emulator.runtime.manager import Runtime
from emulator.runtime.pool import UNAVAILABLE, InstancePool, NoInstances
from emulator.settings import Settings
from emulator.state import (
    Deployment,
    Project,
    Revision,
    Version,
    instance_environment,
    instance_secrets,
    now,
)
from emulator.version_instances import new_pool

log = logging.getLogger("emulator.builds")

BUILD_TIMEOUT_SECONDS = 600
"""How long a revision's instances may take to start once its environment is built (which has its
own limit, `python_envs.BUILD_SECONDS`: an install may rightly take longer)."""
INTERRUPTED = "The emulator stopped before this revision was built; upload it again"
REBUILD_INTERRUPTED = "The emulator stopped before this revision was rebuilt; rebuild it again"
REBUILDING = "its rebuild was cut off when the emulator last stopped"
"""Why a version's active revision is built again at start (`restore`, `start`)."""


class BuildFailed(Exception):
    """The package cannot be served; the message is the revision's `error_message`."""


PACKAGE_ERRORS = (BuildFailed, ArchiveError, SpecError, ManifestError)
"""What a zip that cannot be served raises while it is unpacked and checked."""


class Builder:
    def __init__(self, settings: Settings, registry: Registry, runtime: Runtime, root: Path, metrics: Metrics) -> None:
        self.settings = settings
        self.registry = registry
        self.runtime = runtime
        self.root = root
        self.unpacked = root / "builds"
        """Each revision's package, unpacked from its zip into a folder named by the revision's id (a rebuild's: the id
        and a suffix, `rebuild`)."""
        self.metrics = metrics
        self._tasks: dict[asyncio.Task[None], tuple[Version, Revision]] = {}
        """Each build running, and the version and revision it builds."""
        self._interrupted: list[tuple[Project, Deployment, Version, Revision]] = []
        """The active revisions whose rebuild the last stop cut off, built again at `start`."""
        self._removals: set[asyncio.Task[None]] = set()
        """Each replaced revision's unpacked package waiting for its instances to stop, to be removed."""

    async def upload(self, project: str, deployment: str, version: str, source: BinaryIO) -> Revision:
        """Store an uploaded zip as a new revision of `version` and start building it in the background."""
        owner, parent = self.registry.project(project), self.registry.deployment(project, deployment)
        found = self.registry.version(project, deployment, version)
        revision = Revision(version=version, zip_path="", environment=version_environment(found.settings))
        revision.zip_path = str(self.root / "revisions" / f"{revision.id}.zip")
        kept = Path(revision.zip_path)
        try:  # the zip and the catalog written, or neither (NotSaved: a full disk), before it is built
            try:
                await asyncio.to_thread(_save, source, kept)
            except OSError as exc:
                raise NotSaved(kept, exc) from exc
            async with self.registry.change():
                if not self.registry.holds(found):  # deleted while its zip was saved: nothing would stop the build
                    raise NotFound(f"Version {version} was deleted while its package was uploaded")
                found.revisions[revision.id] = revision
        except BaseException:
            found.revisions.pop(revision.id, None)
            kept.unlink(missing_ok=True)
            raise
        # Started before the next await, so that a delete from now on (held by the save until now) finds the build.
        self._start(owner, parent, found, revision, revision.id, revision.environment)
        return revision

    async def rebuild(self, project: Project, deployment: Deployment, version: Version, revision: Revision) -> None:
        """Build `revision` again from its kept zip, in the base environment `version` names now, as an
        upload is built (`_build`: `queued` → … → `success`/`failed`; the version serves what it served
        until the build succeeds, which then replaces its instances if no newer revision is built). A
        build of it still running is cancelled: the latest change wins."""
        self._build_again(project, deployment, version, revision)
        await self.registry.changed()

    def _build_again(self, project: Project, deployment: Deployment, version: Version, revision: Revision) -> None:
        for task, (_, building) in self._tasks.items():
            if building is revision:
                task.cancel()
        revision.status, revision.error_message, revision.rebuilt = QUEUED, None, now()  # the version's latest_revision
        # Its own folder: the instances serving the revision's previous build still run in theirs.
        self._start(project, deployment, version, revision, f"{revision.id}.{uuid.uuid4().hex[:8]}",
                    version_environment(version.settings))

    def _start(self, project: Project, deployment: Deployment, version: Version, revision: Revision,
               folder: str, environment: str) -> None:
        task = asyncio.create_task(self._build(project, deployment, version, revision, folder, environment))
        self._tasks[task] = (version, revision)
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    def start(self) -> None:
        """Build again, now that the event loop runs, the active revisions whose rebuild the last stop cut off
        (`restore`): their last build serves meanwhile, as it did while the cut-off rebuild ran."""
        for project, deployment, version, revision in self._interrupted:
            log.info("building %s/%s revision %s again: %s", deployment.name, version.name, revision.id, REBUILDING)
            self._build_again(project, deployment, version, revision)
        self._interrupted.clear()

    async def cancel(self, version: Version) -> None:
        """Stop the builds of a version being deleted, with the instances they started."""
        await _cancelled([task for task, (building, _) in self._tasks.items() if building is version])

    async def discard(self, version: Version) -> None:
        """Remove a deleted version's kept zips and unpacked packages, once its instances have stopped."""
        await asyncio.to_thread(self._discard, list(version.revisions.values()), with_zips=True)

    def discard_command_line(self) -> None:
        """Remove the copies of the `--package` version's revisions (`copy_package`), once the emulator's
        instances have stopped: the next start makes its own."""
        found = self.registry.command_line_version()
        if found is not None:
            self._discard(list(found[2].revisions.values()), with_zips=False)

    def _discard(self, revisions: list[Revision], with_zips: bool) -> None:
        for revision in revisions:
            self.discard_copy(revision.id)
            for rebuilt in self.unpacked.glob(f"{revision.id}.*"):  # its rebuilds' (`rebuild`)
                shutil.rmtree(rebuilt, ignore_errors=True)
            if with_zips and not revision.from_command_line:  # the developer's own package: never ours to delete
                Path(revision.zip_path).unlink(missing_ok=True)

    def discard_copy(self, folder: str) -> None:
        """Remove a build's unpacked package (or copied folder), named by its revision's id (a rebuild's:
        the id and a suffix), if it is there."""
        shutil.rmtree(self.unpacked / folder, ignore_errors=True)

    def discard_when_drained(self, version: Version, folder: str) -> None:
        """Remove the unpacked package just replaced (`folder`, `discard_copy`), once the instances that
        served it have stopped: the requests still running there read it until they end (`Runtime.replace`).
        Before, each replaced revision's copy stayed until the emulator restarted."""
        drains = self.runtime.drains(version)

        async def discard() -> None:
            if drains:
                await asyncio.wait(drains)  # not cancelled with this task
            await asyncio.to_thread(self.discard_copy, folder)

        task = asyncio.create_task(discard())
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    def _discard_cancelled(self, unpacking: asyncio.Future[Package], folder: str) -> None:
        """Remove a cancelled build's unpacked package once its unpacking (a thread a cancel does not stop) has
        ended: a second change within a rebuild left `builds/<id>.<suffix>` until the next start."""

        async def discard() -> None:
            await asyncio.wait([unpacking])
            if not unpacking.cancelled():
                unpacking.exception()  # retrieved: the build was cancelled, whatever the unpacking raised
            await asyncio.to_thread(self.discard_copy, folder)

        task = asyncio.create_task(discard())
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def close(self) -> None:
        """Stop the builds and the removals still waiting (the next start's `restore` removes those files)."""
        await _cancelled([*self._tasks, *self._removals])

    def restore(self) -> None:
        """At start-up, for the saved versions: fail the builds the last run left unfinished (but an active
        revision's rebuild, done again at `start`), and give each version with an active revision the
        instances of that revision's last build again, unpacked from the kept zip in the environment that
        build was made in (also when its rebuild failed or was cut off; they start with the runtime). A
        zip that no longer unpacks leaves its version `unavailable`, with the reason on its requests; its
        spec files are not checked again (`_check_spec_files`). The unpacked files of every other revision
        (replaced, or cut off by the stop) go, and the zips no saved revision names."""
        interrupted = sum(self._restore(project, deployment, version)
                          for project, deployment, version in self.registry.versions())
        if interrupted:
            log.warning("%d build(s) were unfinished when the emulator last stopped; they are now failed", interrupted)
        active = {version.active_revision for _, _, version in self.registry.versions()}
        for unpacked in self.unpacked.iterdir() if self.unpacked.is_dir() else ():
            if unpacked.name not in active:
                shutil.rmtree(unpacked, ignore_errors=True)
        # A zip no saved revision names: one uploaded to the `--package` version, whose revisions are
        # not saved (the next start reads the package again), stayed for good.
        kept = {r.zip_path for _, _, version in self.registry.versions() for r in version.revisions.values()}
        for zipped in (self.root / "revisions").glob("*.zip"):
            if str(zipped) not in kept:
                zipped.unlink(missing_ok=True)
        self.registry.save()

    def _restore(self, project: Project, deployment: Deployment, version: Version) -> int:
        """Restore one version; how many of its builds were unfinished."""
        if version.from_command_line:  # served from the command line this start (`emulator.serving`)
            return 0
        active = version.revisions.get(version.active_revision or "")
        if active is not None and active.status in UNFINISHED:
            self._interrupted.append((project, deployment, version, active))
        unfinished = [r for r in version.revisions.values() if r.status in UNFINISHED and r is not active]
        for revision in unfinished:
            # One built before (its capabilities are a build's) was being rebuilt: its zip is kept.
            revision.fail(REBUILD_INTERRUPTED if revision.capabilities else INTERRUPTED)
        if active is None:
            return len(unfinished)
        # An active revision was built: whatever its rebuild did (failed, or cut off and done again at
        # `start`), its last build (in `revision.environment`) serves, as it did before the stop.
        try:
            version.package = self._unpack(active, "its kept zip")
            self.runtime.replace(version, self._instances(project, deployment, version, version.package, active))
        except PACKAGE_ERRORS as exc:
            reason = f"Version {version.name} could not be restarted from revision {active.id}: {shortened(str(exc))}"
            self.runtime.replace(version, NoInstances(reason))
            log.error("%s/%s: %s", deployment.name, version.name, reason,
                      extra=_log_fields(project.name, deployment.name, version, active))
        return len(unfinished)

    def restart(self, project: Project, deployment: Deployment, version: Version, why: str) -> None:
        """New instances for a version whose environment variables, names or deployment's fields changed (`why`),
        on the package it serves, as UbiOps restarts a version's instances when its variables change; one without a
        package gets them at its build. Its spec files are not checked again (`_check_spec_files`): a
        deployment's fields updated since its build once left such a change answered but not applied."""
        if version.package is None:
            return
        pool = self._instances(project, deployment, version, version.package,
                               version.revisions.get(version.active_revision or ""))
        log.info("restarting %s/%s: %s", deployment.name, version.name, why)
        self.runtime.replace(version, pool)

    async def _check_deployment_file(self, project: Project, deployment: Deployment, version: Version, package: Package,
                                     zip_path: Path) -> None:
        """BuildFailed when the package lacks the file its instances would import, saying where the zip holds
        one (`calling.missing_file_hint`, `archive.outside_package_hint`): the instances' own failure can
        tell only what the unpacked package holds."""
        file_name = deployment_file_name(instance_environment(project, deployment, version, package, self.settings))
        if not (package.directory / file_name).is_file():
            hint = await asyncio.to_thread(_where_it_is, package.directory, file_name, zip_path)
            raise BuildFailed(f"the package has no {file_name}{hint}")

    def _unpack(self, revision: Revision, called: str, folder: str | None = None) -> Package:
        """The revision's package, freshly unpacked from its kept zip into `folder` (its id by default; a
        previous copy is replaced); `called`: what a message calls the zip (its file's name is the emulator's own)."""
        target = self.unpacked / (folder or revision.id)
        shutil.rmtree(target, ignore_errors=True)
        return read_package(extract_package(Path(revision.zip_path), target, called))

    def copy_package(self, revision_id: str, source: Path) -> Package:
        """The `--package` `source` (a zip or a folder) as the revision `revision_id`'s own copy, made
        where an uploaded revision is unpacked: its instances run in it (working directory and
        `base_directory`), so what they write never reaches the developer's folder, its zip or
        `--reload`'s watch, as each UbiOps instance has its own copy of the package. It goes as an
        uploaded revision's does (`discard_when_drained`, `discard`), and at stop (`discard_command_line`);
        one that does not read goes at once."""
        target = self.unpacked / revision_id
        shutil.rmtree(target, ignore_errors=True)
        try:
            if source.is_file():
                extract_package(source, target)
            else:
                copy_package_folder(source, target)
            return read_package(target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    def _instances(self, project: Project, deployment: Deployment, version: Version, package: Package,
                   revision: Revision | None, environment: str | None = None) -> InstancePool:
        """The (unstarted) instances that serve `package` (`revision`'s) as `version` (in `environment`,
        when it is being built in another)."""
        return new_pool(project, deployment, version, package, self.settings, self.runtime, revision, environment)

    async def _build(self, project: Project, deployment: Deployment, version: Version, revision: Revision,
                     folder: str, environment: str) -> None:
        """Build `revision`, unpacked into `folder`, in `environment` (its own once built: until then the
        instances of its previous build, if any, run on in theirs); whatever goes wrong ends it `failed` with
        the reason, never `building` for ever. The deployment and version are held, not looked up by name:
        either may be renamed meanwhile."""
        revision.status = BUILDING
        started = time.monotonic()
        fields = _log_fields(project.name, deployment.name, version, revision)
        log.info("building %s/%s revision %s", deployment.name, version.name, revision.id, extra=fields)
        pool: InstancePool | None = None
        unpacking = asyncio.ensure_future(asyncio.to_thread(self._unpack, revision, "the uploaded file", folder))
        try:
            package = await asyncio.shield(unpacking)  # a cancel waits for it (`_discard_cancelled`)
            if await asyncio.to_thread(files_at_root, Path(revision.zip_path)):
                log.warning("%s", FILES_AT_ROOT, extra=fields)
            _check_spec_files(package, deployment)
            await self._check_deployment_file(project, deployment, version, package, Path(revision.zip_path))
            pool = self._instances(project, deployment, version, package, revision, environment)
            pool.start()
            await pool.environment_built()
            if pool.status != UNAVAILABLE:
                revision.status = DEPLOYING
                await self.registry.changed()
            async with asyncio.timeout(BUILD_TIMEOUT_SECONDS):
                await pool.started()
            if pool.status == UNAVAILABLE:
                raise BuildFailed(pool.failure)
        except asyncio.CancelledError:
            try:
                if pool is not None:
                    await pool.close()
            finally:
                self._discard_cancelled(unpacking, folder)
            raise
        except Exception as exc:  # an unforeseen one too (a full disk, say): logged with its traceback
            message = shortened(_failure(exc))  # logged: never a whole 45 MB message (`Revision.fail` keeps less)
            revision.fail(message)
            log.error("build of %s/%s revision %s failed: %s", deployment.name, version.name, revision.id, message,
                      extra=fields, exc_info=not isinstance(exc, (*PACKAGE_ERRORS, TimeoutError)))
            self.metrics.build_ended(deployment.project, deployment.name, version.name, FAILED, time.monotonic() - started)
            if pool is not None:
                await pool.close()
            await asyncio.to_thread(self.discard_copy, folder)  # its zip stays, to be downloaded
            await self.registry.changed()
            return
        revision.capabilities, revision.status, revision.environment = asdict(pool.capabilities), SUCCESS, environment
        self.metrics.build_ended(deployment.project, deployment.name, version.name, SUCCESS, time.monotonic() - started)
        newer = list(version.revisions)[list(version.revisions).index(revision.id) + 1:]
        # The active revision serves its previous build even while its own rebuild runs or has failed.
        if any(later == version.active_revision or version.revisions[later].status == SUCCESS for later in newer):
            log.info("built %s/%s revision %s, but a newer revision serves already", deployment.name, version.name,
                     revision.id, extra=fields)
            await pool.close()
            await asyncio.to_thread(self.discard_copy, folder)
            await self.registry.changed()
            return
        replaced = version.package  # this revision's previous build, when it is rebuilt
        version.package, version.active_revision = package, revision.id
        version.last_updated = now()
        self.runtime.replace(version, pool)
        if replaced is not None:
            self.discard_when_drained(version, replaced.directory.name)
        if pool.launch.init_context["environment_variables"] != instance_environment(
                project, deployment, version, package, self.settings) or pool.launch.secrets != instance_secrets(
                project, deployment, version, self.settings):  # a variable made secret: masked from now on
            self.restart(project, deployment, version, VARIABLES_CHANGED)  # while it was building
        elif (pool.launch.deployment, pool.launch.version) != (deployment.name, version.name):
            self.restart(project, deployment, version, RENAMED)
        await self.registry.changed()
        log.info("built %s/%s revision %s", deployment.name, version.name, revision.id, extra=fields)


def copy_package_folder(source: Path, target: Path) -> None:
    """Copy a package folder as it is served: all of it (what its zip leaves out too, `.env` files and
    those `.ubiops-ignore` lists: README, *Differences*) but the caches and folders no zip ever holds
    (`contract.archive.is_left_out_folder`: `__pycache__`, `.git`, `.emulator-data`, virtual environments,
    tools' caches; and `*.pyc`), each file with its mode. A link stays a link to what it leads to (one into the package, to
    the same place in the copy); a pipe or a socket is left out. ArchiveError, naming it, for what
    cannot be copied."""
    source, target = source.resolve(), target.resolve()
    try:
        _copy_folder(source, target, source, target)
    except OSError as exc:
        raise ArchiveError(f"the package folder {source} cannot be copied ({exc.strerror or exc})") from None


def _copy_folder(folder: Path, copy: Path, source: Path, target: Path) -> None:
    copy.mkdir(parents=True)
    with os.scandir(folder) as entries:
        for entry in entries:
            destination = copy / entry.name
            try:
                if entry.is_symlink():
                    os.symlink(_link_target(Path(entry.path), source, target, destination), destination)
                elif entry.is_dir():
                    if not is_left_out_folder(Path(entry.path)):
                        _copy_folder(Path(entry.path), destination, source, target)
                elif entry.is_file() and not entry.name.endswith(ALWAYS_LEFT_OUT_SUFFIXES):
                    shutil.copy(entry.path, destination)
            except OSError as exc:
                raise ArchiveError(f"{Path(entry.path).relative_to(source)} in the package cannot be copied "
                                   f"({exc.strerror or exc})") from None


def _link_target(link: Path, source: Path, target: Path, copy: Path) -> str:
    """Where `copy`, the copy of `link`, leads: where `link` does, but into the copy when that lies in the package."""
    resolved = Path(os.path.realpath(link))
    if resolved.is_relative_to(source):
        return os.path.relpath(target / resolved.relative_to(source), copy.parent)
    return str(resolved)


def _failure(exc: Exception) -> str:
    """A failed build's `error_message`."""
    if isinstance(exc, TimeoutError):
        return f"the deployment did not start within {BUILD_TIMEOUT_SECONDS} s"
    if isinstance(exc, PACKAGE_ERRORS):
        return str(exc)
    return f"the emulator could not build it ({type(exc).__name__}: {exc})"


async def _cancelled(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _where_it_is(directory: Path, file_name: str, zip_path: Path) -> str:
    """Where the zip holds the `file_name` its unpacked package lacks, as a message's hint ("" if nowhere)."""
    return missing_file_hint(directory, file_name) or outside_package_hint(zip_path, file_name)


def _log_fields(project: str, deployment: str, version: Version, revision: Revision) -> dict[str, str]:
    """What a line about a revision's build carries as fields (stored with the logs, `emulator.log_capture`)."""
    return {"project": project, "deployment": deployment, "version": version.name, "revision_id": revision.id}


def _save(source: BinaryIO, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        shutil.copyfileobj(source, sink, 1024 * 1024)


def _check_spec_files(package: Package, deployment: Deployment) -> None:
    """BuildFailed unless the package's spec files, where it has them, declare the deployment's fields: an
    early warning at a build (an upload, a rebuild) only, as UbiOps ignores them. Instances restarted on a
    built package (variables changed, a rename, the emulator's start) are not held to it: the deployment's
    fields may have been updated since, and its requests are checked against those."""
    _check_fields(package, "input", deployment.input_spec, INPUT_SPEC_FILE)
    _check_fields(package, "output", deployment.output_spec, OUTPUT_SPEC_FILE)


def _check_fields(package: Package, direction: str, declared: Spec, spec_file: str) -> None:
    """A spec file in the package must declare the deployment's fields (names and types)."""
    if not (package.directory / spec_file).is_file():
        return
    packaged = package.input_spec if direction == "input" else package.output_spec
    if not same_fields(packaged.fields, declared.fields):
        raise BuildFailed(
            f"{spec_file} declares {describe_fields(packaged)} but the deployment's {direction} fields are "
            f"{describe_fields(declared)}; update the deployment's fields or the spec file"
        )


def describe_fields(spec: Spec) -> str:
    """A spec's fields as a message names them: `x (int), y (string)`, or `none (plain)`."""
    return ", ".join(f"{f.name} ({f.data_type})" for f in spec.fields) or "none (plain)"
