"""Batch requests, request history and the request lifecycle, through the real SDK and its
`wait_for_deployment_request` helper."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, start_emulator
from ubiops.utils import wait_for_deployment_request, wait_for_deployment_version_request


@pytest.fixture(scope="module")
def batch(emulators):
    return emulators("batch")


def wait_for_status(api, request_id: str, statuses: set[str], seconds: float = 30) -> object:
    deadline = time.monotonic() + seconds
    while (detail := api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id, metadata_only=True)).status not in statuses:
        assert time.monotonic() < deadline, f"{request_id} stayed {detail.status}"
        time.sleep(0.05)
    return detail


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
    before = len(batch.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, status="pending,completed,failed", limit=500))
    with pytest.raises(ubiops.ApiException) as error:
        batch.sdk().batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=items)
    assert error.value.status == 400 and message in error.value.body
    after = len(batch.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, status="pending,completed,failed", limit=500))
    assert after == before, "nothing of a rejected batch is queued"


def test_batch_body_must_be_a_list(batch):
    response = httpx.post(f"{batch.requests_url()}/batch", json={"x": 1})
    assert response.status_code == 400 and response.json() == {"error": "A batch request body is a JSON list of requests"}


def test_pending_request_can_be_cancelled_running_one_cannot(emulators):
    crashing = emulators("crashing")
    api = crashing.sdk()
    slow, queued = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"mode": "sleep 2"}, {"mode": "ok"}])
    wait_for_status(api, slow.id, {"processing"})
    assert api.deployment_requests_update(PROJECT, DEPLOYMENT, queued.id, {"status": "cancelled"})["status"] == "cancelled"
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_update(PROJECT, DEPLOYMENT, slow.id, {"status": "cancelled"})
    assert error.value.status == 400 and "is processing; only pending batch requests can be cancelled" in error.value.body
    assert wait_for_status(api, slow.id, {"completed", "failed"}).status == "completed"
    time.sleep(0.5)
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, queued.id).status == "cancelled", "a cancelled request never runs"


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


def test_list_filters_by_status_and_pages(batch):
    api = batch.sdk()
    ids = [api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": n}).id for n in range(3)]
    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": "bad"})
    newest = api.deployment_requests_list(PROJECT, DEPLOYMENT, limit=2)
    assert [r.id for r in newest] == ids[::-1][:2], "default filter is completed, newest first"
    assert [r.id for r in api.deployment_requests_list(PROJECT, DEPLOYMENT, limit=1, offset=1)] == [ids[1]]
    assert failed.id in [r.id for r in api.deployment_requests_list(PROJECT, DEPLOYMENT, status="failed")]
    assert [r.id for r in api.deployment_version_requests_list(PROJECT, DEPLOYMENT, "v1", search_id=ids[0][:13])] == [ids[0]]


@pytest.mark.parametrize("status, message", [
    ("pending,processing", "pending and processing cannot be combined"),
    ("done", "Unknown status done"),
])
def test_list_rejects_bad_status_filters(batch, status, message):
    with pytest.raises(ubiops.ApiException) as error:
        batch.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, status=status)
    assert error.value.status == 400 and message in error.value.body


def test_unknown_request_and_wrong_version_are_404(batch):
    api = batch.sdk()
    request_id = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 1}).id
    for call in (lambda: api.deployment_requests_get(PROJECT, DEPLOYMENT, "no-such-id"),
                 lambda: api.deployment_version_requests_get(PROJECT, DEPLOYMENT, request_id, "v9")):
        with pytest.raises(ubiops.ApiException) as error:
            call()
        assert error.value.status == 404


def test_delete_removes_a_finished_request(batch):
    api = batch.sdk()
    request_id = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 1}).id
    api.deployment_requests_delete(PROJECT, DEPLOYMENT, request_id)
    with pytest.raises(ubiops.ApiException) as error:
        api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)
    assert error.value.body == '{"error":"Request not found"}'


def test_killed_mid_batch_keeps_finished_requests_and_fails_unfinished_ones(tmp_path):
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
        for request_id in (running.id, waiting.id):
            detail = api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)
            assert detail.status == "failed" and detail.error_message == "The emulator stopped before this request finished"
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
