"""Buckets and files through the real SDK's own helpers (`upload_file`, `download_file`), file
inputs by URI, file outputs as URIs, and the storage's refusal of names that could escape it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, eventually, start_emulator, zip_bytes
from ubiops.utils import download_file, upload_file

from emulator.storage import INLINE_BYTES
from emulator.work_folders import SPARE_PREFIX


@pytest.fixture(scope="module")
def files_emulator(emulators):
    return emulators("files")


def client_for(emulator) -> ubiops.ApiClient:
    return emulator.sdk().api_client


def test_upload_get_list_download_delete_with_the_sdk(files_emulator, tmp_path):
    source = tmp_path / "in put.txt"
    source.write_bytes(b"hello bucket")
    client = client_for(files_emulator)
    uri = upload_file(client, PROJECT, str(source), file_name="sub dir/in put.txt", _progress_bar=False)
    assert uri == "ubiops-file://default/sub dir/in put.txt"
    api = files_emulator.sdk()
    item = api.files_get(PROJECT, "default", "sub dir/in put.txt")
    assert (item.file, item.size) == ("sub dir/in put.txt", 12)
    listing = api.files_list(PROJECT, "default", prefix="sub", delimiter="/")
    assert listing.prefixes == ["sub dir/"] and listing.files == []
    listing = api.files_list(PROJECT, "default", prefix="sub dir/")
    assert [f.file for f in listing.files] == ["sub dir/in put.txt"]
    out = tmp_path / "out"
    out.mkdir()
    download_file(client, PROJECT, file_uri=uri, output_path=str(out))
    assert (out / "in put.txt").read_bytes() == b"hello bucket"
    api.files_delete(PROJECT, "default", "sub dir/in put.txt")
    with pytest.raises(ubiops.ApiException) as error:
        api.files_get(PROJECT, "default", "sub dir/in put.txt")
    assert error.value.status == 404


def test_listing_pages_with_a_continuation_token(files_emulator, tmp_path):
    client = client_for(files_emulator)
    for n in range(5):
        (tmp_path / f"{n}.txt").write_text(str(n))
        upload_file(client, PROJECT, str(tmp_path / f"{n}.txt"), file_name=f"paged/{n}.txt", _progress_bar=False)
    api = files_emulator.sdk()
    first = api.files_list(PROJECT, "default", prefix="paged/", limit=2)
    second = api.files_list(PROJECT, "default", prefix="paged/", limit=2, continuation_token=first.continuation_token)
    rest = api.files_list(PROJECT, "default", prefix="paged/", limit=2, continuation_token=second.continuation_token)
    names = [f.file for page in (first, second, rest) for f in page.files]
    assert names == [f"paged/{n}.txt" for n in range(5)] and rest.continuation_token is None


def test_a_listing_without_a_limit_is_a_page_of_50_as_on_ubiops(files_emulator):
    """Before, 1000: a caller that ignored `continuation_token` saw every file here, and lost files on UbiOps."""
    api = files_emulator.sdk()
    api.buckets_create(PROJECT, {"name": "fifty-five"})
    names = [f"{n:02}.txt" for n in range(55)]
    for name in names:
        assert httpx.put(api.files_upload(PROJECT, "fifty-five", name).url, content=b"x").status_code == 201
    first = api.files_list(PROJECT, "fifty-five")
    assert [f.file for f in first.files] == names[:50] and first.continuation_token == names[49]
    rest = api.files_list(PROJECT, "fifty-five", continuation_token=first.continuation_token)
    assert [f.file for f in rest.files] == names[50:] and rest.continuation_token is None


def test_array_file_inputs_and_outputs_travel_as_uris(files_emulator, tmp_path):
    client = client_for(files_emulator)
    uris = []
    for name, content in (("a.bin", b"aaa"), ("b.bin", b"bbbbb"), ("note.txt", b"n")):
        (tmp_path / name).write_bytes(content)
        uris.append(upload_file(client, PROJECT, str(tmp_path / name), file_name=f"arr/{name}", _progress_bar=False))
    response = files_emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"images": uris[:2], "note": uris[2]})
    assert response.status == "completed", response.error_message
    assert response.result["sizes"] == [3, 5, 1] and response.result["names"] == ["a.bin", "b.bin"]
    copies = response.result["copies"]
    assert [c.rsplit("/", 1)[0] for c in copies] == [f"ubiops-file://default/deployment_requests/{response.id}/output"] * 2
    out = tmp_path / "out"
    out.mkdir()
    download_file(client, PROJECT, file_uri=copies[1], output_path=str(out))
    assert (out / copies[1].rsplit("/", 1)[1]).read_bytes() == b"bbbbb"
    assert private_copies_left(files_emulator) == []


def test_multipart_files_are_kept_beside_the_output_numbered_when_names_repeat(files_emulator):
    """Three uploads named alike (two in an array, one in another field) are kept as
    `deployment_requests/<id>/input/a.bin`, `a-1.bin`, `a-2.bin`, as the worker numbers outputs."""
    parts = [("images", ("a.bin", b"aaa")), ("images", ("dir/a.bin", b"bbbbb")), ("note", ("a.bin", b"n"))]
    response = httpx.post(f"{files_emulator.url}/v2.1/projects/{PROJECT}/deployments/{DEPLOYMENT}/requests",
                          files=parts, timeout=30)
    body = response.json()
    assert body["status"] == "completed", body
    assert body["result"]["sizes"] == [3, 5, 1] and body["result"]["names"] == ["a.bin", "a-1.bin"]
    folder = f"deployment_requests/{body['id']}/input"
    stored = {f"{folder}/a.bin": b"aaa", f"{folder}/a-1.bin": b"bbbbb", f"{folder}/a-2.bin": b"n"}
    request = files_emulator.sdk().deployment_requests_get(PROJECT, DEPLOYMENT, body["id"])
    assert request.request_data == {"images": [f"ubiops-file://default/{folder}/a.bin", f"ubiops-file://default/{folder}/a-1.bin"],
                                    "note": f"ubiops-file://default/{folder}/a-2.bin"}
    for name, content in stored.items():
        assert (files_emulator.data_dir / "buckets" / "default" / name).read_bytes() == content
    assert private_copies_left(files_emulator) == []


@pytest.mark.parametrize("size", [INLINE_BYTES, INLINE_BYTES + 1], ids=["copied inline", "copied in a thread"])
def test_input_files_are_copied_for_the_deployment_and_removed_after(files_emulator, tmp_path, size):
    (tmp_path / "big.bin").write_bytes(b"x" * (size - 1))
    (tmp_path / "note.txt").write_bytes(b"n")
    client = client_for(files_emulator)
    big, note = (upload_file(client, PROJECT, str(tmp_path / name), file_name=f"{size}/{name}", _progress_bar=False)
                 for name in ("big.bin", "note.txt"))
    response = files_emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"images": [big], "note": note})
    assert response.status == "completed", response.error_message
    assert response.result["sizes"] == [size - 1, 1]
    assert private_copies_left(files_emulator) == []


def test_each_item_of_a_list_request_gets_its_own_files_whatever_their_names(files_emulator, tmp_path):
    """Two items naming different files of one base name each read their own (they once shared one
    folder, and both read the last file copied), and each keeps the output file its own call returned,
    though the second call overwrote it (copied once all calls had returned, both held the second's)."""
    client = client_for(files_emulator)
    uris = {}
    for folder, content in (("a", b"from a"), ("b", b"from bb")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "img.txt").write_bytes(content)
        uris[folder] = upload_file(client, PROJECT, str(tmp_path / folder / "img.txt"), file_name=f"{folder}/img.txt",
                                   _progress_bar=False)
    items = [{"images": [uris[folder]], "note": uris[folder]} for folder in ("a", "b")]
    response = httpx.post(files_emulator.requests_url(), json=items, timeout=30).json()
    assert response["status"] == "completed", response
    assert [item["sizes"] for item in response["result"]] == [[6, 6], [7, 7]]
    assert [files_emulator.download(response, item["copies"][0]) for item in response["result"]] == [b"from a", b"from bb"]


def test_a_field_named_like_a_path_never_places_a_file_outside_the_data_folder(tmp_path):
    """Field names are the package's, not paths: a file field named `/<somewhere>` or `../..` gets
    its private copy inside the request's work folder all the same."""
    package, outside = tmp_path / "package", Path(tempfile.gettempdir()) / f"outside-{uuid.uuid4().hex[:8]}"
    package.mkdir()
    (package / "deployment.py").write_text(
        "class Deployment:\n"
        "    def __init__(self, base_directory, context):\n        pass\n\n"
        "    def request(self, data):\n        return {'paths': [data[name] for name in sorted(data)]}\n")
    names = [str(outside), "../../../../escaped"]
    (package / "ubiops_input_spec.json").write_text(json.dumps([{"name": n, "data_type": "file"} for n in names]))
    (package / "ubiops_output_spec.json").write_text('[{"name": "paths", "data_type": "array_string"}]')
    emulator = start_emulator(package, tmp_path)
    try:
        body = httpx.post(emulator.requests_url(), files=[(n, ("victim.txt", b"x")) for n in names], timeout=30).json()
        assert body["status"] == "completed", body
        work = emulator.data_dir / "work"
        assert all(Path(path).resolve().is_relative_to(work) for path in body["result"]["paths"]), body["result"]
        assert not outside.with_name(outside.name + ".0").exists() and not any(tmp_path.rglob("escaped*"))
    finally:
        emulator.stop()
        shutil.rmtree(outside.with_name(outside.name + ".0"), ignore_errors=True)


def private_copies_left(emulator) -> list[str]:
    """Files, or folders named after requests, under the data folder's `work/` (its spare folders
    are empty and nameless)."""
    work = emulator.data_dir / "work"
    return [str(p.relative_to(work)) for p in work.rglob("*")
            if not p.is_dir() or not p.relative_to(work).parts[0].startswith(SPARE_PREFIX)]


def request_folders(emulator) -> set[str]:
    """The requests whose private copies are in the data folder's `work/` now."""
    return {p.name for p in (emulator.data_dir / "work").iterdir() if not p.name.startswith(SPARE_PREFIX)}


@pytest.fixture(scope="module")
def gated(emulators):
    """Two instances of a package that takes a file and answers once its gate file is made."""
    return emulators("gated_files", "--instances", "2")


def gated_batch(emulator, tmp_path: Path, files: list[str]) -> tuple[list[str], Path]:
    """A batch request of one item per file (each a file of 2 MB, copied in a thread), and the folder
    of their gates: item n answers once `<gate>/<n>` exists."""
    gate = tmp_path / "gate"
    gate.mkdir()
    client = client_for(emulator)
    uris = []
    for name in files:
        (tmp_path / name).write_bytes(b"x" * 2 * INLINE_BYTES)
        uris.append(upload_file(client, PROJECT, str(tmp_path / name), file_name=f"{tmp_path.name}/{name}",
                                _progress_bar=False))
    created = emulator.sdk().batch_deployment_requests_create(
        PROJECT, DEPLOYMENT, data=[{"f": uri, "n": n, "gate": str(gate)} for n, uri in enumerate(uris)])
    return [request.id for request in created], gate


def statuses(emulator, ids: list[str]) -> list[str]:
    return [r.status for r in emulator.sdk().deployment_requests_batch_get(PROJECT, DEPLOYMENT, ids)]


def test_a_batch_runs_its_items_in_order_and_copies_their_files_only_once_an_instance_takes_them(gated, tmp_path):
    """The copies of every item were made at once, as the batch was accepted (250 items of a 1 GB file
    would have written 250 GB), and those over 1 MB in threads, so the items reached the queue in the
    order their copies ended. Now only the requests that the two instances run hold copies, and each
    step finds the next two items running, no later one (two taken together may start in either order)."""
    ids, gate = gated_batch(gated, tmp_path, ["same.bin"] * 6)
    for n in range(len(ids)):
        running = ids[n:n + 2]
        expected = ["completed"] * n + ["processing"] * len(running) + ["pending"] * (len(ids) - n - len(running))
        eventually(lambda expected=expected: statuses(gated, ids) == expected, f"items {n} and {n + 1} run, and no later one")
        assert request_folders(gated) == set(running), "the copies of the items running, not of those waiting"
        (gate / str(n)).touch()
    eventually(lambda: statuses(gated, ids) == ["completed"] * len(ids), "every item completes")
    done = gated.sdk().deployment_requests_batch_get(PROJECT, DEPLOYMENT, ids)
    assert [r.result["n"] for r in done] == list(range(len(ids)))
    assert private_copies_left(gated) == []


def test_an_input_file_deleted_while_its_request_waits_fails_that_request_only(gated, tmp_path):
    """Its copy is made when an instance takes it, so the request fails saying which file is gone, and
    that instance runs the next request."""
    ids, gate = gated_batch(gated, tmp_path, ["first.bin", "second.bin", "gone.bin", "next.bin"])
    eventually(lambda: statuses(gated, ids) == ["processing", "processing", "pending", "pending"], "two items run")
    gated.sdk().files_delete(PROJECT, "default", f"{tmp_path.name}/gone.bin")
    (gate / "3").touch()
    (gate / "0").touch()
    eventually(lambda: statuses(gated, ids) == ["completed", "processing", "failed", "completed"], "the next item ran")
    first, _, gone, after = gated.sdk().deployment_requests_batch_get(PROJECT, DEPLOYMENT, ids)
    assert gone.error_message == ("The input files could not be copied for the deployment: "
                                  f"file ubiops-file://default/{tmp_path.name}/gone.bin no longer exists")
    assert after.result["pid"] == first.result["pid"], "the instance that took it went on"
    (gate / "1").touch()
    eventually(lambda: statuses(gated, ids)[1] == "completed", "the last item completes")
    assert private_copies_left(gated) == []


def test_the_copies_of_a_cancelled_request_are_removed(gated, tmp_path):
    ids, _ = gated_batch(gated, tmp_path, ["a.bin", "b.bin", "c.bin"])
    eventually(lambda: statuses(gated, ids) == ["processing", "processing", "pending"], "two items run")
    gated.sdk().deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, ids)
    eventually(lambda: request_folders(gated) == set(), "the copies of the cancelled requests are removed")
    assert private_copies_left(gated) == []


