"""In process, in milliseconds: bucket files on disk (`emulator.storage`) — names that stay inside their
bucket, whole-or-nothing writes, S3-style listings, `ubiops-file://` URIs both ways."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest

from emulator.api.routes_storage import storage_download
from emulator.exceptions import AlreadyExists
from emulator.signing import Signer
from emulator.storage import INLINE_BYTES, NotStored, Storage, StorageError, file_work


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


def test_stored_files_are_their_owner_s_alone(tmp_path):
    """In a data folder the user made (0755), bucket files (a request's input and output, uploads) and the
    private copies of input files kept the umask's 0644 in 0755 folders: readable by every user of the
    machine. Their folders are 0700, a kept `buckets/` too."""
    data = tmp_path / "data"
    (data / "buckets" / "default").mkdir(parents=True)
    for folder in (data, data / "buckets", data / "buckets" / "default"):
        folder.chmod(0o755)
    storage = Storage(data)
    storage.write("default", "a.txt", io.BytesIO(b"secret"))
    copies = storage.work.plan("request")
    copies.add(storage.path("default", "a.txt"))
    storage.work.copy(copies)
    for folder in ("buckets", "incoming", "work"):
        assert stat.S_IMODE((data / folder).stat().st_mode) == 0o700, folder
    assert (data / "work" / "request" / "0" / "a.txt").read_bytes() == b"secret"


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\0b", ""])
def test_no_name_reaches_outside_its_bucket(storage, name):
    with pytest.raises(StorageError):
        storage.write("default", name, io.BytesIO(b"x"))
    assert sorted(p.name for p in storage.root.iterdir()) == ["buckets", "buckets.json", "incoming", "work"]
    assert not any((storage.root / "incoming").iterdir()), "nothing was written outside"


def test_a_link_inside_a_bucket_leads_nowhere_outside_it(storage, tmp_path):
    """A link someone made in the bucket's folder (the API makes none) is refused as a way out, by name
    and by URI, for reading and writing; a link that stays inside the bucket still works."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the bucket's")
    bucket = storage.root / "buckets" / "default"
    (bucket / "out").symlink_to(outside)
    (bucket / "real").mkdir()
    (bucket / "real" / "kept.txt").write_text("inside")
    (bucket / "alias").symlink_to(bucket / "real")
    for attempt in (lambda: storage.path("default", "out/secret.txt"),
                    lambda: storage.resolve_uri("ubiops-file://default/out/secret.txt"),
                    lambda: storage.write("default", "out/new.txt", io.BytesIO(b"x"))):
        with pytest.raises(StorageError, match="points outside its bucket"):
            attempt()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert storage.resolve_uri("ubiops-file://default/alias/kept.txt").read_text() == "inside"
    with pytest.raises(ValueError, match="not under the buckets folder"):
        storage.uri(outside / "secret.txt")


def test_a_bucket_whose_folder_is_a_link_keeps_its_files(storage, tmp_path):
    """Where the bucket's folder really lives does not matter: its files are inside it."""
    elsewhere = tmp_path / "big-disk"
    elsewhere.mkdir()
    (storage.root / "buckets" / "images").symlink_to(elsewhere)
    storage.write("images", "a/b.txt", io.BytesIO(b"kept"))
    assert (elsewhere / "a" / "b.txt").read_bytes() == b"kept"
    assert storage.resolve_uri("ubiops-file://images/a/b.txt").read_bytes() == b"kept"


def test_a_failed_write_leaves_nothing_behind(storage):
    class Broken(io.BytesIO):
        def read(self, *args):
            raise OSError("the client went away")

    with pytest.raises(OSError):
        storage.write("default", "half.bin", Broken())
    assert not storage.path("default", "half.bin").exists()
    assert list((storage.root / "incoming").iterdir()) == []


def test_a_file_removed_by_another_while_it_is_deleted_is_not_stored(storage):
    """Another remover (the retention sweep clearing a request's files) can take the file between the
    delete's check and its unlink, here at once after the check: before, a FileNotFoundError (a 500)."""
    storage.write("default", "contested.txt", io.BytesIO(b"x"))

    def remove_after_the_check(frame, event, arg) -> None:
        if event == "return" and frame.f_code is Storage.stat.__code__:
            storage.path("default", "contested.txt").unlink()

    sys.setprofile(remove_after_the_check)
    try:
        with pytest.raises(NotStored, match="does not exist in bucket 'default'"):
            storage.delete("default", "contested.txt")
    finally:
        sys.setprofile(None)


