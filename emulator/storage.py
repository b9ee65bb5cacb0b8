"""Bucket files on disk, under the data folder: `<data>/buckets/<bucket>/<file name>`, and each
bucket's id, description and labels in `<data>/buckets.json`.

File names are UbiOps' (they may hold `/` and spaces); no name can reach outside its bucket. A
request's own file I/O runs where `file_work` says: on the event loop when small, else in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from contract.files import CONTROL_CHARACTERS, DEFAULT_BUCKET, file_uri, split_file_uri
from contract.names import NAME_RULE, is_name
from contract.text import LONE_SURROGATE, is_unicode_text
from emulator.data_files import read_json_object
from emulator.exceptions import AlreadyExists, NotAllowed, NotSaved
from emulator.labels import has_labels
from emulator.work_folders import WorkFolders

MAX_FILE_NAME_BYTES = 1024
"""A file name's longest in UTF-8, as GCS and S3 count their object names (1023 emoji passed a limit of
1024 characters, and then made paths past the 4096 bytes Linux takes: a 500 at the upload)."""
MAX_PART_BYTES = 255
"""The longest file or folder name Linux's and macOS' file systems take."""
REQUESTS_FOLDER = "deployment_requests"
T = TypeVar("T")
INLINE_BYTES = 1024 * 1024
"""Files up to this size in all are copied or removed on the event loop, larger ones in a thread: a
thread hop costs ~0.1 ms of CPU on two cores, copying 1 MB from the page cache about as much
(BENCHMARKS.md). Starlette keeps uploads in memory up to the same size."""


async def file_work(size: int, function: Callable[..., T], *args: object) -> T:
    """`function(*args)`, file I/O over `size` bytes: here when they are few, else in a thread. Cancelled
    (the emulator stops), it still returns only once that thread is done, so that no file is written
    after the caller has cleaned up."""
    if size <= INLINE_BYTES:
        return function(*args)
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait({work})
        work.exception()  # retrieved: the caller was cancelled, and its outcome no longer matters
        raise


class StorageError(ValueError):
    """A bucket or file name that is not allowed, or a file that does not exist."""


class NotStored(StorageError):
    """No such bucket or file."""


class NameClash(StorageError):
    """A file name that is, or runs through, a stored file's or folder's path (`a` and `a/b`)."""


@dataclass(frozen=True)
class StoredBucket:
    name: str
    id: str
    """A UUID, as every UbiOps object's id (it was the bucket's name)."""
    created: datetime
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    updated: datetime | None = None
    """When its description or labels last changed (None: never since it was created)."""


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    time_created: datetime


def bucket_id(name: str) -> str:
    """The id of a bucket whose settings keep none (made by an emulator of before ids were kept): derived
    from its name, so that it stays the same across restarts. Buckets are the data folder's, served in
    whichever project the emulator serves, so the project is no part of it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ubiops-emulator/bucket/{name}"))


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.buckets = self.root / "buckets"
        self.work = WorkFolders(self.root / "work")
        self._requests = self.buckets / DEFAULT_BUCKET / REQUESTS_FOLDER
        self._incoming = self.root / "incoming"
        # The files of every request and upload, their owner's alone (0700) whatever the data folder's
        # mode: one the user made is 0755, and the files keep the umask's 0644. A kept one is made so too.
        self.root.mkdir(parents=True, exist_ok=True)
        self.buckets.mkdir(mode=0o700, exist_ok=True)
        self.buckets.chmod(0o700)
        (self.buckets / DEFAULT_BUCKET).mkdir(exist_ok=True)
        self._real_buckets = os.path.realpath(self.buckets)
        shutil.rmtree(self._incoming, ignore_errors=True)
        self._incoming.mkdir(mode=0o700)
        self._settings_path = self.root / "buckets.json"
        self._settings: dict[str, dict[str, Any]] = read_json_object(self._settings_path, "buckets' settings")
        if DEFAULT_BUCKET not in self._settings:
            self._save_settings(DEFAULT_BUCKET, {"id": str(uuid.uuid4()), "description": "", "labels": {},
                                                 "created": time.time()})
        self._settings_lock = threading.Lock()  # buckets are made and removed in threads
        self._folders_lock = threading.Lock()
        """Held to place a file in its folders, and to delete a file with the folders it empties: a
        folder made for one write is never removed by a delete before the file is in it."""

    def list_buckets(self, labels: Mapping[str, str] | None = None) -> list[StoredBucket]:
        """The buckets, by name, that carry every label given."""
        found = []
        for path in sorted(p for p in self.buckets.iterdir() if p.is_dir()):
            with contextlib.suppress(NotStored):  # deleted since it was listed: that made the whole list a 404
                found.append(self.bucket(path.name))
        return [bucket for bucket in found if has_labels(bucket.labels, labels or {})]

    def bucket_dir(self, bucket: str) -> Path:
        """An existing bucket's folder; raises NotStored if there is no such bucket. A name no bucket can
        have (`create_bucket`'s rule; `..` among them) is no bucket: it was a 400 worded for file names."""
        if not is_name(bucket) or not (self.buckets / bucket).is_dir():
            raise _unknown_bucket(bucket)
        return self.buckets / bucket

    def bucket(self, bucket: str) -> StoredBucket:
        """An existing bucket; raises StorageError if there is no such bucket."""
        folder = self.bucket_dir(bucket)
        settings = self._settings.get(bucket, {})
        # Not its folder's change time, which moves with every file added: only a bucket of a data
        # folder from before creation times were kept goes by it.
        created = settings.get("created") or folder.stat().st_ctime
        updated = settings.get("updated")
        return StoredBucket(bucket, settings.get("id") or bucket_id(bucket), datetime.fromtimestamp(created).astimezone(),
                            settings.get("description", ""), settings.get("labels", {}),
                            None if updated is None else datetime.fromtimestamp(updated).astimezone())

    def create_bucket(self, bucket: str, description: str = "", labels: dict[str, str] | None = None) -> StoredBucket:
        """A new bucket, named as deployments are (`contract.names`): the SDK refuses names past 64
        characters in every bucket it reads, so one such bucket broke `buckets_list`."""
        if not is_name(bucket):
            raise StorageError(f"bucket name {bucket!r} is not allowed: it must be {NAME_RULE}")
        with self._settings_lock:
            try:
                (self.buckets / bucket).mkdir()
            except FileExistsError:
                raise AlreadyExists(f"A bucket named {bucket!r} already exists") from None
            try:
                self._save_settings(bucket, {"id": str(uuid.uuid4()), "description": description,
                                             "labels": labels or {}, "created": time.time()})
            except NotSaved:
                shutil.rmtree(self.buckets / bucket, ignore_errors=True)
                raise
        return self.bucket(bucket)

    def update_bucket(self, bucket: str, description: str | None, labels: dict[str, str] | None) -> StoredBucket:
        """Set what is given of a bucket's description and labels (labels: all of them, as UbiOps' PATCH)."""
        current = self.bucket(bucket)
        with self._settings_lock:
            self._save_settings(bucket, {**self._settings.get(bucket, {}),
                                         "description": current.description if description is None else description,
                                         "labels": current.labels if labels is None else labels,
                                         "updated": time.time()})
        return self.bucket(bucket)

    def delete_bucket(self, bucket: str) -> None:
        """Remove a bucket with its files; the default bucket, which holds the requests' files, stays."""
        with self._settings_lock:  # checked under it too: deleted twice at once, one of them is a 404, not a 500
            folder = self.bucket_dir(bucket)
            if bucket == DEFAULT_BUCKET:
                raise NotAllowed(f"The {DEFAULT_BUCKET!r} bucket holds the deployment requests' files and cannot be deleted")
            # Gone from the API at once, however long removing its files takes; what a crash leaves
            # of it, the next start removes with the rest of `incoming/`.
            doomed = self._incoming / f"deleted-bucket-{uuid.uuid4().hex}"
            try:
                folder.rename(doomed)
            except FileNotFoundError:
                raise _unknown_bucket(bucket) from None
            try:
                self._save_settings(bucket, None)
            except NotSaved:
                doomed.rename(folder)
                raise
        shutil.rmtree(doomed)

    def _save_settings(self, bucket: str, settings: dict[str, Any] | None) -> None:
        """Write every bucket's settings with `bucket`'s changed (None: removed), whole or not at all, and
        only then take them (under the lock): NotSaved, nothing changed, when the file cannot be written
        (a full disk). Changed first, a bucket whose settings were not written was served until a restart."""
        changed = dict(self._settings)
        if settings is None:
            changed.pop(bucket, None)
        else:
            changed[bucket] = settings
        written = self._settings_path.with_suffix(".json.new")
        try:
            written.write_text(json.dumps(changed))
            os.replace(written, self._settings_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                written.unlink(missing_ok=True)
            raise NotSaved(self._settings_path, exc) from exc
        self._settings = changed

    def target(self, bucket: str, name: str) -> Path:
        """Where a file of this name is stored; raises StorageError unless the bucket exists and the
        name stays inside it, and is not the folder of the requests' files (a file there, every request
        with a file failed: its input or output could not be kept)."""
        path = self.in_bucket(bucket, name)
        if bucket == DEFAULT_BUCKET and name == REQUESTS_FOLDER:
            raise StorageError(f"file name {name!r} is the folder of the deployment requests' files in the "
                               f"{DEFAULT_BUCKET!r} bucket; choose another")
        return path

    def in_bucket(self, bucket: str, name: str) -> Path:
        """Where a file of an existing bucket is (`path`), the bucket looked for first: each call on one file
        of a missing bucket says the bucket does not exist (`files_get`, `files_download` and `files_delete`
        said the file did not exist in it), as `files_list` and `files_upload` do."""
        self.bucket_dir(bucket)
        return self.path(bucket, name)

    def write(self, bucket: str, name: str, source: BinaryIO) -> StoredFile:
        """Store a file whole or not at all: readers never see half an upload."""
        return self._store(bucket, name, self.target(bucket, name), source)

    def write_request_input(self, request_id: str, file_name: str, source: BinaryIO) -> str:
        """Keep a file sent with a request (multipart) at `deployment_requests/<id>/input/<name>`,
        beside the request's `output/`, so its input stays retrievable; its name in the bucket. Not in a
        folder per field and position: on this machine's ext4 each folder made costs ~0.15 ms. Not checked
        for links as `write` checks a caller's name: the request's folder is the emulator's own, made
        for this request, so nothing in it can be one (storing a file took 0.19-0.22 ms of CPU with the check,
        0.16 ms without)."""
        check_name(file_name, "file name")
        name = f"{REQUESTS_FOLDER}/{request_id}/input/{file_name}"
        self._store(DEFAULT_BUCKET, name, self.request_dir(request_id) / "input" / file_name, source)
        return name

    def _store(self, bucket: str, name: str, target: Path, source: BinaryIO) -> StoredFile:
        partial = self._incoming / uuid.uuid4().hex
        try:
            with partial.open("wb") as sink:
                shutil.copyfileobj(source, sink)
                sink.flush()
                info = os.fstat(sink.fileno())  # not `stat`: checking the name again costs ~0.05 ms
            try:
                with _fits(name):
                    self._place(bucket, partial, target)
            except FileNotFoundError:
                raise _unknown_bucket(bucket) from None
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise NameClash(f"{name!r} clashes with a stored file or folder: a name cannot be both a file "
                                "and the folder of another file") from None
        finally:
            partial.unlink(missing_ok=True)
        return _stored_file(name, info)

    def _place(self, bucket: str, partial: Path, target: Path) -> None:
        """Move a copied file to `target`, making the folders between `bucket`'s folder and it. Never the
        bucket's own folder: deleted while the bytes were copied, the bucket stays deleted (made again, it
        came back without its settings), and this raises FileNotFoundError."""
        with self._folders_lock:
            try:
                os.replace(partial, target)
            except FileNotFoundError:  # a folder is missing: made once it is needed, not looked for each time
                folder = self.buckets / bucket
                for part in target.parent.relative_to(folder).parts:
                    folder /= part
                    folder.mkdir(exist_ok=True)
                os.replace(partial, target)

    def stat(self, bucket: str, name: str) -> StoredFile:
        path = self.in_bucket(bucket, name)
        with _fits(name):
            if not path.is_file():
                raise _unknown_file(bucket, name)
            return _stored_file(name, path.stat())

    def open(self, bucket: str, name: str) -> BinaryIO:
        """A stored file, open to read: deleted from now on, it is still read whole (a check, then an open
        by name, failed for a file deleted between the two)."""
        try:
            with _fits(name):
                return self.in_bucket(bucket, name).open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise _unknown_file(bucket, name) from None

    def delete(self, bucket: str, name: str) -> None:
        """Remove a file and the folders it leaves empty, up to its bucket's: else `a/b` deleted still
        kept `a` from being a file's name, though no listing showed it."""
        path, root = self.in_bucket(bucket, name), self.buckets / bucket
        with self._folders_lock:
            self.stat(bucket, name)  # a folder is no file
            try:
                path.unlink()
            except FileNotFoundError:  # removed past the lock since (a request's, by the retention sweep)
                raise _unknown_file(bucket, name) from None
            folder = path.parent
            with contextlib.suppress(OSError):  # up to the first that is not empty (or is a link, which stays)
                while folder != root:
                    folder.rmdir()
                    folder = folder.parent

    def list(self, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "", *, limit: int
             ) -> tuple[list[StoredFile], list[str], str | None]:
        """Files and (with a delimiter) common prefixes, S3-style, in the order of their names, at most
        `limit` of both together (as GCS counts `maxResults`); the last value continues the listing: the
        last name or prefix of this page, the next page starting after it (after every name under a
        prefix). The walk starts at the prefix's deepest folder and stops once the page is full."""
        root = str(self.bucket_dir(bucket))
        folder = prefix[: prefix.rfind("/") + 1]  # "a/b/" of the prefix "a/b/c", "" of "c"
        if folder and not _plain_folder(root, folder):
            return [], [], None
        files: list[StoredFile] = []
        prefixes: list[str] = []
        # Under this prefix, every name is passed: the one the listing continues from, then each one listed.
        covered = start_after if delimiter and start_after.startswith(prefix) and delimiter in start_after[len(prefix):] \
            else None
        last = None

        def skip(key: str) -> bool:
            """Whether no name `key` starts with is listed from here on (`key`: a file's name, or a
            folder's and `/`)."""
            if covered is not None and key.startswith(covered):
                return True
            if key.endswith("/"):  # a folder: are all its names before `start_after`, or none under the prefix?
                return (key < start_after and not start_after.startswith(key)) or \
                    not (key.startswith(prefix) or prefix.startswith(key))
            return key <= start_after or not key.startswith(prefix)

        for name, entry in _walk(root, folder, skip):
            rest = name[len(prefix):]
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)] if delimiter and delimiter in rest else None
            if len(files) + len(prefixes) == limit:
                return files, prefixes, last
            if common is not None:
                prefixes.append(common)
                covered = last = common
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted since its folder was read
                continue
            files.append(_stored_file(name, info))
            last = name
        return files, prefixes, None

    def path(self, bucket: str, name: str) -> Path:
        """Where a bucket file lives; raises StorageError for names that could escape the bucket (`check_name`
        refuses `..`, so only a link could). On strings with `os.path.realpath`, not `Path.resolve`: an
        image request checks three paths, and this took its event loop's user CPU from 1.90 to 1.80 ms
        (medians of six alternated runs of `bench/app_cpu.py --image`). The bucket's own folder is
        resolved only when the file is not found inside it as named (the folder is a link): 37 → 28 µs
        a call. A bucket name no bucket can have is no bucket (`bucket_dir`)."""
        if not is_name(bucket):
            raise _unknown_bucket(bucket)
        check_name(name, "file name")
        root = os.path.join(self.buckets, bucket)
        path = os.path.join(root, name)
        real = os.path.realpath(path)
        if not (real.startswith(os.path.join(root, "")) or real.startswith(os.path.join(os.path.realpath(root), ""))):
            raise StorageError(f"file name {name!r} points outside its bucket")
        return Path(path)

    def locate(self, path: Path) -> tuple[str, str]:
        """The bucket and file name of a file stored under the buckets folder."""
        real, buckets = os.path.realpath(path), os.path.join(self._real_buckets, "")
        if not real.startswith(buckets):
            raise ValueError(f"{path} is not under the buckets folder {self._real_buckets}")
        bucket, _, name = real[len(buckets):].partition(os.sep)
        return bucket, name

    def uri(self, path: Path) -> str:
        """The `ubiops-file://` URI of a stored file."""
        return file_uri(*self.locate(path))

    def resolve_uri(self, uri: str) -> Path:
        """The stored file a `ubiops-file://bucket/name` URI names; raises StorageError if there is none."""
        bucket, name = split_file_uri(uri)
        path = self.path(bucket, name)
        with _fits(name):
            if not path.is_file():
                raise NotStored(f"{uri} is a folder, not a file" if path.is_dir() else f"file {uri} does not exist")
        return path

    def request_dir(self, request_id: str) -> Path:
        """Where a request's files are kept, as UbiOps does: `deployment_requests/<id>/` of the default
        bucket (request ids are the emulator's own UUIDs, so this is never a path a caller chose)."""
        return self._requests / request_id

    def request_output_dir(self, request_id: str) -> Path:
        """Where a request's output files are kept: `deployment_requests/<id>/output/`."""
        return self._requests.joinpath(request_id, "output")

    def remove_request_output(self, request_id: str) -> None:
        """Delete the output files kept for a request that did not complete: UbiOps keeps the files of
        a result, and a failed request has none (its folder goes too when no input file is in it)."""
        shutil.rmtree(self.request_output_dir(request_id), ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(self.request_dir(request_id))

    def remove_request_files(self, request_id: str) -> None:
        """Delete a request's input and output files, with the request (it was deleted or expired)."""
        shutil.rmtree(self.request_dir(request_id), ignore_errors=True)


def _unknown_bucket(bucket: str) -> NotStored:
    return NotStored(f"bucket {bucket!r} does not exist")


def _unknown_file(bucket: str, name: str) -> NotStored:
    return NotStored(f"file {name!r} does not exist in bucket {bucket!r}")


def _walk(root: str, folder: str, skip: Callable[[str], bool]) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """The files under `folder` ("" or a name ending in `/`) of the bucket folder `root`, each as its name
    and its entry, in the order of their names: each folder's entries are sorted by name, a folder's as
    its name and `/`, which is where its files' names fall (`a.txt`, `a/b`, `a0`). A folder enters the
    walk, and a file comes out of it, only if `skip` does not rule out its name (a folder's: its name and
    `/`). Links are neither listed nor followed (as `Path.rglob` did not follow them to folders); a folder
    deleted meanwhile is passed over (Path.rglob raised FileNotFoundError: a 500 for a listing made while
    requests were deleted)."""
    stack = [_sorted_entries(root, folder)]
    while stack:
        found = next(stack[-1], None)
        if found is None:
            stack.pop()
        elif skip(found[0]):
            continue
        elif found[0].endswith("/"):
            stack.append(_sorted_entries(root, found[0]))
        else:
            yield found


def _sorted_entries(root: str, folder: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """A folder's files and folders (a folder's name ending in `/`), sorted by name; none if it is gone."""
    try:
        with os.scandir(os.path.join(root, folder)) as entries:
            found = [(folder + entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""), entry)
                     for entry in entries
                     if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)]
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            return iter(())
        raise
    return iter(sorted(found, key=lambda item: item[0]))