def test_missing_uri_fails_the_request_clearly(files_emulator):
    response = files_emulator.sdk().deployment_requests_create(
        PROJECT, DEPLOYMENT, data={"images": ["ubiops-file://default/nope.png"], "note": "ubiops-file://other/x"})
    assert response.status == "failed"
    assert response.error_message == "Input field 'images': file ubiops-file://default/nope.png does not exist"
    # A folder (of a stored file) once failed it as a file that does not exist
    assert httpx.put(files_emulator.sdk().files_upload(PROJECT, "default", "held/in.txt").url, content=b"x").status_code == 201
    response = files_emulator.sdk().deployment_requests_create(
        PROJECT, DEPLOYMENT, data={"images": ["ubiops-file://default/held"], "note": "ubiops-file://default/held/in.txt"})
    assert (response.status, response.error_message) == (
        "failed", "Input field 'images': ubiops-file://default/held is a folder, not a file")


def test_buckets_list_create_and_get(files_emulator):
    api = files_emulator.sdk()
    assert "default" in [b.name for b in api.buckets_list(PROJECT)]
    created = api.buckets_create(PROJECT, {"name": "portraits"})
    assert (created.name, created.project, created.provider) == ("portraits", PROJECT, "ubiops")
    assert api.buckets_get(PROJECT, "portraits").name == "portraits"
    # A file added and a description changed later: the creation date once moved with the folder's change time
    default = api.buckets_get(PROJECT, "default").creation_date
    for bucket in ("portraits", "default"):
        httpx.put(api.files_upload(PROJECT, bucket, "later.txt").url, content=b"x").raise_for_status()
    assert created.last_updated == created.creation_date
    api.buckets_update(PROJECT, "portraits", {"description": "kept"})
    updated = api.buckets_get(PROJECT, "portraits")
    assert updated.creation_date == created.creation_date
    assert updated.last_updated > created.creation_date, "before, last_updated was always the creation date"
    assert [b.last_updated for b in api.buckets_list(PROJECT) if b.name == "portraits"] == [updated.last_updated]
    assert api.buckets_get(PROJECT, "default").creation_date == default
    with pytest.raises(ubiops.ApiException) as error:
        api.buckets_create(PROJECT, {"name": "portraits"})
    assert error.value.status == 409
    with pytest.raises(ubiops.ApiException) as error:
        api.buckets_create(PROJECT, {"name": "kept-an-hour", "ttl": 3600})
    assert error.value.status == 400 and "bucket TTLs are not served by the emulator" in error.value.body
    assert "kept-an-hour" not in [b.name for b in api.buckets_list(PROJECT)]


