"""Batch requests, request history and the request lifecycle, through the real SDK and its
`wait_for_deployment_request` helper."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta, timezone
from pathlib import Path

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PACKAGES, PROJECT, eventually, metric_values, start_emulator, wait_for_log, zip_bytes
from ubiops.utils import upload_file, wait_for_deployment_request, wait_for_deployment_version_request


@pytest.fixture(scope="module")
def batch(emulators):
    return emulators("batch")


def wait_for_status(api, request_id: str, statuses: set[str], seconds: float = 30) -> object:
    deadline = time.monotonic() + seconds
    while (detail := api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id, metadata_only=True)).status not in statuses:
        assert time.monotonic() < deadline, f"{request_id} stayed {detail.status}"
        time.sleep(0.05)
    return detail



def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def request_files(api: ubiops.CoreApi, request_id: str) -> list[str]:
    """The names of a request's files (input and output) in the default bucket."""
    return [f.file for f in api.files_list(PROJECT, "default", prefix=f"deployment_requests/{request_id}/").files]


def test_batch_items_are_pending_at_once_then_complete(batch):
    api = batch.sdk()
    created = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"x": 1}, {"x": 2}, {"x": 3.5}])
    assert [c.status for c in created] == ["pending"] * 3 and all(c.time_created for c in created)
    ids = [c.id for c in created]
    for request_id in ids:
        wait_for_status(api, request_id, {"completed", "failed"})
    collected = api.deployment_requests_batch_get(PROJECT, DEPLOYMENT, data=ids)
    assert [c.id for c in collected] == ids
    assert [c.status for c in collected] == ["completed"] * 3
    assert [c.result for c in collected] == [{"y": 10.01}, {"y": 20.01}, {"y": 35.01}], "each item runs on its own"
    assert all(c.time_created <= c.time_started <= c.time_completed for c in collected)
    assert collected[0].request_data == {"x": 1} and collected[0].input_size > 0 and collected[0].output_size > 0


def test_sdk_wait_helpers_follow_a_batch_request(batch):
    api = batch.sdk()
    (created,) = api.batch_deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", data=[{"x": 4}])
    wait_for_deployment_request(api.api_client, PROJECT, DEPLOYMENT, created.id, timeout=60)
    wait_for_deployment_version_request(api.api_client, PROJECT, DEPLOYMENT, "v1", created.id, timeout=60)
    assert api.deployment_version_requests_get(PROJECT, DEPLOYMENT, created.id, "v1").result == {"y": 40.01}


@pytest.mark.parametrize("items, message", [
    ([{"x": 1}, {"x": "two"}], "Item 1: Input field 'x' must be of type double, but got a string"),
    ([{"x": 1}, {}], "Item 1: Missing input field 'x' of type double"),
    ([{"x": 1}] * 251, "A batch holds 1 to 250 requests; got 251"),
    ([], "A batch holds 1 to 250 requests; got 0"),
])
def test_one_bad_item_rejects_the_whole_batch(batch, items, message):
    before = count_requests(batch.sdk())
    with pytest.raises(ubiops.ApiException) as error:
        batch.sdk().batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=items)
    assert error.value.status == 400 and message in error.value.body
    assert count_requests(batch.sdk()) == before, "nothing of a rejected batch is queued"


def count_requests(api: ubiops.CoreApi) -> int:
    """Every recorded request of the deployment (pending and processing are listed only alone)."""
    return sum(len(api.deployment_requests_list(PROJECT, DEPLOYMENT, status=status, limit=500))
               for status in ("pending", "processing", "completed,failed,cancelled"))


@pytest.mark.parametrize("level", ["", "/versions/v1"])
def test_a_batch_takes_a_single_request_as_well_as_a_list(batch, level):
    url = f"{batch.url}/v2.1/projects/{PROJECT}/deployments/{DEPLOYMENT}{level}/requests/batch"
    response = httpx.post(url, json={"x": 2})
    assert response.status_code == 200
    (created,) = response.json()
    assert created["status"] == "pending"
    assert wait_for_status(batch.sdk(), created["id"], {"completed", "failed"}).status == "completed"
    refused = httpx.post(url, json={"x": "two"})
    assert refused.status_code == 400
    assert refused.json() == {"error": "Item 0: Input field 'x' must be of type double, but got a string"}