def test_a_download_answered_before_its_file_is_deleted_still_arrives_whole(storage):
    """The signed GET is answered, then the file is deleted (`files_delete` in a thread) before the answer
    is sent: before, the answer looked for the file again by name, and failed (a 500, a dropped connection)."""
    storage.write("default", "dir/late.txt", io.BytesIO(b"still here"))
    signer = Signer()
    signed = dict(parse_qsl(signer.query("GET", "default/dir/late.txt")))
    services = SimpleNamespace(storage=storage, signer=signer)  # the two parts of Services the route uses
    sent: list[dict] = []

    async def download() -> None:
        response = await storage_download("default", "dir/late.txt", signed["expires"], signed["signature"], services)
        storage.delete("default", "dir/late.txt")
        await response({"type": "http", "method": "GET", "headers": [], "asgi": {"spec_version": "2.4"}},
                       None, lambda message: asyncio.sleep(0, sent.append(message)))

    asyncio.run(download())
    assert sent[0]["status"] == 200 and (b"content-length", b"10") in sent[0]["headers"]
    assert (b"content-disposition", b'attachment; filename="late.txt"') in sent[0]["headers"]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"still here"
    with pytest.raises(NotStored, match="does not exist in bucket"):
        asyncio.run(storage_download("default", "dir/late.txt", signed["expires"], signed["signature"], services))


@pytest.mark.parametrize("name", ["top.txt", "in/a/folder.txt"])
def test_a_bucket_deleted_while_a_file_is_written_into_it_stays_deleted(storage, name):
    """Before, the write made the file's folders with the bucket's own: the bucket came back, its
    description gone, holding the one file."""
    storage.create_bucket("brief", "described")

    class DeletesTheBucket(io.BytesIO):
        def read(self, *args):
            if self.tell() == 0:
                storage.delete_bucket("brief")
            return super().read(*args)

    with pytest.raises(NotStored, match="bucket 'brief' does not exist"):
        storage.write("brief", name, DeletesTheBucket(b"late bytes"))
    assert [b.name for b in storage.list_buckets()] == ["default"]
    assert list((storage.root / "incoming").iterdir()) == []


def test_listing_pages_and_groups_by_delimiter(storage):
    for name in ("a/1.txt", "a/2.txt", "b/1.txt", "c.txt"):
        storage.write("default", name, io.BytesIO(b"."))
    files, prefixes, more = storage.list("default", delimiter="/", limit=1000)
    assert ([f.name for f in files], prefixes, more) == (["c.txt"], ["a/", "b/"], None)
    first, _, after = storage.list("default", prefix="a/", limit=1)
    second, _, last = storage.list("default", prefix="a/", start_after=after or "", limit=1)
    assert ([f.name for f in first + second], last) == (["a/1.txt", "a/2.txt"], None)


def test_a_listing_page_counts_prefixes_toward_its_limit_and_the_next_continues_after_them(storage):
    """Files and prefixes together fill a page, as GCS's `maxResults` counts them: before, prefixes were
    not counted (`limit=1` with the delimiter `/` answered 20 000 prefixes). Paged, the listing is the
    whole listing, in order, nothing skipped or repeated (a prefix once came again on the next page)."""
    names = ("a/1.txt", "a/2.txt", "a.txt", "a0", "b/1.txt", "b/c/2.txt", "b/d/3.txt", "c.txt", "d/1.txt")
    for name in names:
        storage.write("default", name, io.BytesIO(b"."))
    files, prefixes, _ = storage.list("default", delimiter="/", limit=1)
    assert ([f.name for f in files], prefixes) == (["a.txt"], [])
    for prefix, limit, whole in (
        ("", 1, [["a.txt"], ["a/"], ["a0"], ["b/"], ["c.txt"], ["d/"]]),
        ("", 2, [["a.txt", "a/"], ["a0", "b/"], ["c.txt", "d/"]]),
        ("", 4, [["a.txt", "a/", "a0", "b/"], ["c.txt", "d/"]]),
        ("b/", 2, [["b/1.txt", "b/c/"], ["b/d/"]]),
        ("a", 2, [["a.txt", "a/"], ["a0"]]),
    ):
        pages, after = [], ""
        while after is not None:
            files, prefixes, after = storage.list("default", prefix=prefix, delimiter="/", start_after=after, limit=limit)
            pages.append(sorted([f.name for f in files] + prefixes))
        assert pages == whole, (prefix, limit)
    pages, after = [], ""
    while after is not None:
        files, prefixes, after = storage.list("default", start_after=after, limit=4)
        assert prefixes == []
        pages.append([f.name for f in files])
    assert pages == [sorted(names)[:4], sorted(names)[4:8], sorted(names)[8:]]


