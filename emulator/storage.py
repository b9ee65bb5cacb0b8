"""Bucket files on disk, under the data folder: `<data>/buckets/<bucket>/<file name>`.

File names are UbiOps' (they may hold `/` and spaces); no name can reach outside its bucket.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

URI_SCHEME = "ubiops-file://"
DEFAULT_BUCKET = "default"
MAX_NAME_LENGTH = 1024


class StorageError(ValueError):
    """A bucket or file name that is not allowed, or a file that does not exist."""


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.buckets = self.root / "buckets"
        self.work = self.root / "work"
        (self.buckets / DEFAULT_BUCKET).mkdir(parents=True, exist_ok=True)

    def path(self, bucket: str, name: str) -> Path:
        """Where a bucket file lives; raises StorageError for names that could escape the bucket."""
        check_name(bucket, "bucket name")
        check_name(name, "file name")
        path = (self.buckets / bucket).joinpath(*PurePosixPath(name).parts)
        if not path.resolve().is_relative_to((self.buckets / bucket).resolve()):
            raise StorageError(f"file name {name!r} points outside its bucket")
        return path

    def locate(self, path: Path) -> tuple[str, str]:
        """The bucket and file name of a file stored under the buckets folder."""
        bucket, *parts = path.resolve().relative_to(self.buckets.resolve()).parts
        return bucket, "/".join(parts)

    def uri(self, path: Path) -> str:
        """The `ubiops-file://` URI of a stored file."""
        bucket, name = self.locate(path)
        return f"{URI_SCHEME}{bucket}/{name}"

    def resolve_uri(self, uri: str) -> Path:
        """The stored file a `ubiops-file://bucket/name` URI names; raises StorageError if there is none."""
        bucket, _, name = uri.removeprefix(URI_SCHEME).partition("/")
        path = self.path(bucket, name)
        if not path.is_file():
            raise StorageError(f"file {uri} does not exist")
        return path

    def request_output_dir(self, request_id: str) -> Path:
        """Where a request's output files are kept, as UbiOps does: `deployment_requests/<id>/output/`."""
        return self.buckets / DEFAULT_BUCKET / "deployment_requests" / request_id / "output"

    def request_work_dir(self, request_id: str) -> Path:
        """Scratch space for a request's input files; removed when the request ends."""
        return self.work / request_id

    def remove_work_dir(self, request_id: str) -> None:
        shutil.rmtree(self.request_work_dir(request_id), ignore_errors=True)


def is_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(URI_SCHEME)


def check_name(name: str, what: str) -> None:
    parts = PurePosixPath(name).parts
    if not name or len(name) > MAX_NAME_LENGTH:
        raise StorageError(f"{what} must be 1 to {MAX_NAME_LENGTH} characters")
    if "\x00" in name or "\\" in name:
        raise StorageError(f"{what} {name!r} holds a NUL byte or a backslash")
    if name.startswith("/") or ".." in parts or "." in name.split("/"):
        raise StorageError(f"{what} {name!r} must be a relative path without '.' or '..' parts")