def test_bucket_labels_that_are_not_unicode_text_are_refused_and_nothing_is_created(files_emulator):
    """Before, the bucket was made, the answer was a 500, and so was every later buckets_list (buckets.json
    kept the label, so also after a restart). A file name Python could not decode holds a lone surrogate."""
    api = files_emulator.sdk()
    for labels in ({"source": os.fsdecode(b"photo-\xff.jpg")}, {os.fsdecode(b"photo-\xff.jpg"): "source"}):
        with pytest.raises(ubiops.ApiException) as error:
            api.buckets_create(PROJECT, ubiops.BucketCreate(name="photos", provider="ubiops", labels=labels))
        assert error.value.status == 400
        assert json.loads(error.value.body) == {
            "error": "body labels: Value error, 'photo-\\udcff.jpg' holds a lone UTF-16 surrogate, which is not Unicode text"}
        assert "photos" not in [b.name for b in api.buckets_list(PROJECT)]
    before = api.buckets_get(PROJECT, "default").labels
    with pytest.raises(ubiops.ApiException) as error:
        api.buckets_update(PROJECT, "default", ubiops.BucketUpdate(labels={"source": os.fsdecode(b"photo-\xff.jpg")}))
    assert error.value.status == 400 and api.buckets_get(PROJECT, "default").labels == before