def test_pending_and_processing_requests_can_be_cancelled_ended_ones_cannot(emulators):
    crashing = emulators("crashing", "--version", "cancelling")
    api = crashing.sdk()
    before = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    slow, queued, after = api.batch_deployment_requests_create(
        PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}, {"mode": "ok"}, {"mode": "ok"}])
    wait_for_status(api, slow.id, {"processing"})
    assert api.deployment_requests_update(PROJECT, DEPLOYMENT, queued.id, {"status": "cancelled"}) == \
        {"id": queued.id, "status": "cancelled"}
    assert api.deployment_requests_update(PROJECT, DEPLOYMENT, slow.id, {"status": "cancelled"})["status"] == "cancelled"
    stopped = api.deployment_requests_get(PROJECT, DEPLOYMENT, slow.id)
    assert (stopped.status, stopped.result) == ("cancelled", None) and stopped.time_started <= stopped.time_completed
    wait_for_status(api, after.id, {"completed", "failed"})
    replaced = api.deployment_requests_get(PROJECT, DEPLOYMENT, after.id)
    assert replaced.status == "completed" and replaced.result["pid"] != before.result["pid"], "its instance was replaced"
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, queued.id).time_started is None, "a cancelled request never runs"
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_update(PROJECT, DEPLOYMENT, after.id, {"status": "cancelled"})
    assert error.value.status == 400
    assert f"Request {after.id} is completed; only pending and processing requests can be cancelled" in error.value.body
    assert wait_for_log(crashing, f"request {slow.id} cancelled")
    # Its instance's stop was logged as an error, 'killed by signal SIGKILL', read as a crash, and nothing said why.
    lines = api.logs_list(PROJECT, query=f'| deployment_request_id="{slow.id}" |= "stopping it"')
    assert [(line.log, line.metadata.level) for line in lines] == [
        (f"[{DEPLOYMENT}/cancelling instance 1] request {slow.id} was cancelled; stopping it", "info")]
    assert api.logs_list(PROJECT, query='| deployment_version="cancelling" and level="error"') == []


def test_a_cancelled_direct_request_answers_its_caller_as_cancelled(emulators):
    crashing = emulators("crashing", "--version", "cancelling-direct")
    api = crashing.sdk()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(api.deployment_requests_create, PROJECT, DEPLOYMENT, data={"mode": "sleep 60"})
        (running,) = eventually(lambda: api.deployment_requests_list(PROJECT, DEPLOYMENT, status="processing"),
                                "the request runs")
        (cancelled,) = api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [], status="processing")
        answer = waiting.result(timeout=30)
    assert cancelled == {"id": running.id, "status": "cancelled"}
    assert (answer.id, answer.status, answer.success, answer.result) == (running.id, "cancelled", False, None)


def test_cancel_many_by_id_or_every_pending_request_of_a_version(emulators):
    crashing = emulators("crashing", "--version", "cancel-many")
    api = crashing.sdk()
    busy, first, second, third = api.batch_deployment_requests_create(
        PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}] + [{"mode": "ok"}] * 3)
    wait_for_status(api, busy.id, {"processing"})
    assert api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [first.id, first.id]) == \
        [{"id": first.id, "status": "cancelled"}]
    cancelled = api.deployment_version_requests_batch_cancel(PROJECT, DEPLOYMENT, "cancel-many", [], status="pending")
    assert sorted(c["id"] for c in cancelled) == sorted([second.id, third.id])
    assert api.deployment_requests_list(PROJECT, DEPLOYMENT, status="pending") == []
    assert [c["id"] for c in api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [], status="processing")] == [busy.id]
    assert {r.status for r in api.deployment_requests_batch_get(PROJECT, DEPLOYMENT, [busy.id, first.id, third.id])} == \
        {"cancelled"}


