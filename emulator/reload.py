"""`--reload`: restart the served version's instances on the new code when a package file changes.

Requests already running finish on the old instances; queued and new requests wait for the new
ones. Each reload is a new revision of the version (`emulator.serving.PackageVersion`). A change
that breaks the package (a bad spec file, an `__init__` that raises) is reported in the log and on
requests, and the next good change recovers, without restarting the emulator. Once a revision is
uploaded to the version through the API, the version serves what the API gives it, and saves are
no longer reloaded: the API's active revision is always the code that answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from contract.archive import ArchiveError, package_files
from contract.manifest import ManifestError
from contract.spec import SpecError
from contract.text import shortened
from emulator.serving import PackageError, PackageVersion
from emulator.state import Deployment, Project, Version, new_id

POLL_SECONDS = 0.5
log = logging.getLogger("emulator.reload")

Snapshot = dict[str, tuple[int, int]]


def snapshot(folder: Path) -> Snapshot:
    """Each file that would ship (`.ubiops-ignore` honoured, so the package's tests and notes never
    restart it): its modification time and size, cheap to take every half second. A file it cannot
    look at (gone meanwhile, a link in a loop) is left out: the reload says what is wrong with it, and
    the watch goes on."""
    try:
        names = package_files(folder)
    except (ArchiveError, OSError):
        return {}
    files: Snapshot = {}
    for name in names:
        try:
            info = os.stat(folder / name)
        except OSError:
            continue
        files[name] = (info.st_mtime_ns, info.st_size)
    return files


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


async def watch(served: PackageVersion) -> None:
    """Poll the package folder (in a thread: a large package must not hold up requests) and reload the
    served version on every settled change."""
    folder = served.settings.package.resolve()
    seen = await asyncio.to_thread(snapshot, folder)
    log.info("watching %s for changes", folder)
    while True:
        await asyncio.sleep(POLL_SECONDS)
        current = await asyncio.to_thread(snapshot, folder)
        if current == seen:
            continue
        await asyncio.sleep(POLL_SECONDS)
        settled = await asyncio.to_thread(snapshot, folder)
        if settled != current:
            continue
        changed, seen = changes(seen, settled), settled
        log.info("changed: %s; restarting the instances on the new code", ", ".join(changed[:5]) + (" …" if len(changed) > 5 else ""))
        try:
            await reload_version(served)
        except Exception:  # a fault of ours must not end the watch: the next save would go unnoticed
            log.exception("not reloaded")


async def reload_version(served: PackageVersion) -> None:
    """Copy and re-read the package (in a thread: a large package must not hold up requests) and serve
    it as a new revision of the `--package` version (whatever it is named now); the old instances
    finish their running requests first. A package that does not read is a failed revision, and the
    version unavailable with the reason until a save that reads."""
    if _following(served) is None:
        return
    revision_id, problem = new_id(), None
    try:
        package = await asyncio.to_thread(served.read, revision_id)
    except (SpecError, ManifestError, ArchiveError, PackageError) as exc:
        problem = shortened(str(exc))
    found = _following(served)  # again: the version may have been deleted, or uploaded to, during the copy
    if found is None:
        await asyncio.to_thread(served.builder.discard_copy, revision_id)
        return
    project, deployment, version = found
    fields = {"project": project.name, "deployment": deployment.name, "version": version.name}
    if problem is not None:
        log.error("not reloaded, the package is not valid: %s; %s/%s is unavailable until a save that is",
                  problem, deployment.name, version.name, extra=fields)
        served.refuse(deployment, version, problem, revision_id)
        return
    served.revise(project, deployment, version, package, revision_id)
    log.info("reloaded %s/%s", deployment.name, version.name, extra=fields)


def _following(served: PackageVersion) -> tuple[Project, Deployment, Version] | None:
    """The `--package` version, if it still follows the folder (the log says why not)."""
    found = served.registry.command_line_version()
    if found is None:
        log.error("not reloaded: the --package version was deleted through the API; restart the emulator to serve it")
        return None
    project, deployment, version = found
    uploaded = [r.id for r in version.revisions.values() if not r.from_command_line]
    if uploaded:
        log.warning("not reloaded: revision %s was uploaded to %s/%s through the API, and the version no longer "
                    "follows the folder; restart the emulator to serve the folder again", uploaded[0], deployment.name,
                    version.name, extra={"project": project.name, "deployment": deployment.name, "version": version.name})
        return None
    return found