def test_a_buckets_settings_and_deletion_outlast_a_restart(tmp_path):
    emulator = start_emulator("files", tmp_path, "--data-dir", str(tmp_path / "shared-data"))
    try:
        api = emulator.sdk()
        api.buckets_create(PROJECT, {"name": "kept", "description": "scans", "labels": {"team": "vision"}})
        api.buckets_create(PROJECT, {"name": "gone"})
        api.buckets_delete(PROJECT, "gone")
    finally:
        emulator.stop()
    again = start_emulator("files", tmp_path, "--data-dir", str(tmp_path / "shared-data"))
    try:
        api = again.sdk()
        kept = api.buckets_get(PROJECT, "kept")
        assert (kept.description, kept.labels) == ("scans", {"team": "vision"})
        assert "gone" not in [b.name for b in api.buckets_list(PROJECT)]
    finally:
        again.stop()


def test_bucket_ids_are_uuids_distinct_per_bucket_and_kept_across_a_restart(tmp_path):
    """Before, a bucket's id was its name ("default"), where every other object's is a UUID. A data folder
    of an older emulator keeps no ids: its default bucket's settings lack one, and `legacy` has none."""
    data = tmp_path / "older-data"
    (data / "buckets" / "legacy").mkdir(parents=True)
    (data / "buckets.json").write_text(json.dumps({"default": {"description": "", "labels": {}, "created": 1.0}}))
    fresh = tmp_path / "fresh-data"

    def ids(data_dir: Path, create: str | None = None) -> dict[str, str]:
        emulator = start_emulator("files", tmp_path, "--data-dir", str(data_dir))
        try:
            api = emulator.sdk()
            if create:
                assert uuid.UUID(api.buckets_create(PROJECT, {"name": create}).id)
            listed = {b.name: b.id for b in api.buckets_list(PROJECT)}
            assert listed == {name: api.buckets_get(PROJECT, name).id for name in listed}
            return listed
        finally:
            emulator.stop()

    older, new = ids(data, create="made"), ids(fresh, create="made")
    assert older.keys() == {"default", "legacy", "made"} and new.keys() == {"default", "made"}
    every = [*older.values(), *new.values()]
    assert all(str(uuid.UUID(i)) == i for i in every) and len(set(every)) == len(every)
    assert ids(data) == older and ids(fresh) == new