def test_a_mass_cancel_ends_each_request_and_leaves_the_running_one(emulators):
    """50 000 pending requests cancelled at once held the server ~4.6 s, every call (/livez too) waiting:
    they are cancelled 250 at a time, other calls answered in between (shown turn by turn in
    tests/parts/test_request_runner.py). Each still ends cancelled, recorded, counted and logged, and the
    answer lists them all, and they leave the version's queue; the request running is not pending, and
    runs on."""
    crashing = emulators("crashing", "--version", "mass-cancel")
    api = crashing.sdk()
    (busy,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}])
    wait_for_status(api, busy.id, {"processing"})
    ids = [created.id for _ in range(4)
           for created in api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}] * 250)]
    cancelled = api.deployment_version_requests_batch_cancel(PROJECT, DEPLOYMENT, "mass-cancel", [], status="pending")
    assert sorted(c["id"] for c in cancelled) == sorted(ids) and {c["status"] for c in cancelled} == {"cancelled"}
    for start in range(0, len(ids), 250):
        collected = api.deployment_requests_batch_get(PROJECT, DEPLOYMENT, ids[start:start + 250])
        assert {(r.status, r.time_started) for r in collected} == {("cancelled", None)}
    assert api.deployment_requests_list(PROJECT, DEPLOYMENT, status="pending") == []
    log = wait_for_log(crashing, f"request {ids[-1]} cancelled")
    assert [i for i in ids if f"request {i} cancelled" not in log] == []
    counted = metric_values(httpx.get(f"{crashing.url}/metrics").text)
    assert counted("ubiops_emulator_requests_total", project=PROJECT, deployment=DEPLOYMENT, version="mass-cancel",
                   status="cancelled") == len(ids)
    # They leave the queue at once, not when an instance comes to each: they were counted waiting meanwhile.
    eventually(lambda: metric_values(httpx.get(f"{crashing.url}/metrics").text)(
        "ubiops_emulator_queue_length", project=PROJECT, deployment=DEPLOYMENT, version="mass-cancel") == 0,
        "the cancelled requests leave the queue")
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, busy.id, metadata_only=True).status == "processing"
    api.deployment_requests_update(PROJECT, DEPLOYMENT, busy.id, {"status": "cancelled"})


@pytest.mark.parametrize("ids, status, code, message", [
    ([], None, 400, "Give the ids of the requests to cancel, or status=pending or status=processing with an empty body"),
    ([], "completed", 400, "Only pending or processing requests can be cancelled by status; got status=completed"),
    (["x"], "pending", 400, "Give the ids of the requests to cancel, or a status with an empty body, not both"),
    (["x"] * 251, None, 400, "At most 250 request ids can be cancelled at once; got 251"),
    (["no-such-request"], None, 404, "Request not found: no-such-request"),
])
def test_refused_batch_cancels(emulators, ids, status, code, message):
    crashing = emulators("crashing", "--version", "cancel-many")
    with pytest.raises(ubiops.ApiException) as error:
        crashing.sdk().deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, ids, status=status)
    assert error.value.status == code and json.loads(error.value.body) == {"error": message}


def test_a_batch_cancel_naming_an_ended_request_cancels_none(emulators):
    crashing = emulators("crashing", "--version", "cancel-many")
    api = crashing.sdk()
    ended = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    busy, waiting = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}, {"mode": "ok"}])
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [waiting.id, ended.id])
    assert error.value.status == 400 and f"Request {ended.id} is completed" in error.value.body
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, waiting.id).status == "pending"
    assert len(api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [busy.id, waiting.id])) == 2


def test_direct_requests_are_kept_with_their_data(batch):
    api = batch.sdk()
    response = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 7})
    detail = api.deployment_requests_get(PROJECT, DEPLOYMENT, response.id)
    assert (detail.status, detail.request_data, detail.result, detail.timeout) == ("completed", {"x": 7}, {"y": 70.01}, 300)
    assert detail.origin and detail.time_completed is not None
    metadata = api.deployment_requests_get(PROJECT, DEPLOYMENT, response.id, metadata_only=True)
    assert metadata.request_data is None and metadata.result is None and metadata.status == "completed"
    raw_input = httpx.get(f"{batch.requests_url()}/{response.id}/input")
    raw_output = httpx.get(f"{batch.requests_url()}/{response.id}/output")
    assert raw_input.json() == {"x": 7} and raw_output.json() == {"y": 70.01}


