"""The zip layout UbiOps accepts for a deployment package, and safe extraction of one.

UbiOps takes a zip whose root holds a folder (any name); when the root holds several folders, the
one named `deployment_package` is used. `ubiops.utils.zip_dir` writes `deployment_package/<path>`.
As a lenient fallback (not documented by UbiOps) a zip with `deployment.py` at its root is accepted.

`build_zip` writes that layout reproducibly (sorted entries, fixed timestamps and permissions), so
the same files give the same bytes and the zip's SHA-256 names the package that was tested.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ubiops.utils.gitignorefile.gitignorefile import parse as parse_ignore_file

from contract.calling import DEPLOYMENT_FILE
from contract.text import is_unicode_text

PACKAGE_DIRECTORY = "deployment_package"
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_ENTRIES = 100_000
ENCRYPTED = 0x1
"""The general-purpose flag bit of an entry with a password: unpacking it would need one."""
IGNORE_FILE = ".ubiops-ignore"
EMULATOR_DATA_DIRECTORY = ".emulator-data"
"""The emulator's default `--data-dir`, relative to where it runs: one left in a package folder by a run
from inside it holds the API's secret values and changes every second, so no zip or reload takes it."""
TOOL_CACHES = frozenset({".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox"})
ALWAYS_LEFT_OUT_DIRECTORIES = frozenset({"__pycache__", ".git", EMULATOR_DATA_DIRECTORY, ".venv", *TOOL_CACHES})
VIRTUAL_ENVIRONMENT_FILE = "pyvenv.cfg"
"""What every virtual environment holds at its top (`venv`, `virtualenv`, `uv venv`): a folder that holds
it is one (`venv/`, `env/`), built for this machine, which no zip takes, whatever its name."""
ALWAYS_LEFT_OUT_FILES = frozenset({".env"})
SECRETS_FILE_PREFIX = ".env."
"""`.env.local`, `.env.production`: secrets, as in `.env`, by the convention of dotenv's tools."""
KEPT_ENV_FILES = frozenset({".env.example", ".env.sample", ".env.template"})
"""The `.env.*` files that by the same convention hold the names and no secrets: they are zipped."""
ALWAYS_LEFT_OUT_SUFFIXES = (".pyc",)
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
COPY_CHUNK_BYTES = 1024 * 1024


class ArchiveError(ValueError):
    """A zip that is not a usable deployment package; the message says why."""


def entry_parts(name: str) -> tuple[str, ...]:
    """The parts of a zip entry's name, `.` dropped: bsdtar (macOS' and Windows' `tar -a`) writes `./`
    and `./deployment.py`, which unzip and Python's `extractall` unpack as `deployment.py`."""
    return PurePosixPath(name).parts


def package_prefix(names: list[str]) -> tuple[str, ...]:
    """The folder inside the zip that holds the package, as parts (`()` for files at the root). UbiOps'
    docs ask for one folder at the root; the emulator also takes the files at the root, unless they
    hold no `deployment.py` and the one folder does (a README beside it once hid the package)."""
    parts = {entry_parts(n) for n in names}
    top_dirs = {p[0] for p in parts if len(p) > 1}
    root_files = [n for n in names if len(entry_parts(n)) == 1 and not n.endswith("/")]
    if len(top_dirs) == 1:
        folder = next(iter(top_dirs))
        if not root_files or ((DEPLOYMENT_FILE,) not in parts and (folder, DEPLOYMENT_FILE) in parts):
            return (folder,)
    if PACKAGE_DIRECTORY in top_dirs:
        return (PACKAGE_DIRECTORY,)
    if root_files:
        return ()
    raise ArchiveError(
        f"the zip holds several folders ({', '.join(sorted(top_dirs))}) and none is named {PACKAGE_DIRECTORY!r}"
    )


FILES_AT_ROOT = ("the zip holds the package's files at its root, where UbiOps' docs ask for one folder that holds them: "
                 "zip the package's folder itself, not its files (`python -m deployer package` and `ubiops.utils.zip_dir` "
                 f"write {PACKAGE_DIRECTORY}/)")
"""What a build of such a zip warns: the emulator serves it (`package_prefix`), UbiOps' docs do not say it would."""


def files_at_root(zip_path: Path) -> bool:
    """Whether a zip `extract_package` unpacked took the package's files from its root (`package_prefix`
    gave `()`), not from a folder as UbiOps' docs ask."""
    with zipfile.ZipFile(zip_path) as archive:
        return package_prefix(archive.namelist()) == ()


