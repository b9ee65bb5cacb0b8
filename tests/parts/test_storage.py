"""In process, in milliseconds: bucket files on disk (`emulator.storage`) — names that stay inside their
bucket, whole-or-nothing writes, S3-style listings, `ubiops-file://` URIs both ways."""

from __future__ import annotations

import io

import pytest

from emulator.exceptions import AlreadyExists
from emulator.storage import NotStored, Storage, StorageError


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(tmp_path / "data")


def test_a_written_file_is_read_listed_and_deleted(storage):
    stored = storage.write("default", "sub dir/a b.txt", io.BytesIO(b"hello"))
    assert (stored.name, stored.size) == ("sub dir/a b.txt", 5)
    assert storage.resolve_uri("ubiops-file://default/sub dir/a b.txt").read_bytes() == b"hello"
    assert storage.uri(storage.path("default", "sub dir/a b.txt")) == "ubiops-file://default/sub dir/a b.txt"
    storage.delete("default", "sub dir/a b.txt")
    with pytest.raises(NotStored, match="does not exist"):
        storage.stat("default", "sub dir/a b.txt")


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\0b", ""])
def test_no_name_reaches_outside_its_bucket(storage, name):
    with pytest.raises(StorageError):
        storage.write("default", name, io.BytesIO(b"x"))
    assert sorted(p.name for p in storage.root.iterdir()) == ["buckets", "work"], "nothing was written outside"


def test_a_failed_write_leaves_nothing_behind(storage):
    class Broken(io.BytesIO):
        def read(self, *args):
            raise OSError("the client went away")

    with pytest.raises(OSError):
        storage.write("default", "half.bin", Broken())
    assert not storage.path("default", "half.bin").exists()
    assert list((storage.root / "incoming").iterdir()) == []


def test_listing_pages_and_groups_by_delimiter(storage):
    for name in ("a/1.txt", "a/2.txt", "b/1.txt", "c.txt"):
        storage.write("default", name, io.BytesIO(b"."))
    files, prefixes, more = storage.list("default", delimiter="/")
    assert ([f.name for f in files], prefixes, more) == (["c.txt"], ["a/", "b/"], None)
    first, _, after = storage.list("default", prefix="a/", limit=1)
    second, _, last = storage.list("default", prefix="a/", start_after=after or "", limit=1)
    assert ([f.name for f in first + second], last) == (["a/1.txt", "a/2.txt"], None)


def test_buckets_are_created_once(storage):
    assert storage.create_bucket("images").name == "images"
    with pytest.raises(AlreadyExists):
        storage.create_bucket("images")
    with pytest.raises(NotStored, match="bucket 'nope' does not exist"):
        storage.write("nope", "a.txt", io.BytesIO(b"x"))
