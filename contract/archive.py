"""The zip layout UbiOps accepts for a deployment package, and safe extraction of one.

UbiOps takes a zip whose root holds a folder (any name); when the root holds several folders, the
one named `deployment_package` is used. `ubiops.utils.zip_dir` writes `deployment_package/<path>`.
As a lenient fallback (not documented by UbiOps) a zip with `deployment.py` at its root is accepted.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

PACKAGE_DIRECTORY = "deployment_package"
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_ENTRIES = 100_000


class ArchiveError(ValueError):
    """A zip that is not a usable deployment package; the message says why."""


def package_prefix(names: list[str]) -> str:
    """The folder inside the zip that holds the package (`''` for files at the root)."""
    top_dirs = {PurePosixPath(n).parts[0] for n in names if len(PurePosixPath(n).parts) > 1}
    root_files = [n for n in names if len(PurePosixPath(n).parts) == 1 and not n.endswith("/")]
    if len(top_dirs) == 1 and not root_files:
        return f"{top_dirs.pop()}/"
    if PACKAGE_DIRECTORY in top_dirs:
        return f"{PACKAGE_DIRECTORY}/"
    if root_files:
        return ""
    raise ArchiveError(
        f"the zip holds several folders ({', '.join(sorted(top_dirs))}) and none is named {PACKAGE_DIRECTORY!r}"
    )


def extract_package(zip_path: Path, target: Path) -> Path:
    """Extract the package folder of `zip_path` into `target` and return it.

    Refuses entries that would land outside `target` (absolute paths, `..`), symlinks, and archives
    that unpack to more than MAX_UNPACKED_BYTES, before anything is written.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{zip_path.name} is not a readable zip file ({exc})") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise ArchiveError(f"the zip has {len(entries)} entries; at most {MAX_ENTRIES} are accepted")
        for entry in entries:
            _check_entry(entry)
        if sum(e.file_size for e in entries) > MAX_UNPACKED_BYTES:
            raise ArchiveError(f"the zip unpacks to more than {MAX_UNPACKED_BYTES // 1024**3} GiB")
        prefix = package_prefix([e.filename for e in entries])
        target.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            if not entry.filename.startswith(prefix) or entry.is_dir():
                continue
            destination = target.joinpath(*PurePosixPath(entry.filename[len(prefix):]).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as source, destination.open("wb") as sink:
                _copy_at_most(source, sink, entry.file_size, entry.filename)
    return target


def _check_entry(entry: zipfile.ZipInfo) -> None:
    name = entry.filename
    path = PurePosixPath(name)
    if "\x00" in name or path.is_absolute() or name.startswith("\\") or ":" in path.parts[0]:
        raise ArchiveError(f"the zip entry {name!r} has an absolute path")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise ArchiveError(f"the zip entry {name!r} points outside the package (..)")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise ArchiveError(f"the zip entry {name!r} is a symbolic link; packages may not contain links")


def _copy_at_most(source, sink, limit: int, name: str) -> None:
    """Copy, trusting the entry's declared size no further than its actual bytes."""
    written = 0
    while chunk := source.read(1024 * 1024):
        written += len(chunk)
        if written > limit:
            raise ArchiveError(f"the zip entry {name!r} unpacks to more than its declared size")
        sink.write(chunk)