def test_what_answers_only_metadata_never_reads_a_requests_input_or_output(emulators):
    """A list, a metadata_only get (the SDK's wait helper's), a cancel and a delete answer from a request's
    metadata: its input and output, which can be hundreds of MB, were read and decoded for each (a list
    of ten 100 MB requests held the event loop 8 s). Shown on a request whose stored data no longer
    decode: all of those answer as before; what answers the data fails on it."""
    emulator = emulators("batch", "--version", "undecodable")
    api = emulator.sdk()
    request_id = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 1}).id
    newer = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 20}).id
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id).result == {"y": 10.01}  # now in the database
    with closing(sqlite3.connect(emulator.data_dir / "requests.sqlite3")) as db, db:
        db.execute("UPDATE requests SET request_data = 'not json', result = 'not json' WHERE id = ?", (request_id,))
    full = httpx.get(f"{emulator.requests_url()}/{request_id}")
    assert full.status_code == 500, "the stored data do not decode"
    for suffix in ("/input", "/output"):
        assert httpx.get(f"{emulator.requests_url()}/{request_id}{suffix}").status_code == 500
    with pytest.raises(ubiops.ApiException) as collected:
        api.deployment_requests_batch_get(PROJECT, DEPLOYMENT, data=[request_id])
    assert collected.value.status == 500

    listed = api.deployment_requests_list(PROJECT, DEPLOYMENT, limit=2)
    assert [(r.id, r.status, r.success, r.input_size, r.output_size) for r in listed] == [
        (newer, "completed", True, 9, 13), (request_id, "completed", True, 8, 12)]
    assert all(r.time_created <= r.time_started <= r.time_completed for r in listed)
    assert [r.id for r in api.deployment_version_requests_list(PROJECT, DEPLOYMENT, "undecodable", limit=2)] == [newer, request_id]
    assert [(r.id, r.deployment, r.version) for r in api.project_requests_list(PROJECT, limit=2)][1] == (
        request_id, DEPLOYMENT, "undecodable")
    metadata = api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id, metadata_only=True)
    assert (metadata.status, metadata.input_size, metadata.request_data, metadata.result) == ("completed", 8, None, None)
    wait_for_deployment_request(api.api_client, PROJECT, DEPLOYMENT, request_id, timeout=60)  # metadata_only gets
    for cancel in (lambda: api.deployment_requests_update(PROJECT, DEPLOYMENT, request_id, {"status": "cancelled"}),
                   lambda: api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [request_id])):
        with pytest.raises(ubiops.ApiException) as refused:
            cancel()
        assert refused.value.status == 400 and f"Request {request_id} is completed" in refused.value.body
    assert [r["id"] for r in api.deployment_requests_batch_delete(PROJECT, DEPLOYMENT, [request_id, newer])] == [request_id, newer]
    assert api.deployment_requests_list(PROJECT, DEPLOYMENT) == []


def test_list_filters_by_status_and_pages(batch):
    api = batch.sdk()
    ids = [api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": n}).id for n in range(3)]
    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": "bad"})
    newest = api.deployment_requests_list(PROJECT, DEPLOYMENT, limit=2)
    assert [r.id for r in newest] == ids[::-1][:2], "default filter is completed, newest first"
    assert [r.id for r in api.deployment_requests_list(PROJECT, DEPLOYMENT, limit=1, offset=1)] == [ids[1]]
    assert failed.id in [r.id for r in api.deployment_requests_list(PROJECT, DEPLOYMENT, status="failed")]
    assert [r.id for r in api.deployment_version_requests_list(PROJECT, DEPLOYMENT, "v1", search_id=ids[0][:13])] == [ids[0]]
    assert [r.id for r in api.deployment_requests_list(PROJECT, DEPLOYMENT, search_id=ids[0][-12:].upper())] == [ids[0]]
    for part in ("%", "_", ids[0] * 1500):  # a part of an id, not a pattern, of any length
        assert api.deployment_requests_list(PROJECT, DEPLOYMENT, search_id=part) == []


@pytest.mark.parametrize("arguments, message", [
    ({"status": "pending,processing"}, "pending cannot be combined with other statuses"),
    ({"status": "completed,pending"}, "pending cannot be combined with other statuses"),
    ({"status": "processing,failed"}, "processing cannot be combined with other statuses"),
    ({"status": "done"}, "Unknown status done"),
    ({"status": "processing", "search_id": "0"},
     "search_id is only available for completed, failed and cancelled requests; got status=processing"),
    ({"status": "pending", "start_date": "2024-01-01T00:00:00Z"},  # the SDK documents the dates as search_id
     "start_date is only available for completed, failed and cancelled requests; got status=pending"),
    ({"status": "processing", "end_date": "2999-01-01T00:00:00Z", "search_id": "0"},
     "end_date and search_id are only available for completed, failed and cancelled requests; got status=processing"),
    ({"offset": 2**63}, "query offset: Input should be less than or equal to 9223372036854775807"),  # SQLite's limit: a 500
])
def test_list_rejects_bad_filters(batch, arguments, message):
    with pytest.raises(ubiops.ApiException) as error:
        batch.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, **arguments)
    assert error.value.status == 400 and message in error.value.body


@pytest.mark.parametrize("status", ["", ",", " , "])
def test_an_empty_status_lists_completed_requests_as_none_does(batch, status):
    """It listed every status mixed, which no filter may ask (pending and processing cannot be combined)."""
    api = batch.sdk()
    completed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 1}).id
    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": "bad"}).id
    for url in (batch.requests_url(), batch.requests_url("v1"), f"{batch.api}/projects/{PROJECT}/requests"):
        listed = httpx.get(url, params={"status": status, "limit": 500}).json()
        ids = [r["id"] for r in listed]
        assert {r["status"] for r in listed} == {"completed"} and completed in ids and failed not in ids, url