@pytest.mark.parametrize("raw_name, message", [
    ("..%2F..%2Fetc%2Fpasswd", "must be a relative path without '.' or '..' parts"),
    ("%2Fetc%2Fpasswd", "must be a relative path without '.' or '..' parts"),
    ("a%00b", "File name 'a\\x00b' holds a control character (a newline, a NUL byte…)"),
    ("a%5Cb.txt", "File name 'a\\b.txt' holds a backslash; folders are separated by '/'"),  # once escaped, by JSON
    # No route matched a newline: a bare 404 "Not Found"
    ("a%0Ab.txt", "'a\\nb.txt' holds a control character"),
    ("dir%2Fa.txt%0A", "holds a control character"),
    ("tab%09here", "holds a control character"),
    ("a" * 1100, "must be 1 to 1024 bytes long in UTF-8"),
    # 1023 characters, 4047 bytes: taken once, then the PUT, files_get and files_download answered 500
    ("%2F".join([quote("\N{GRINNING FACE}" * 63)] * 16), "must be 1 to 1024 bytes long in UTF-8"),
    ("dir%2F" + "a" * 256, "has a part (between slashes) longer than 255 bytes"),
    ("dir%2F", "has an empty part (a trailing or doubled '/')"),
    ("dir%2F%2Fx", "has an empty part (a trailing or doubled '/')"),
])
def test_file_names_that_could_escape_the_bucket_are_refused(files_emulator, raw_name, message):
    base = f"{files_emulator.api}/projects/{PROJECT}/buckets/default/files/{raw_name}"
    for method in ("GET", "POST", "DELETE"):
        response = httpx.request(method, base)
        assert response.status_code == 400 and message in response.json()["error"], (method, response.text)


def test_a_signed_url_naming_a_file_with_a_newline_is_refused_not_unrouted(files_emulator):
    response = httpx.get(f"{files_emulator.url}/storage/default/a%0Ab.txt?expires=1&signature=x")
    assert (response.status_code, response.json()) == (403, {"error": "The signed URL is invalid or has expired"})


def test_a_file_uploaded_with_a_newline_in_its_name_is_kept_under_a_name_every_call_reaches(files_emulator):
    """httpx, as curl, sends `filename="a%0Ab.txt"`: the file was kept as `input/a\nb.txt` and listed, but
    files_get, its download URL and files_delete answered a bare 404 "Not Found"."""
    parts = [("images", ("a\nb.txt", b"ab")), ("note", ("line\r\nend.txt", b"n"))]
    body = httpx.post(files_emulator.requests_url(), files=parts, timeout=30).json()
    assert body["status"] == "completed", body
    folder = f"deployment_requests/{body['id']}/input"
    api = files_emulator.sdk()
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, body["id"]).request_data == {
        "images": [f"ubiops-file://default/{folder}/a_b.txt"], "note": f"ubiops-file://default/{folder}/line__end.txt"}
    assert api.files_get(PROJECT, "default", f"{folder}/a_b.txt").size == 2
    assert httpx.get(api.files_download(PROJECT, "default", f"{folder}/a_b.txt").url).content == b"ab"
    api.files_delete(PROJECT, "default", f"{folder}/a_b.txt")
    assert [f.file for f in api.files_list(PROJECT, "default", prefix=folder).files] == [f"{folder}/line__end.txt"]


def test_names_the_file_system_cannot_hold_are_a_4xx_not_a_500(files_emulator):
    """A name too long for a file system, in an upload or a request's URI, and a name that is
    both a file and another file's folder (`a`, then `a/b`; `c/d`, then `c`): clear 4xx answers."""
    api, long_name = files_emulator.sdk(), "a" * 300
    upload = httpx.post(files_emulator.requests_url(), files={"images": (long_name, b"x"), "note": ("n", b"n")})
    assert (upload.status_code, upload.json()) == (400, {
        "error": "File name has a part (between slashes) longer than 255 bytes, which no file system stores"})
    by_uri = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"images": [f"ubiops-file://default/{long_name}"],
                                                                        "note": "ubiops-file://default/n"})
    assert by_uri.status == "failed" and "longer than 255 bytes" in by_uri.error_message
    assert str(files_emulator.data_dir) not in by_uri.error_message
    emoji = "/".join(["\N{GRINNING FACE}" * 63] * 16)  # once `[Errno 36] File name too long: '<data folder>/…'`
    by_uri = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"images": [f"ubiops-file://default/{emoji}"],
                                                                        "note": "ubiops-file://default/n"})
    assert (by_uri.status, by_uri.error_message) == ("failed", "Input field 'images': file name must be 1 to 1024 bytes "
                                                               "long in UTF-8")
    for first, second in (("clash/a", "clash/a/b"), ("clash/c/d", "clash/c")):
        assert httpx.put(api.files_upload(PROJECT, "default", first).url, content=b"1").status_code == 201
        refused = httpx.put(api.files_upload(PROJECT, "default", second).url, content=b"2")
        assert (refused.status_code, refused.json()) == (409, {
            "error": f"'{second}' clashes with a stored file or folder: a name cannot be both a file and the folder "
                     "of another file"})
    assert api.files_get(PROJECT, "default", "clash/a").size == 1


