"""Streaming requests, as `ubiops.utils.stream_deployment_request` and the CLI make them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from harness import DEPLOYMENT, PROJECT, eventually, start_emulator
from ubiops.exceptions import UbiOpsException
from ubiops.utils import stream_deployment_request

FLOOD = 200
"""The 1 MiB updates a flooding request streams (the `streaming` package's `flood`): far more than what
the emulator keeps for a caller that reads slowly, with what the sockets between hold."""


def test_partial_output_then_the_full_response(emulators):
    streaming = emulators("streaming")
    client = streaming.sdk().api_client
    events = list(stream_deployment_request(client, PROJECT, DEPLOYMENT, data="hello streaming world", full_response=True))
    assert events[:3] == ["HELLO", "STREAMING", "WORLD"]
    final = events[3]
    assert (final.status, final.result, final.deployment, final.version) == ("completed", "HELLO STREAMING WORLD", DEPLOYMENT, "v1")
    assert len(events) == 4


def test_an_update_with_carriage_returns_reaches_the_sdk_line_by_line(tmp_path):
    """A progress text like `50%\\r100%` (CR ends a line in an event stream, as LF does) arrives as
    its lines, not cut at the CR with the rest taken for the response."""
    package = tmp_path / "package"
    package.mkdir()
    (package / "deployment.py").write_text(
        "class Deployment:\n    def __init__(self, base_directory, context):\n        pass\n\n"
        "    def request(self, data, context):\n"
        "        context['streaming_update']('50%\\r100%\\r\\ndone')\n        return data\n")
    emulator = start_emulator(package, tmp_path)
    try:
        events = list(stream_deployment_request(emulator.sdk().api_client, PROJECT, DEPLOYMENT, data="x", full_response=True))
        wire = httpx.post(f"{emulator.requests_url()}/stream", content="x", headers={"Content-Type": "text/plain"}).text
    finally:
        emulator.stop()
    assert events[:3] == ["50%", "100%", "done"] and events[3].status == "completed" and len(events) == 4
    assert wire.startswith("data:50%\ndata:100%\ndata:done\n\n{"), wire


def test_streamed_request_is_kept_in_history(emulators):
    streaming = emulators("streaming")
    api = streaming.sdk()
    final = list(stream_deployment_request(api.api_client, PROJECT, DEPLOYMENT, version="v1", data="a b", full_response=True))[-1]
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, final.id).result == "A B"


def ended_request(api, folder: Path):
    """The flooding request whose folder is `folder`, once it has ended."""
    request_id = eventually(lambda: (folder / "id").is_file() and (folder / "id").read_text(), "the request started")
    return eventually(lambda: (request := api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id)).status
                      not in ("pending", "processing") and request, "the request ended", seconds=60)


def test_a_caller_that_stops_reading_holds_the_deployment_back_until_the_timeout(emulators, tmp_path):
    """Updates were queued for the caller without bound: a deployment streaming 1 MB updates to a caller
    that read slowly or not at all filled the server's memory (3 to 6 GB in 20 s). Now its
    `streaming_update` waits for the caller, and the request's timeout ends a stream the caller stalls."""
    streaming = emulators("streaming")
    api = streaming.sdk()
    events = stream_deployment_request(api.api_client, PROJECT, DEPLOYMENT, data=f"flood {FLOOD} {tmp_path}", timeout=10)
    assert next(events).startswith("0 s")
    ended = ended_request(api, tmp_path)  # the caller reads nothing more meanwhile
    sent = (tmp_path / "sent").stat().st_size
    assert sent < FLOOD // 4, f"the deployment streamed {sent} MiB to a caller that read 1"
    message = "The request timed out after 10 seconds; its instance is being restarted"
    assert (ended.status, ended.error_message) == ("failed", message)
    with pytest.raises(UbiOpsException, match=message):
        for _ in events:  # what was kept for the caller, then the failed response
            pass
    assert list(stream_deployment_request(api.api_client, PROJECT, DEPLOYMENT, data="a b")) == ["A", "B"]


def test_a_caller_that_hangs_up_leaves_the_request_to_run_on_its_updates_dropped(emulators, tmp_path):
    """As a hung-up request runs to its end (README): its updates are no longer kept, nor waited for."""
    streaming = emulators("streaming")
    with httpx.stream("POST", f"{streaming.requests_url()}/stream", content=f"flood {FLOOD} {tmp_path}",
                      headers={"Content-Type": "text/plain"}) as response:
        assert next(response.iter_lines()).startswith("data:0 s")
    ended = ended_request(streaming.sdk(), tmp_path)
    assert (ended.status, ended.result, (tmp_path / "sent").stat().st_size) == ("completed", "flooded", FLOOD)


def test_a_list_body_is_a_list_of_requests_as_the_cli_sends(emulators):
    batch = emulators("batch")
    with httpx.stream("POST", f"{batch.requests_url()}/stream", json=[{"x": 1}, {"x": 2}],
                      headers={"Accept": "text/event-stream"}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert lines[-1].startswith("{") and '"status":"completed"' in lines[-1] and '"result":[{"y":10.02},{"y":20.02}]' in lines[-1]


def test_failing_stream_request_raises_in_the_sdk_with_the_message(emulators):
    failing = emulators("failing")
    client = failing.sdk().api_client
    try:
        list(stream_deployment_request(client, PROJECT, DEPLOYMENT, data={"public": True}))
    except Exception as exc:
        assert "The portrait is too dark to profile" in str(exc)
    else:
        raise AssertionError("a failed streamed request must raise")


def test_streaming_to_a_version_without_a_package_is_a_503_not_a_broken_stream(emulators):
    streaming = emulators("streaming", "--instances", "1")
    streaming.sdk().deployment_versions_create(PROJECT, DEPLOYMENT, {"version": "empty"})
    response = httpx.post(f"{streaming.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/empty/requests/stream",
                          content="a", headers={"Content-Type": "text/plain"})
    message = "Version empty has no deployment package yet: upload one and wait for its build"
    assert response.status_code == 503
    assert response.json() == {"error": message, "error_message": message}


@pytest.mark.parametrize("version, timeout, message", [
    (None, 5, "query timeout: Input should be greater than or equal to 10"),
    ("v9", 300, "Version not found"),
])
def test_a_refused_stream_call_reaches_the_sdk_as_its_reason(emulators, version, timeout, message):
    """The SDK's stream reader ignores the status code and reads only `error_message` (regression: the CLI
    printed "Invalid value for `id`, must not be `None`" for every refused stream call)."""
    client = emulators("streaming").sdk().api_client
    with pytest.raises(UbiOpsException) as error:
        list(stream_deployment_request(client, PROJECT, DEPLOYMENT, version=version, data="a", timeout=timeout))
    assert str(error.value) == f"Request failed with error message: {message}"