def test_unknown_request_and_wrong_version_are_404(batch):
    api = batch.sdk()
    request_id = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 1}).id
    for call in (lambda: api.deployment_requests_get(PROJECT, DEPLOYMENT, "no-such-id"),
                 lambda: api.deployment_version_requests_get(PROJECT, DEPLOYMENT, request_id, "v9")):
        with pytest.raises(ubiops.ApiException) as error:
            call()
        assert error.value.status == 404


def test_deployment_level_calls_reach_the_default_versions_requests_alone(emulators, tmp_path):
    """UbiOps documents the request calls without a version as "for the default version of a deployment".
    Before, they reached every version: cancelling `status=pending` at deployment level cancelled another
    version's batch, and its requests could be got, collected and deleted there."""
    crashing = emulators("crashing", "--version", "default")
    api, deployment = crashing.sdk(), DEPLOYMENT
    api.deployment_versions_create(PROJECT, deployment, ubiops.DeploymentVersionCreate(version="v9", environment="python3-11"))
    package = tmp_path / "crashing.zip"
    package.write_bytes(zip_bytes({f"deployment_package/{p.name}": p.read_bytes()
                                   for p in (PACKAGES / "crashing").iterdir() if p.is_file()}))
    revision = api.revisions_file_upload(PROJECT, deployment, "v9", file=str(package)).revision
    eventually(lambda: api.revisions_get(PROJECT, deployment, revision, "v9").status == "success", "v9 is built")
    assert api.deployments_get(PROJECT, deployment).default_version == "default"
    mine = api.deployment_requests_create(PROJECT, deployment, data={"mode": "ok"})
    ended = api.deployment_version_requests_create(PROJECT, deployment, "v9", data={"mode": "ok"})
    busy, waiting = api.batch_deployment_version_requests_create(PROJECT, deployment, "v9",
                                                                 data=[{"mode": "sleep 20"}, {"mode": "ok"}])
    eventually(lambda: api.deployment_version_requests_get(PROJECT, deployment, busy.id, "v9").status == "processing",
               "v9's batch runs")
    others = [ended.id, busy.id, waiting.id]
    try:
        assert mine.version == "default" and [r.id for r in api.deployment_requests_list(PROJECT, deployment)] == [mine.id]
        for status in ("pending", "processing"):
            assert api.deployment_requests_list(PROJECT, deployment, status=status) == []
            assert api.deployment_requests_batch_cancel(PROJECT, deployment, [], status=status) == []
        assert api.deployment_requests_get(PROJECT, deployment, mine.id).version == "default"
        base = f"{crashing.api}/projects/{PROJECT}/deployments/{deployment}/requests"
        for request_id in others:
            for call, arguments in ((api.deployment_requests_get, (request_id,)),
                                    (api.deployment_requests_batch_get, ([request_id],)),
                                    (api.deployment_requests_update, (request_id, {"status": "cancelled"})),
                                    (api.deployment_requests_batch_cancel, ([request_id],)),
                                    (api.deployment_requests_delete, (request_id,)),
                                    (api.deployment_requests_batch_delete, ([request_id],))):
                with pytest.raises(ubiops.ApiException) as error:
                    call(PROJECT, deployment, *arguments)
                named = f": {request_id}" if isinstance(arguments[0], list) else ""  # a batch says which
                assert (error.value.status, json.loads(error.value.body)) == (404, {"error": f"Request not found{named}"})
            for part in ("input", "output"):
                assert httpx.get(f"{base}/{request_id}/{part}").status_code == 404
        kept = api.deployment_version_requests_batch_get(PROJECT, deployment, "v9", others)
        assert [r.status for r in kept] == ["completed", "processing", "pending"], "v9's requests are untouched"
    finally:
        api.deployment_version_requests_batch_cancel(PROJECT, deployment, "v9", [busy.id, waiting.id])