def test_a_file_in_the_place_of_the_requests_folder_is_refused(tmp_path):
    """Before, a file named `deployment_requests` in the default bucket (taken while no request had made
    the folder) broke every request with files: output files could not be kept (Not a directory), and
    a multipart request answered 409 naming an internal path. A fresh emulator: no request has run."""
    emulator = start_emulator("files", tmp_path)
    try:
        api, client = emulator.sdk(), client_for(emulator)
        with pytest.raises(ubiops.ApiException) as error:
            api.files_upload(PROJECT, "default", "deployment_requests")
        assert error.value.status == 400 and "'deployment_requests' is the folder of the deployment requests' files" \
            in error.value.body
        (tmp_path / "a.bin").write_bytes(b"aaa")
        uri = upload_file(client, PROJECT, str(tmp_path / "a.bin"), file_name="a.bin", _progress_bar=False)
        by_uri = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"images": [uri], "note": uri})
        assert by_uri.status == "completed", by_uri.error_message
        download_file(client, PROJECT, file_uri=by_uri.result["copies"][0], output_path=str(tmp_path / "copy"))
        assert (tmp_path / "copy").read_bytes() == b"aaa"
        multipart = httpx.post(emulator.requests_url(), files=[("images", ("b.bin", b"bb")), ("note", ("n", b"n"))],
                               timeout=30)
        assert multipart.status_code == 200 and multipart.json()["status"] == "completed", multipart.text
    finally:
        emulator.stop()


def test_deleting_a_file_removes_the_folders_it_leaves_empty(files_emulator):
    """Before, `a/b` deleted left its folder `a`: a file named `a` was then refused (409) as clashing
    with a folder no listing showed."""
    api = files_emulator.sdk()
    api.buckets_create(PROJECT, {"name": "emptied", "description": "stays"})

    def upload(name: str) -> int:
        return httpx.put(api.files_upload(PROJECT, "emptied", name).url, content=b"x").status_code

    assert upload("kept/a/b/c") == upload("kept/d") == 201
    api.files_delete(PROJECT, "emptied", "kept/a/b/c")
    assert [f.file for f in api.files_list(PROJECT, "emptied").files] == ["kept/d"]
    assert upload("kept/a") == 201, "the emptied `kept/a/b` and `kept/a` went, `kept` stayed"
    for name in ("kept/a", "kept/d"):
        api.files_delete(PROJECT, "emptied", name)
    assert upload("kept") == 201
    assert api.buckets_get(PROJECT, "emptied").description == "stays", "the bucket's own folder stays"


def test_a_bucket_named_files_or_buckets_keeps_its_files_under_their_names(files_emulator, tmp_path):
    """Before, the file name was read after the first `files` in the path: in a bucket named `files`,
    `a.txt` was stored as `files/a.txt`, and the URI `upload_file` answered named no file."""
    client, source = client_for(files_emulator), tmp_path / "a.txt"
    source.write_text("kept")
    for bucket in ("files", "buckets"):
        files_emulator.sdk().buckets_create(PROJECT, {"name": bucket})
        uri = upload_file(client, PROJECT, str(source), bucket_name=bucket, file_name="a.txt")
        assert uri == f"ubiops-file://{bucket}/a.txt"
        assert [f.file for f in files_emulator.sdk().files_list(PROJECT, bucket).files] == ["a.txt"]
        download_file(client, PROJECT, file_uri=uri, output_path=str(tmp_path / f"{bucket}.txt"))
        assert (tmp_path / f"{bucket}.txt").read_text() == "kept"