def test_a_listing_reads_only_the_folders_its_page_needs(storage, monkeypatch):
    """Before, every page walked the whole bucket (1.1 s a page at 20 000 files, even for a prefix that
    matched none): the walk starts at the prefix's deepest folder and stops once its page is full."""
    for n in range(30):
        storage.write("default", f"many/{n:02d}/f.txt", io.BytesIO(b"."))
    read: list[str] = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": read.append(os.fspath(path)) or scandir(path))
    assert storage.list("default", prefix="nothing/matches", limit=1000) == ([], [], None)
    assert len(read) <= 1, read
    read.clear()
    files, _, after = storage.list("default", prefix="many/", limit=2)
    assert ([f.name for f in files], after) == (["many/00/f.txt", "many/01/f.txt"], "many/01/f.txt")
    assert len(read) <= 4, read
    read.clear()
    files, prefixes, after = storage.list("default", prefix="many/2", delimiter="/", limit=3)
    assert (files, prefixes, after) == ([], ["many/20/", "many/21/", "many/22/"], "many/22/")
    assert len(read) <= 5, read


def test_a_listing_passes_over_what_is_deleted_while_it_walks(storage, monkeypatch):
    """Requests deleted (their folders with them) while the default bucket is listed: before, the walk
    (`Path.rglob`) raised FileNotFoundError for a folder deleted since its parent was read, a 500 for
    `files_list` while `POST …/requests/delete` ran. Here, once the walk has read the first folder below
    the top (`a/`), the files of the other folders go, and one of its own, read with it."""
    for name in ("a/1.txt", "a/2.txt", "b/1.txt", "b/c/2.txt", "c/1.txt", "top.txt"):
        storage.write("default", name, io.BytesIO(b"."))
    top, scandir = str(storage.root / "buckets" / "default"), os.scandir
    deleted: list[str] = []

    class ReadAtOnce(list):  # what os.scandir gives, read before the files go
        def __enter__(self):
            return iter(self)

        def __exit__(self, *exc_info) -> None:
            pass

    def scandir_then_delete(path="."):
        with scandir(path) as entries:
            read = ReadAtOnce(entries)
        if os.path.relpath(path, top) != "." and not deleted:
            for name in ("a/2.txt", "b/1.txt", "b/c/2.txt", "c/1.txt"):
                storage.delete("default", name)
                deleted.append(name)
        return read

    monkeypatch.setattr(os, "scandir", scandir_then_delete)
    files, _, after = storage.list("default", limit=1000)
    assert ([f.name for f in files], after) == (["a/1.txt", "top.txt"], None)


def test_buckets_are_created_once(storage):
    assert storage.create_bucket("images").name == "images"
    with pytest.raises(AlreadyExists):
        storage.create_bucket("images")
    with pytest.raises(NotStored, match="bucket 'nope' does not exist"):
        storage.write("nope", "a.txt", io.BytesIO(b"x"))


@pytest.mark.parametrize("name", ["a" * 65, "with space", "Upper", "café", "-dash", "dash-", "a/b", "a_b"])
def test_a_bucket_is_named_as_a_deployment(storage, name):
    """Before, any name up to 1024 characters was taken: one past 64 made the SDK raise ValueError on
    every `buckets_list` (its models cap bucket names at 64)."""
    with pytest.raises(StorageError, match=r"bucket name .* is not allowed: it must be lowercase letters, digits and "
                                           r"dashes, not starting or ending with a dash, at most 64 characters"):
        storage.create_bucket(name)
    assert [b.name for b in storage.list_buckets()] == ["default"]
    assert storage.create_bucket("a" * 64).name == "a" * 64