def test_a_deployment_without_a_default_version_says_so_where_none_is_named(emulators):
    """Before, a request to it, or its history, answered "Version not found", though no version was named."""
    batch = emulators("batch")
    api, deployment = batch.sdk(), "no-default"
    api.deployments_create(PROJECT, {"name": deployment, "input_type": "plain", "output_type": "plain"})
    api.deployment_versions_create(PROJECT, deployment, {"version": "v1"})
    api.deployment_versions_create(PROJECT, deployment, {"version": "v2"})
    api.deployment_versions_delete(PROJECT, deployment, "v1")
    assert api.deployments_get(PROJECT, deployment).default_version is None
    message = {"error": f"Deployment {deployment} has no default version; set one or name a version"}
    for call in (lambda: api.deployment_requests_create(PROJECT, deployment, "hi"),
                 lambda: api.batch_deployment_requests_create(PROJECT, deployment, ["hi"]),
                 lambda: api.deployment_requests_list(PROJECT, deployment),
                 lambda: api.deployment_requests_get(PROJECT, deployment, "any-id")):
        with pytest.raises(ubiops.ApiException) as error:
            call()
        assert (error.value.status, json.loads(error.value.body)) == (404, message)
    stream = httpx.post(f"{batch.api}/projects/{PROJECT}/deployments/{deployment}/requests/stream", content="hi",
                        headers={"Content-Type": "text/plain"})
    assert (stream.status_code, stream.json()["error_message"]) == (404, message["error"]), "what the CLI prints"
    assert api.deployment_version_requests_list(PROJECT, deployment, "v2") == []


def test_delete_removes_a_finished_request(batch):
    api = batch.sdk()
    request_id = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 1}).id
    api.deployment_requests_delete(PROJECT, DEPLOYMENT, request_id)
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)
    assert error.value.body == '{"error":"Request not found"}'


def test_deleting_many_requests_deletes_their_files_all_or_none(emulators, tmp_path):
    files = emulators("files")
    api = files.sdk()
    note = upload_file(api.api_client, PROJECT, str(write(tmp_path / "note.txt", "a note")), file_name="note.txt")
    made = [api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"images": [note], "note": note}).id for _ in range(3)]
    assert all(request_files(api, request_id) for request_id in made)
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_batch_delete(PROJECT, DEPLOYMENT, [made[0], "no-such-request"])
    assert error.value.status == 404 and json.loads(error.value.body) == {"error": "Request not found: no-such-request"}
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, made[0]).status == "completed", "nothing was deleted"
    assert api.deployment_version_requests_batch_delete(PROJECT, DEPLOYMENT, "v1", made[:2]) == [{"id": i} for i in made[:2]]
    for request_id in made[:2]:
        assert request_files(api, request_id) == []
        with pytest.raises(ubiops.ApiException, match="Request not found"):
            api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)
    assert request_files(api, made[2]), "the others keep theirs"
    assert api.files_get(PROJECT, "default", "note.txt").file == "note.txt", "an input uploaded by the user stays"


@pytest.mark.parametrize("action, body, code, message", [
    ("delete", ["x"] * 251, 400, "At most 250 request ids can be deleted at once; got 251"),
    ("delete", {"id": "x"}, 400, "The body must be a JSON list of request ids"),
    ("cancel", {"id": "x"}, 400, "The body must be a JSON list of request ids"),
    ("delete", ["no-such-request"], 404, "Request not found: no-such-request"),
])
def test_refused_batch_deletes_and_bodies(batch, action, body, code, message):
    response = httpx.post(f"{batch.requests_url()}/{action}", json=body)
    assert (response.status_code, response.json()) == (code, {"error": message})


def test_a_batch_delete_naming_an_unfinished_request_deletes_none(emulators):
    crashing = emulators("crashing", "--version", "cancel-many")
    api = crashing.sdk()
    ended = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    (busy,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}])
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_batch_delete(PROJECT, DEPLOYMENT, [ended.id, busy.id])
    assert error.value.status == 400 and f"Request {busy.id} is " in error.value.body and "cancel it or wait" in error.value.body
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, ended.id).status == "completed"
    api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [busy.id])
    named_twice = [ended.id, busy.id, ended.id]
    assert api.deployment_requests_batch_delete(PROJECT, DEPLOYMENT, named_twice) == [{"id": ended.id}, {"id": busy.id}]