@pytest.mark.parametrize("escaped", [r"x\udcff", r"\ud800", "a" * 100, "Scans", "two words", "caf\u00e9"])
def test_a_bucket_name_is_checked_as_a_deployment_name(files_emulator, escaped):
    """A lone surrogate once answered 500 and made a folder whose name broke `buckets_list` for good; a
    name of 100 characters was made (201), and then the SDK raised ValueError on every `buckets_list`."""
    response = httpx.post(f"{files_emulator.api}/projects/{PROJECT}/buckets",
                          content=f'{{"name": "{escaped}"}}'.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "is not allowed: it must be lowercase letters, digits and dashes" in response.json()["error"]
    assert "default" in [b.name for b in files_emulator.sdk().buckets_list(PROJECT)]


@pytest.mark.parametrize("call", ["start-multipart-upload", "complete-multipart-upload"])
def test_a_multipart_upload_is_refused_not_taken_for_a_file_of_that_name(files_emulator, call):
    """Before, `…/files/big.bin/start-multipart-upload` answered a URL to upload a file of that name."""
    response = httpx.post(f"{files_emulator.api}/projects/{PROJECT}/buckets/default/files/big.bin/{call}")
    assert response.status_code == 404
    assert response.json()["error"] == "Multipart uploads (files of 4 GB and more) are not served by the emulator"


@pytest.mark.parametrize("part", [{"upload_id": "u-1", "part_number": "1"}, {"upload_id": "block-1"}])
def test_a_part_of_a_multipart_upload_is_refused_as_starting_one_is(files_emulator, part):
    """Before, `files_upload` with a part's `upload_id` (and `part_number`; Azure's blocks send the id
    alone) answered a URL that overwrote the whole file with that part."""
    api = files_emulator.sdk()
    with pytest.raises(ubiops.ApiException) as error:
        api.files_upload(PROJECT, "default", "big.bin", **part)
    assert error.value.status == 404
    assert json.loads(error.value.body) == {"error": "Multipart uploads (files of 4 GB and more) are not served by the emulator"}


def test_a_file_named_like_the_download_call_is_that_file(files_emulator, tmp_path):
    """Before, `files_get` of `report/download` answered 500: the route for `…/{file}/download` took it
    and failed its description as a download URL."""
    client, source = client_for(files_emulator), tmp_path / "report"
    source.write_text("named download")
    uri = upload_file(client, PROJECT, str(source), file_name="report/download", _progress_bar=False)
    item = files_emulator.sdk().files_get(PROJECT, "default", "report/download")
    assert (item.file, item.size) == ("report/download", 14)
    download_file(client, PROJECT, file_uri=uri, output_path=str(tmp_path / "out"))
    assert (tmp_path / "out").read_text() == "named download"


def test_a_path_with_an_escaped_letter_names_the_same_file(files_emulator):
    """Before, `…/%70rojects/…/files/…` answered 500: the file name was looked for after the raw word `projects`."""
    api = files_emulator.sdk()
    assert httpx.put(api.files_upload(PROJECT, "default", "escaped.txt").url, content=b"e").status_code == 201
    response = httpx.get(f"{files_emulator.api}/%70rojects/{PROJECT}/buckets/default/files/escaped.txt")
    assert response.status_code == 200 and response.json()["file"] == "escaped.txt", response.text


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_a_file_name_that_is_not_utf8_is_refused(files_emulator, method):
    """Before, `%FF` and `%FE` were both decoded to U+FFFD: two names, one file, each upload overwriting
    the other's."""
    for escaped in ("odd-%FF.bin", "odd-%FE.bin", "odd-%C3.bin", "dir%2F%FF"):
        response = httpx.request(method, f"{files_emulator.api}/projects/{PROJECT}/buckets/default/files/{escaped}")
        assert (response.status_code, response.json()) == (400, {
            "error": "A file name must be UTF-8 once its %-escapes are decoded"}), (escaped, response.text)
    assert httpx.post(f"{files_emulator.api}/projects/{PROJECT}/buckets/default/files/caf%C3%A9.bin").status_code == 200


def test_unknown_bucket_is_404(files_emulator):
    bucket = f"{files_emulator.api}/projects/{PROJECT}/buckets/nope"
    for method, url, body in (("POST", f"{bucket}/files/x.txt", None), ("PATCH", bucket, {"description": "d"}),
                              ("DELETE", bucket, None)):
        response = httpx.request(method, url, json=body)
        assert response.status_code == 404 and response.json() == {"error": "Bucket 'nope' does not exist"}, method


def test_a_call_on_a_file_of_a_missing_bucket_names_the_bucket(files_emulator, tmp_path):
    """Before, files_get, files_download (so `download_file`) and files_delete answered 404 "File 'x.txt'
    does not exist in bucket 'nobucket'", where files_list and files_upload named the bucket."""
    api, client = files_emulator.sdk(), client_for(files_emulator)
    calls = {"files_get": lambda: api.files_get(PROJECT, "nobucket", "x.txt"),
             "download_file": lambda: download_file(client, PROJECT, bucket_name="nobucket", file_name="x.txt",
                                                    output_path=str(tmp_path)),
             "files_delete": lambda: api.files_delete(PROJECT, "nobucket", "x.txt")}
    for name, call in calls.items():
        with pytest.raises(ubiops.ApiException) as error:
            call()
        assert (error.value.status, json.loads(error.value.body)) == (404, {
            "error": "Bucket 'nobucket' does not exist"}), name


def test_a_bucket_name_no_bucket_can_have_is_an_unknown_bucket(files_emulator):
    """Before, a bucket `..` in the path was a 400 worded for file names ("Bucket name '..' must be a
    relative path without '.' or '..' parts"); buckets are named as `buckets_create` takes them."""
    bucket = f"{files_emulator.api}/projects/{PROJECT}/buckets/%2E%2E"
    for method, path in (("GET", ""), ("GET", "/files"), ("POST", "/files/x.txt"), ("GET", "/files/x.txt"),
                         ("GET", "/files/x.txt/download"), ("DELETE", "/files/x.txt")):
        response = httpx.request(method, bucket + path)
        assert (response.status_code, response.json()) == (404, {"error": "Bucket '..' does not exist"}), (method, path)


def test_signed_upload_url_is_bound_to_its_path_and_method(files_emulator):
    api = files_emulator.sdk()
    url = api.files_upload(PROJECT, "default", "bound.txt").url
    assert httpx.put(url.replace("bound.txt", "other.txt"), content=b"x").status_code == 403
    assert httpx.get(url).status_code == 403, "a PUT signature does not allow a GET"
    assert httpx.put(url.replace("expires=", "expires=9"), content=b"x").status_code == 403
    assert httpx.put(url, content=b"ok").status_code == 201
    assert api.files_get(PROJECT, "default", "bound.txt").size == 2


@pytest.mark.parametrize("field, value", [("signature", "é" * 64), ("expires", "²"), ("expires", "9" * 5000)])
def test_a_malformed_signed_url_is_refused_with_403(files_emulator, field, value):
    """Before, each was a 500 (`compare_digest` on non-ASCII text, `int` of `²` or of 5000 digits)."""
    url = httpx.URL(files_emulator.sdk().files_upload(PROJECT, "default", "malformed.txt").url)
    assert httpx.put(url.copy_set_param(field, value), content=b"x").status_code == 403


def test_files_and_history_survive_a_restart(tmp_path):
    first = start_emulator("plain", tmp_path, "--data-dir", str(tmp_path / "shared-data"))
    try:
        (tmp_path / "keep.txt").write_text("kept")
        upload_file(first.sdk().api_client, PROJECT, str(tmp_path / "keep.txt"), _progress_bar=False)
        request_id = first.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="remember me").id
    finally:
        first.stop()
    second = start_emulator("plain", tmp_path, "--data-dir", str(tmp_path / "shared-data"))
    try:
        api = second.sdk()
        assert api.files_get(PROJECT, "default", "keep.txt").size == 4
        assert api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id).result == "REMEMBER ME"
    finally:
        second.stop()