def _plain_folder(root: str, folder: str) -> bool:
    """Whether `folder` (a name ending in `/`) could hold files of the bucket folder `root`: a name no
    file's folder can have holds none (`../`, `a//`), and a walk from the bucket's top reaches no file
    through a link to a folder."""
    try:
        check_name(folder[:-1], "folder")
    except StorageError:
        return False
    return os.path.realpath(os.path.join(root, folder)) == os.path.join(os.path.realpath(root), folder[:-1])


@contextlib.contextmanager
def _fits(name: str) -> Iterator[None]:
    """The file system's refusal of a path too long (ENAMETOOLONG) as the StorageError of a name too long:
    a name within MAX_FILE_NAME_BYTES still makes a path past Linux's 4096 bytes in a deep enough data
    folder, and some file systems take names of fewer than 255 bytes."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        raise StorageError(f"file name {name!r} is too long for the file system the data folder is on") from None


def _stored_file(name: str, info: os.stat_result) -> StoredFile:
    return StoredFile(name, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))


def check_name(name: str, what: str) -> None:
    parts, encoded = name.split("/"), name.encode(errors="surrogatepass")
    if not name or len(encoded) > MAX_FILE_NAME_BYTES:
        raise StorageError(f"{what} must be 1 to {MAX_FILE_NAME_BYTES} bytes long in UTF-8")
    if not is_unicode_text(name):  # a folder of that name would break every listing of its parent
        raise StorageError(f"{what} {name!r} holds {LONE_SURROGATE}")
    if CONTROL_CHARACTERS.search(name):  # shown escaped: a newline would break the message's line
        raise StorageError(f"{what} {name!r} holds a control character (a newline, a NUL byte…)")
    if "\\" in name:  # the name as written: its repr doubled each backslash, and the JSON answer did again
        raise StorageError(f"{what} '{name}' holds a backslash; folders are separated by '/'")
    if name.startswith("/") or ".." in parts or "." in parts:
        raise StorageError(f"{what} {name!r} must be a relative path without '.' or '..' parts")
    if "" in parts:
        raise StorageError(f"{what} {name!r} has an empty part (a trailing or doubled '/'): it would be stored "
                           "under the name without it")
    if any(len(part) > MAX_PART_BYTES for part in encoded.split(b"/")):
        raise StorageError(f"{what} has a part (between slashes) longer than {MAX_PART_BYTES} bytes, which no file "
                           "system stores")
