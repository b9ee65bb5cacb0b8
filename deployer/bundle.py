"""`python -m deployer package`: the reproducible zip of the package folder, named by its SHA-256."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from contract.archive import ArchiveError, build_zip, package_file_chunks, package_files
from contract.config import DeployerConfig, secret_values
from contract.secrets import MIN_SECRET_LENGTH
from deployer.client import UBIOPS_TOKEN_VARIABLE, token_key
from deployer.errors import DeployerError

DIST_DIRECTORY = "dist"


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]
    linked_folders: tuple[str, ...] = ()
    """Links to folders in the package, left out of the zip as `ubiops.utils.zip_dir` leaves them out."""
    hold: SharedLock | None = field(default=None, repr=False, compare=False)
    """The zip's shared lock while this bundle lives: another run's clean-up of dist/ leaves it alone
    (`_remove_older`) as this run checks, copies and uploads it."""


class SharedLock:
    """A shared `flock` on a file, held until the object goes (or the process ends)."""

    def __init__(self, path: Path) -> None:
        self._fd = -1  # what `__del__` finds if the open fails
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def copy_to(self, target: Path) -> None:
        """Copy the locked file's bytes to `target` through the descriptor held, not by its name: its
        folder may be gone meanwhile (dist/ removed by `make clean`)."""
        with os.fdopen(os.dup(self._fd), "rb") as source, target.open("wb") as copy:
            source.seek(0)
            shutil.copyfileobj(source, copy, 1024 * 1024)

    def __del__(self) -> None:
        if self._fd >= 0:  # not for a lock never taken: its number may belong to another file by now
            os.close(self._fd)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def build_bundle(config: DeployerConfig) -> Bundle:
    """Zip the package into `dist/<deployment>-<sha12>.zip`; the same files always give the same bytes."""
    source, dist = config.package_path, config.root / DIST_DIRECTORY
    if source.resolve() == dist.resolve():  # its zips would go into the next one
        raise DeployerError(f"the package folder is {DIST_DIRECTORY}/, where the zips are written: give the package "
                            "a folder of its own")
    # This run's own scratch file: runs at once in one checkout (`package`, `check`) once shared one, and
    # zipped over each other. Named rather than made by mkstemp, whose 0600 would stick to the zip.
    scratch = dist / f".{config.deployment}-building-{uuid.uuid4().hex}.zip"
    try:
        linked: list[str] = []
        _refuse_secrets(source, package_files(source, dist, linked), config)
        files = build_zip(source, scratch)
        sha256 = sha256_of(scratch)
        path = dist / f"{config.deployment}-{sha256[:12]}.zip"
        hold = SharedLock(scratch)  # before it has the name another run's clean-up looks for
        scratch.replace(path)  # atomic: a run at once with the same files renames the same bytes over it
    except BaseException as exc:
        with contextlib.suppress(OSError):  # dist/ itself may be what failed: that is the error to tell
            scratch.unlink(missing_ok=True)  # a failed or interrupted build leaves no scratch file behind
        if isinstance(exc, ArchiveError):
            raise DeployerError(str(exc)) from None
        if isinstance(exc, OSError):  # dist/ a file, a full disk, a file the package cannot read
            raise DeployerError(f"cannot build the zip in {dist}: {exc}") from None
        raise
    _remove_older(dist, config.deployment, path)
    return Bundle(path, sha256, path.stat().st_size, tuple(files), tuple(sorted(linked)), hold)


def warn_of_links(bundle: Bundle, say: Callable[[str], None]) -> None:
    """Say which links to folders the zip left out: UbiOps would not get what they hold either."""
    for folder in bundle.linked_folders:
        say(f"WARNING: {folder}/ is a link to a folder, left out of the zip (UbiOps' zip_dir leaves it out too): "
            f"copy the folder into the package, or list it in .ubiops-ignore")


def _remove_older(dist: Path, deployment: str, new: Path) -> None:
    """Remove the deployment's earlier zips from dist/ (`<deployment>-<sha12>.zip`, none newer than
    `new`), so they do not pile up; but any another run is using (its Bundle holds a shared lock on
    it) and any that cannot be removed stay."""
    name = re.compile(rf"{re.escape(deployment)}-[0-9a-f]{{12}}\.zip")
    newest = new.stat().st_mtime
    for old in dist.iterdir():
        if old == new or not name.fullmatch(old.name):
            continue
        with contextlib.suppress(OSError), old.open("rb") as stream:  # OSError: in use (BlockingIOError), gone…
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            found = os.fstat(stream.fileno())
            if found.st_mtime <= newest and os.path.samestat(found, old.stat()):  # not renamed over meanwhile
                old.unlink()


def _refuse_secrets(source: Path, names: list[str], config: DeployerConfig) -> None:
    """The API token and the configured secrets must never ship: refuse a package with a file that
    holds one's value (naming the file and the variable only). Values shorter than 8 characters are
    not looked for: they would match by chance."""
    values = {UBIOPS_TOKEN_VARIABLE: token_key(), **secret_values(config)}
    wanted = {variable: value.encode() for variable, value in values.items() if len(value) >= MIN_SECRET_LENGTH}
    if not wanted:
        return
    overlap = max(map(len, wanted.values())) - 1  # a value cut by a chunk's end is whole in the next window
    for name in names:
        carried = b""
        for chunk in package_file_chunks(source, name):  # a chunk at a time: a large file is never held whole
            window = carried + chunk
            for variable, value in wanted.items():
                if value in window:
                    raise DeployerError(f"{name} contains the value of {variable}; remove it or list the file in .ubiops-ignore")
            carried = window[-overlap:] if overlap else b""