def test_project_requests_list_shows_every_deployments_requests_with_filters(batch):
    api = batch.sdk()
    done = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 3})
    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": "bad"})
    listed = api.project_requests_list(PROJECT, object_type="deployment", limit=500)
    (mine,) = [r for r in listed if r.id == done.id]
    assert (mine.deployment, mine.pipeline, mine.version, mine.status) == (DEPLOYMENT, None, "v1", "completed")
    assert mine.time_created <= mine.time_started <= mine.time_completed and mine.input_size and mine.output_size
    assert failed.id not in [r.id for r in listed], "completed by default"
    assert [r.id for r in api.project_requests_list(PROJECT, status="failed", search_id=failed.id[:13])] == [failed.id]
    assert [r.id for r in api.project_requests_list(PROJECT, status="completed,failed", limit=2)] == [failed.id, done.id]
    assert [r.id for r in api.project_requests_list(PROJECT, status="completed,failed", limit=1, offset=1)] == [done.id]
    after = api.project_requests_list(PROJECT, status="completed,failed", start_date=mine.time_completed.isoformat())
    assert failed.id in [r.id for r in after] and done.id not in [r.id for r in after]
    assert api.project_requests_list(PROJECT, object_type="pipeline") == []


@pytest.mark.parametrize("offset_hours", [2, -5])
def test_a_date_filter_with_an_offset_names_the_same_moment_as_in_utc(batch, offset_hours):
    """Before, the dates were compared with the stored UTC times as text: the same window written with
    `+02:00` or `-05:00` found nothing."""
    api = batch.sdk()
    request = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 4})
    moment = api.deployment_requests_get(PROJECT, DEPLOYMENT, request.id).time_created
    zone = timezone(timedelta(hours=offset_hours))
    start, end = ((moment + timedelta(seconds=delta)).astimezone(zone).isoformat() for delta in (-1, 1))
    found = api.project_requests_list(PROJECT, status="completed", start_date=start, end_date=end, limit=500)
    assert request.id in [r.id for r in found]


@pytest.mark.parametrize("window, finds_it", [
    ({"end_date": "0001-01-01T00:00:00+14:00"}, False),
    ({"start_date": "9999-12-31T23:59:59-14:00"}, False),
    ({"start_date": "0001-01-01T00:00:00+14:00", "end_date": "9999-12-31T23:59:59-14:00"}, True),
])
def test_a_date_before_or_after_utcs_calendar_is_before_or_after_every_request(batch, window, finds_it):
    """Before, such a date did not convert to UTC (OverflowError): the list answered 500."""
    api = batch.sdk()
    request = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 5})
    found = api.project_requests_list(PROJECT, status="completed", limit=500, **window)
    assert (request.id in [r.id for r in found]) == finds_it


@pytest.mark.parametrize("query, code, message", [
    ("object_type=model", 400, "object_type must be one of deployment, pipeline; got 'model'"),
    ("status=pending,completed", 400, "pending cannot be combined with other statuses in one status filter"),
    ("limit=0", 400, "query limit: Input should be greater than or equal to 1"),
    ("offset=9223372036854775808", 400, "query offset: Input should be less than or equal to 9223372036854775807"),
])
def test_refused_project_request_lists(batch, query, code, message):
    response = httpx.get(f"{batch.url}/v2.1/projects/{PROJECT}/requests?{query}")
    assert (response.status_code, response.json()) == (code, {"error": message})


def test_project_requests_list_of_an_unknown_project_is_404(batch):
    with pytest.raises(ubiops.ApiException) as error:
        batch.sdk().project_requests_list("no-such-project")
    assert error.value.status == 404 and json.loads(error.value.body) == {"error": "Project not found"}


def test_a_full_queue_refuses_requests_until_an_instance_takes_one(emulators):
    crashing = emulators("crashing", "--version", "queue-of-one")
    api = crashing.sdk()
    assert api.deployment_versions_update(PROJECT, DEPLOYMENT, "queue-of-one", {"maximum_queue_size": 1}).maximum_queue_size == 1
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"  # its instance is up
    with pytest.raises(ubiops.ApiException, match="0 requests wait for an instance, 2 of these 3 would, and its "
                                                  "maximum_queue_size is 1"):
        api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}] * 3)
    (busy,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}])
    wait_for_status(api, busy.id, {"processing"})
    (waiting,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}])
    full = "The queue of version queue-of-one is full: 1 requests wait for an instance and its maximum_queue_size is 1; try again later"
    for refused in (lambda: api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}),
                    lambda: api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}])):
        with pytest.raises(ubiops.ApiException) as error:
            refused()
        assert error.value.status == 503 and json.loads(error.value.body) == {"error": full}
    assert api.deployment_requests_list(PROJECT, DEPLOYMENT, status="pending")[0].id == waiting.id, "the refused were not queued"
    lifted = httpx.patch(f"{crashing.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/queue-of-one",
                         json={"maximum_queue_size": None}, headers=crashing.headers)
    assert (lifted.status_code, lifted.json()["maximum_queue_size"]) == (200, None), "null lifts the limit"
    assert len(api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}] * 3)) == 3
    api.deployment_requests_update(PROJECT, DEPLOYMENT, busy.id, {"status": "cancelled"})
    wait_for_status(api, waiting.id, {"completed"})
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"