def outside_package_hint(zip_path: Path, file_name: str) -> str:
    """What to add when the package a zip unpacks to lacks `file_name` that the zip holds outside its package
    folder (`deployment.py` beside `deployment_package/`, which alone is unpacked); "" when it holds none."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    prefix = package_prefix(names)
    outside = sorted(name for name in names if (parts := entry_parts(name)) and parts[-1] == file_name
                     and parts[:len(prefix)] != prefix and not name.endswith("/"))
    if not prefix or not outside:
        return ""
    folder = "/".join(prefix)
    return (f" (the zip holds {outside[0]} outside its package folder {folder}/, whose files alone are the package: "
            "move it into that folder)")


def extract_package(zip_path: Path, target: Path, called: str | None = None) -> Path:
    """Extract the package folder of `zip_path` into `target` and return it.

    Refuses entries that would land outside `target` (absolute paths, `..`), symlinks, and archives
    that unpack to more than MAX_UNPACKED_BYTES, before anything is written. `called` names the file
    in the message when it is no zip ("the uploaded file": the name of the emulator's copy of an upload
    means nothing to whoever uploaded it); its own name by default.
    """
    called = called or zip_path.name
    try:
        if zip_path.stat().st_size == 0:
            raise ArchiveError(f"{called} is empty: it is not a zip file")
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        detail = "" if str(exc) == "File is not a zip file" else f" ({exc})"
        raise ArchiveError(f"{called} is not a zip file{detail}") from None
    except OSError as exc:
        raise ArchiveError(f"{called} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise ArchiveError(f"the zip has {len(entries)} entries; at most {MAX_ENTRIES} are accepted")
        for entry in entries:
            _check_entry(entry)
        if sum(e.file_size for e in entries) > MAX_UNPACKED_BYTES:
            raise ArchiveError(f"the zip unpacks to more than {MAX_UNPACKED_BYTES // 1024**3} GiB")
        if not any(entry_parts(e.filename) and not e.is_dir() for e in entries):
            raise ArchiveError("the zip is empty: it holds no files")
        prefix = package_prefix([e.filename for e in entries])
        files = {e: parts[len(prefix):] for e in entries if not e.is_dir()
                 if (parts := entry_parts(e.filename))[:len(prefix)] == prefix and parts[len(prefix):]}
        _refuse_file_and_folder(list(files.values()))
        target.mkdir(parents=True, exist_ok=True)
        for entry, parts in files.items():
            destination = target.joinpath(*parts)
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as source, destination.open("wb") as sink:
                    _copy_at_most(source, sink, entry.file_size, entry.filename)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise ArchiveError(f"the zip entry {entry.filename!r} is corrupt ({exc})") from None
            except UnicodeDecodeError as exc:  # the name in the entry's own header
                raise _not_utf8(exc) from None
            except OSError as exc:  # a name too long for this file system, or a full disk
                raise ArchiveError(f"the zip entry {entry.filename!r} cannot be unpacked ({exc.strerror})") from None
    return target


def _not_utf8(exc: UnicodeDecodeError) -> ArchiveError:
    """An entry flagged as named in UTF-8 whose name is not: the zip is at fault, so say which entry."""
    name = exc.object.decode(errors="replace")
    return ArchiveError(f"the zip entry {name!r} is flagged as named in UTF-8, but its name is not UTF-8")


def _refuse_file_and_folder(paths: list[tuple[str, ...]]) -> None:
    """A name cannot be both a file and the folder of another (`data` and `data/x.txt`): no folder holds both."""
    folders = {parts[:end] for parts in paths for end in range(1, len(parts))}
    for parts in paths:
        if parts in folders:
            raise ArchiveError(f"the zip holds {'/'.join(parts)!r} both as a file and as a folder")


def is_left_out_folder(path: Path) -> bool:
    """A folder no zip holds and the emulator's copy of a package folder leaves out too: a cache
    (`__pycache__`, a tool's), `.git`, an emulator's data, a virtual environment."""
    return path.name in ALWAYS_LEFT_OUT_DIRECTORIES or (path / VIRTUAL_ENVIRONMENT_FILE).is_file()


def is_secrets_file(name: str) -> bool:
    """`.env` and `.env.*` but the examples (KEPT_ENV_FILES): never zipped, though the emulator's copy of
    a package folder keeps them, as the folder is served as it is."""
    return name in ALWAYS_LEFT_OUT_FILES or (name.startswith(SECRETS_FILE_PREFIX) and name not in KEPT_ENV_FILES)


def package_files(source: Path, output_folder: Path | None = None, linked_folders: list[str] | None = None) -> list[str]:
    """The files of a package folder that go into its zip, as sorted POSIX paths relative to it.

    Honours `.ubiops-ignore` (gitignore syntax, with the SDK's own matcher, as `ubiops.utils.zip_dir`
    does) and always leaves out the folders `is_left_out_folder` names, the files `is_secrets_file` names,
    `*.pyc`, and `output_folder` (where the zips are written) when it lies inside the package: a zip must
    not hold the earlier ones.
    Links to folders are not followed (nor by `zip_dir`): given `linked_folders`, the paths of those not
    ignored are added to it, so that the caller can say they were left out.
    """
    source = source.resolve()
    if not source.is_dir():
        raise ArchiveError(f"no package folder at {source}")
    ignore_file = source / IGNORE_FILE
    is_ignored = parse_ignore_file(str(ignore_file), str(source)) if ignore_file.is_file() else (lambda _: False)
    left_out = _folder_inside(output_folder, source)
    found: list[str] = []
    for folder, directories, files in os.walk(source):
        directories[:] = [d for d in directories if not is_left_out_folder(Path(folder, d)) and Path(folder, d) != left_out]
        if linked_folders is not None:  # os.walk lists them, and goes into none
            linked_folders.extend(Path(folder, d).relative_to(source).as_posix() for d in directories
                                  if Path(folder, d).is_symlink() and not is_ignored(str(Path(folder, d))))
        for name in files:
            path = Path(folder, name)
            if is_secrets_file(name) or name.endswith(ALWAYS_LEFT_OUT_SUFFIXES) or is_ignored(str(path)):
                continue
            found.append(path.relative_to(source).as_posix())
    return sorted(found)


def open_package_file(source: Path, name: str) -> BinaryIO:
    """A file `package_files` listed, open for reading; ArchiveError, naming it, for one no zip can hold
    (a link to nothing, a pipe, which reading would wait on for ever) or that cannot be opened."""
    path = source / name
    try:
        if path.is_file():
            return path.open("rb")
        problem = f"a link to {os.readlink(path)}, which does not exist" if path.is_symlink() else "not a file"
    except OSError as exc:
        problem = f"unreadable ({exc.strerror})"
    raise ArchiveError(f"{name} in the package is {problem}: remove it, or list it in {IGNORE_FILE}")


def package_file_chunks(source: Path, name: str) -> Iterator[bytes]:
    """The bytes of a file `package_files` listed, COPY_CHUNK_BYTES at a time (so a large file is never
    held whole); ArchiveError as `open_package_file`, or when reading fails half way."""
    with open_package_file(source, name) as stream:
        while True:
            try:
                chunk = stream.read(COPY_CHUNK_BYTES)
            except OSError as exc:
                raise ArchiveError(f"{name} in the package is unreadable ({exc.strerror}): remove it, or list it in "
                                   f"{IGNORE_FILE}") from None
            if not chunk:
                return
            yield chunk


def build_zip(source: Path, output: Path) -> list[str]:
    """Zip the package folder `source` as `deployment_package/<path>` into `output`; the files zipped.

    Reproducible: entries are sorted and carry a fixed timestamp and mode, so equal files give equal bytes;
    `output`'s folder is left out when it lies inside `source`. Each file is streamed into the zip, a
    chunk at a time: the bytes are those `ZipFile.writestr` of the whole file gives (the entry's size
    is known before, as it decides a ZIP64 header, and deflate's output does not depend on how its
    input is cut).
    """
    names = package_files(source, output.parent)
    if not names:
        raise ArchiveError(f"the package folder {source} has no files to zip")
    for name in names:
        if not is_unicode_text(name):  # a zip names its files in UTF-8
            raise ArchiveError(f"{name!r} in the package has a name that is not UTF-8: rename it, or list it in {IGNORE_FILE}")
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in names:
            entry = zipfile.ZipInfo(f"{PACKAGE_DIRECTORY}/{name}", date_time=FIXED_TIMESTAMP)
            entry.external_attr = FILE_MODE << 16
            entry.create_system = 3
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry._compresslevel = 9  # type: ignore[attr-defined]  # what writestr(..., compresslevel=9) sets
            chunks = package_file_chunks(source, name)
            first = next(chunks, b"")  # opened (and refused) before its entry is begun
            entry.file_size = (source / name).stat().st_size
            with archive.open(entry, "w") as sink:
                sink.write(first)
                for chunk in chunks:
                    sink.write(chunk)
    return names


def _folder_inside(folder: Path | None, source: Path) -> Path | None:
    """`folder`, resolved, when it lies strictly inside the resolved `source`; None otherwise."""
    if folder is None:
        return None
    folder = folder.resolve()
    return folder if folder != source and folder.is_relative_to(source) else None


def _check_entry(entry: zipfile.ZipInfo) -> None:
    name = entry.filename
    path = PurePosixPath(name)
    first = path.parts[0] if path.parts else ""  # `./` has no parts
    if "\x00" in name or path.is_absolute() or name.startswith("\\") or ":" in first:
        raise ArchiveError(f"the zip entry {name!r} has an absolute path")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise ArchiveError(f"the zip entry {name!r} points outside the package (..)")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise ArchiveError(f"the zip entry {name!r} is a symbolic link; packages may not contain links")
    if entry.flag_bits & ENCRYPTED:
        raise ArchiveError(f"the zip entry {name!r} is encrypted; a package zip cannot have a password")


def _copy_at_most(source, sink, limit: int, name: str) -> None:
    """Copy, trusting the entry's declared size no further than its actual bytes."""
    written = 0
    while chunk := source.read(1024 * 1024):
        written += len(chunk)
        if written > limit:
            raise ArchiveError(f"the zip entry {name!r} unpacks to more than its declared size")
        sink.write(chunk)