def test_a_second_emulator_on_the_same_data_dir_is_refused(tmp_path):
    first = start_emulator("plain", tmp_path, "--data-dir", str(tmp_path / "shared"))
    try:
        second = start_emulator("plain", tmp_path, "--data-dir", str(tmp_path / "shared"), wait=False)
        assert second.process.wait(30) != 0
        assert f"is using the data folder {tmp_path / 'shared'}; stop it, or give this one its own --data-dir" in second.log()
    finally:
        first.stop()


def test_a_data_folder_the_emulator_makes_is_its_owners_alone(files_emulator):
    """It holds every request's input and output; before, it was 0755, readable by every local user."""
    assert stat.S_IMODE(files_emulator.data_dir.stat().st_mode) == 0o700


def test_multipart_file_names_cannot_leave_the_request_folder(files_emulator):
    """Only a file's base name is kept, so slashes and backslashes stay in `input/`; a name with none
    (`.`, `..`, `a/..`: the last was once a 400, while `.` and `../../x` were cleaned) is `upload`."""
    url = f"{files_emulator.url}/v2.1/projects/{PROJECT}/deployments/{DEPLOYMENT}/requests"
    parts = [("images", ("../../../up.bin", b"u")), ("images", ("..\\..\\win.bin", b"w")), ("note", ("/etc/n", b"n"))]
    response = httpx.post(url, files=parts, timeout=30)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "completed", body
    folder = files_emulator.data_dir / "buckets" / "default" / "deployment_requests" / body["id"] / "input"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"up.bin": b"u", "win.bin": b"w", "n": b"n"}
    parts = [("images", (".", b"1")), ("images", ("..", b"2")), ("note", ("a/..", b"3"))]
    body = httpx.post(url, files=parts, timeout=30).json()
    assert body["status"] == "completed", body
    folder = folder.parent.parent / body["id"] / "input"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"upload": b"1", "upload-1": b"2", "upload-2": b"3"}
    requests = folder.parent.parent
    before = {p.name for p in requests.iterdir()}
    refused = httpx.post(url, files=[("images", ("kept-first.bin", b"x")), ("note", ("a" * 256, b"n"))], timeout=30)
    assert (refused.status_code, refused.json()) == (400, {
        "error": "File name has a part (between slashes) longer than 255 bytes, which no file system stores"})
    assert {p.name for p in requests.iterdir()} == before, "the refused request's first file is not left behind"


WRITES_A_FILE = b"""import os, tempfile

class Deployment:
    def __init__(self, base_directory, context):
        self.path = os.path.join(tempfile.mkdtemp(), "out.txt")

    def request(self, data):
        with open(self.path, "w") as out:
            out.write(f"x={data['x']}")
        return {"out": self.path}
"""


def test_an_output_field_made_a_file_field_keeps_the_file_the_running_version_names(files_emulator, tmp_path):
    """The version's instances were started with the old fields and ran on: the worker kept no copy of the file a
    string output, now a file one, named, and the request failed with "no file at" a path that was there."""
    api, name = files_emulator.sdk(), "fields-made-files"
    api.deployments_create(PROJECT, {"name": name, "input_type": "structured", "output_type": "structured",
                                     "input_fields": [{"name": "x", "data_type": "int"}],
                                     "output_fields": [{"name": "out", "data_type": "string"}]})
    api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1"))
    (tmp_path / "package.zip").write_bytes(zip_bytes({"deployment_package/deployment.py": WRITES_A_FILE}))
    revision = api.revisions_file_upload(PROJECT, name, "v1", file=str(tmp_path / "package.zip")).revision
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, name, "v1", revision_id=revision, quiet=True)
    path = api.deployment_requests_create(PROJECT, name, {"x": 1}).result["out"]
    assert not path.startswith("ubiops-file://") and Path(path).is_file()

    api.deployments_update(PROJECT, name, ubiops.DeploymentUpdate(output_fields=[{"name": "out", "data_type": "file"}]))
    answer = api.deployment_requests_create(PROJECT, name, {"x": 2})
    assert answer.status == "completed", answer.error_message
    assert answer.result["out"] == f"ubiops-file://default/deployment_requests/{answer.id}/output/out.txt"
    download_file(api.api_client, PROJECT, file_uri=answer.result["out"], output_path=str(tmp_path))
    assert (tmp_path / "out.txt").read_text() == "x=2"