def test_a_maximum_queue_size_of_0_takes_what_free_instances_run_at_once(emulators):
    """Before, 0 refused every request, even with the instance idle, and a batch larger than the limit was
    refused whole: a request counted as waiting from its arrival, although a free instance took it at once."""
    api = emulators("crashing", "--version", "queue-of-none").sdk()
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"
    api.deployment_versions_update(PROJECT, DEPLOYMENT, "queue-of-none", {"maximum_queue_size": 0})
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"
    with pytest.raises(ubiops.ApiException, match="0 requests wait for an instance, 1 of these 2 would, and its "
                                                  "maximum_queue_size is 0"):
        api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}] * 2)
    (busy,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}])
    wait_for_status(api, busy.id, {"processing"})
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    assert error.value.status == 503 and json.loads(error.value.body) == {"error": (
        "The queue of version queue-of-none is full: 0 requests wait for an instance and its maximum_queue_size "
        "is 0; try again later")}
    api.deployment_requests_update(PROJECT, DEPLOYMENT, busy.id, {"status": "cancelled"})


def test_a_negative_maximum_queue_size_is_refused(batch):
    with pytest.raises(ubiops.ApiException) as error:
        batch.sdk().deployment_versions_update(PROJECT, DEPLOYMENT, "v1", {"maximum_queue_size": -1})
    assert error.value.status == 400
    assert json.loads(error.value.body) == {"error": "body maximum_queue_size: Input should be greater than or equal to 0"}


def test_a_batch_requests_timeout_counts_from_when_it_starts_processing(emulators):
    """The second item waits ~10.5 s for the only instance, longer than its own 10 s timeout, and
    still completes: a batch queued behind slow work does not time out while it waits."""
    crashing = emulators("crashing", "--version", "batch-timeout")
    api = crashing.sdk()
    (slow,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 10.5"}], timeout=60)
    (queued,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "ok"}], timeout=10)
    done = wait_for_status(api, queued.id, {"completed", "failed"}, seconds=60)
    assert done.status == "completed", done.error_message
    assert wait_for_status(api, slow.id, {"completed", "failed"}).status == "completed"
    assert (done.time_started - done.time_created).total_seconds() > 10, "it waited longer than its timeout"


def test_killed_mid_batch_keeps_finished_requests_fails_the_running_one_and_runs_the_waiting_one(tmp_path):
    """The waiting one was failed too, where UbiOps keeps a queued batch request through an outage."""
    data = ["--data-dir", str(tmp_path / "data")]
    first = start_emulator("crashing", tmp_path, *data)
    api = first.sdk()
    done = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"})
    running, waiting = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 60"}, {"mode": "ok"}])
    wait_for_status(api, running.id, {"processing"})
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    second = start_emulator("crashing", tmp_path, *data)
    try:
        api = second.sdk()
        assert api.deployment_requests_get(PROJECT, DEPLOYMENT, done.id).status == "completed"
        detail = api.deployment_requests_get(PROJECT, DEPLOYMENT, running.id)
        assert detail.status == "failed" and detail.error_message == "The emulator stopped before this request finished"
        assert detail.time_started is not None and detail.time_completed is not None
        assert wait_for_status(api, waiting.id, {"completed", "failed"}).status == "completed"
    finally:
        second.stop()


@pytest.mark.parametrize("mode, kept, data_kept", [("none", False, False), ("metadata", True, False), ("full", True, True)])
def test_retention_mode_decides_what_is_kept(emulators, mode, kept, data_kept):
    plain = emulators("plain", "--version", f"keep-{mode}")
    api = plain.sdk()
    api.deployment_versions_update(PROJECT, DEPLOYMENT, f"keep-{mode}", {"request_retention_mode": mode})
    request_id = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="keep me").id
    if not kept:
        with pytest.raises(ubiops.ApiException) as error:
            api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)
        assert error.value.status == 404
        return
    detail = api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)
    assert detail.status == "completed" and detail.input_size == 7
    assert (detail.request_data, detail.result) == (("keep me", "KEEP ME") if data_kept else (None, None))
    raw = httpx.get(f"{plain.requests_url()}/{request_id}/input")
    assert raw.status_code == (200 if data_kept else 404)
    assert raw.text == "keep me" if data_kept else "request_retention_mode is not full" in raw.json()["error"]