def test_a_path_too_long_for_the_file_system_is_a_storage_error(tmp_path):
    """A name within the limits (1004 bytes, parts of 200) in a data folder deep enough that its path
    passes Linux's 4096 bytes: before, each call raised the OSError ENAMETOOLONG (a 500, or a request
    failed with `[Errno 36] File name too long: '<the data folder>/…'`)."""
    deep = tmp_path.joinpath(*["d" * 250] * ((3300 - len(str(tmp_path))) // 251))
    deep.mkdir(parents=True)
    storage, name = Storage(deep / "data"), "/".join(["n" * 200] * 5)
    for call in (lambda: storage.write("default", name, io.BytesIO(b"x")), lambda: storage.stat("default", name),
                 lambda: storage.open("default", name), lambda: storage.delete("default", name),
                 lambda: storage.resolve_uri(f"ubiops-file://default/{name}")):
        with pytest.raises(StorageError, match="is too long for the file system the data folder is on"):
            call()
    assert storage.list("default", prefix=f"{name}/", limit=1000) == ([], [], None)


def test_no_file_takes_the_place_of_the_requests_folder(storage):
    """A file `deployment_requests` in the default bucket (before its folder was made, or once it was
    emptied) kept every request's input and output files from being stored."""
    with pytest.raises(StorageError, match="'deployment_requests' is the folder of the deployment requests' files"):
        storage.write("default", "deployment_requests", io.BytesIO(b"x"))
    assert storage.write_request_input("r1", "in.txt", io.BytesIO(b"i")) == "deployment_requests/r1/input/in.txt"
    storage.create_bucket("other")
    assert storage.write("other", "deployment_requests", io.BytesIO(b"x")).size == 1


def test_a_bucket_deleted_twice_at_once_is_deleted_once_and_not_found_once(storage):
    """The second delete starts once the first has found the bucket: before, both found it (outside the
    lock), and the second's rename raised FileNotFoundError, a 500 (8 parallel DELETEs: some 500s)."""
    storage.create_bucket("twice")
    outcomes: list[str] = []

    def delete() -> None:
        try:
            storage.delete_bucket("twice")
            outcomes.append("deleted")
        except NotStored:
            outcomes.append("not found")
        except Exception as exc:  # the outcome is the test
            outcomes.append(repr(exc))

    second = threading.Thread(target=delete)

    def start_the_second_once_found(frame, event, arg) -> None:
        if event == "return" and frame.f_code is Storage.bucket_dir.__code__ and not second.is_alive():
            second.start()
            second.join(0.5)  # done at once unless the first holds the lock: then it waits for it

    sys.setprofile(start_the_second_once_found)
    try:
        delete()
    finally:
        sys.setprofile(None)
    second.join()
    assert sorted(outcomes) == ["deleted", "not found"]


def test_a_bucket_deleted_while_buckets_are_listed_is_left_out(storage):
    """Before, a bucket deleted once its folder was seen, before it was read, made the whole listing a 404."""
    for name in ("first", "second"):
        storage.create_bucket(name)
    deleted = []

    def delete_second_once_seen(frame, event, arg) -> None:
        if event == "return" and frame.f_code is Path.is_dir.__code__ and frame.f_locals["self"].name == "second" \
                and not deleted:
            storage.delete_bucket("second")
            deleted.append("second")

    sys.setprofile(delete_second_once_seen)
    try:
        listed = storage.list_buckets()
    finally:
        sys.setprofile(None)
    assert [b.name for b in listed] == ["default", "first"]


def test_cancelled_file_work_waits_for_its_thread():
    """A large file is stored in a thread: cancelling its caller (the emulator stopping) must not let
    the caller clean up while the thread still writes."""
    finished = threading.Event()

    def slow_write() -> None:
        time.sleep(0.3)
        finished.set()

    async def cancel_midway() -> bool:
        work = asyncio.ensure_future(file_work(INLINE_BYTES + 1, slow_write))
        await asyncio.sleep(0.05)
        work.cancel()
        with pytest.raises(asyncio.CancelledError):
            await work
        return finished.is_set()

    assert asyncio.run(cancel_midway()), "the thread was still writing when the cancellation reached the caller"
