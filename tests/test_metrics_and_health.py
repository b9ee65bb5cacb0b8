"""`/metrics`, `/livez` and `/readyz` on a real emulator, and `--log-format json`: requests, instance
losses, the queue and builds are counted as Prometheus reads them; readiness follows every version's
status; probes need no token and tell nothing to a caller without it; JSON log lines say which
deployment, version, instance and request each line is about."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, ROOT, Emulator, eventually, free_port, metric_values, start_emulator, wait_for_log, zip_bytes
from prometheus_client.parser import text_string_to_metric_families

from emulator.launcher import wait_until_served

TOKEN = "metrics-test-token"
GUARD_SECONDS = 30
"""How long a test waits for a step before failing: a guard against hanging, never reached."""
VERSION = {"project": PROJECT, "deployment": DEPLOYMENT, "version": "v1"}
GATED_PACKAGE = '''
import os
import time


class Deployment:
    def __init__(self):
        while not os.path.exists({gate!r}):
            time.sleep(0.05)

    def request(self, data):
        return data
'''
BROKEN_PACKAGE = '''
class Deployment:
    def __init__(self):
        raise RuntimeError("no model here")

    def request(self, data):
        return data
'''


def scrape(emulator: Emulator, **headers: str) -> Callable[..., float]:
    response = httpx.get(f"{emulator.url}/metrics", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return metric_values(response.text)



def test_requests_instance_losses_and_the_queue_are_counted(emulators):
    crashing = emulators("crashing")
    api = crashing.sdk()
    wait_until_served(crashing)  # its first instance's start counted before the first reading, not after
    before = scrape(crashing)
    assert eventually(lambda: scrape(crashing)("ubiops_emulator_build_duration_seconds_count", **VERSION, outcome="success"),
                      "the --package revision's build is counted") == 1
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "sys_exit"}).status == "failed"
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": 1}).status == "failed", "input of the wrong type"
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(httpx.post, crashing.requests_url(), params={"timeout": 10}, json={"mode": "sleep 600"},
                           timeout=GUARD_SECONDS)
        eventually(lambda: api.deployment_requests_list(PROJECT, DEPLOYMENT, status="processing"), "the slow request runs")
        waiting = pool.submit(httpx.post, crashing.requests_url(), json={"mode": "ok"}, timeout=GUARD_SECONDS)
        eventually(lambda: scrape(crashing)("ubiops_emulator_queue_length", **VERSION) == 1, "a request waits in the queue")
        assert slow.result().json()["status"] == "failed" and waiting.result().json()["status"] == "completed"
    after = scrape(crashing)

    def added(name: str, **labels: str) -> float:
        return after(name, **VERSION, **labels) - before(name, **VERSION, **labels)

    assert (added("ubiops_emulator_requests_total", status="completed"),
            added("ubiops_emulator_requests_total", status="failed")) == (2, 3)
    assert added("ubiops_emulator_request_duration_seconds_count") == 5
    assert added("ubiops_emulator_request_duration_seconds_bucket", le="+Inf") == 5
    assert added("ubiops_emulator_request_duration_seconds_sum") >= 10, "the timed-out request took its 10 s"
    assert (added("ubiops_emulator_instance_crashes_total", reason="crash"),
            added("ubiops_emulator_instance_crashes_total", reason="timeout")) == (1, 1)
    assert added("ubiops_emulator_instance_restarts_total") == added("ubiops_emulator_instance_starts_total") == 2
    assert after("ubiops_emulator_queue_length", **VERSION) == 0


def test_readyz_waits_for_every_version_and_builds_are_timed(tmp_path):
    emulator = start_emulator("minimal", tmp_path)
    try:
        readyz = f"{emulator.url}/readyz"
        eventually(lambda: httpx.get(readyz).status_code == 200, "the --package version is available")
        assert httpx.get(readyz).json() == {"status": "ready"}
        api = emulator.sdk()
        api.deployments_create(PROJECT, {"name": "later", "input_type": "plain", "output_type": "plain"})
        api.deployment_versions_create(PROJECT, "later", {"version": "v1"})
        not_ready = {"project": PROJECT, "deployment": "later", "version": "v1", "status": "unavailable",
                     "error": "Version v1 has no deployment package yet: upload one and wait for its build"}
        assert_not_ready(emulator, [not_ready])

        assert build(api, tmp_path / "broken.zip", BROKEN_PACKAGE) == "failed"
        (failed,) = httpx.get(readyz).json()["versions"]
        assert failed["status"] == "unavailable" and failed["error"].startswith("Version v1's build failed: ")
        assert "RuntimeError: no model here" in failed["error"], "the build's reason, not 'no package yet'"
        refused = httpx.post(f"{emulator.url}/v2.1/projects/{PROJECT}/deployments/later/requests", content="hi")
        assert refused.status_code == 503 and refused.json()["error"] == failed["error"]
        gate = tmp_path / "gate"
        revision = upload(api, tmp_path / "gated.zip", GATED_PACKAGE.format(gate=str(gate)))
        eventually(lambda: api.revisions_get(PROJECT, "later", revision, "v1").status == "deploying", "__init__ runs")
        assert_not_ready(emulator, [{**not_ready, "status": "building", "error": (
            "Version v1 is not built yet: its build is still running (revision status: deploying); wait for it "
            "(`ubiops versions wait`, or ubiops.utils.wait_for_deployment_version)")}])
        gate.touch()
        assert wait_for_build(api, revision) == "success"
        assert httpx.get(readyz).status_code == 200

        value = scrape(emulator)
        later = {"project": PROJECT, "deployment": "later", "version": "v1"}
        assert (value("ubiops_emulator_build_duration_seconds_count", **later, outcome="failed"),
                value("ubiops_emulator_build_duration_seconds_count", **later, outcome="success")) == (1, 1)
        assert value("ubiops_emulator_queue_length", **later) == 0
    finally:
        emulator.stop()


def upload(api: ubiops.CoreApi, path, code: str) -> str:
    """Upload `code` as a new revision of later/v1; its id (the build runs in the background)."""
    path.write_bytes(zip_bytes({"deployment_package/deployment.py": code.encode()}))
    return api.revisions_file_upload(PROJECT, "later", "v1", file=str(path)).revision


def wait_for_build(api: ubiops.CoreApi, revision: str) -> str:
    """The revision's build status once it has ended."""
    return eventually(lambda: (status := api.revisions_get(PROJECT, "later", revision, "v1").status)
                      not in ("queued", "building", "deploying") and status, "the build ends")


def build(api: ubiops.CoreApi, path, code: str) -> str:
    return wait_for_build(api, upload(api, path, code))


def assert_not_ready(emulator: Emulator, versions: list[dict], **headers: str) -> None:
    response = httpx.get(f"{emulator.url}/readyz", headers=headers)
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "not_ready": len(versions), "versions": versions}


def test_a_version_that_cannot_start_is_not_ready_while_the_server_is_live(emulators):
    broken = emulators("broken_init")
    wait_for_log(broken, "cannot start: ")
    assert eventually(lambda: scrape(broken)("ubiops_emulator_build_duration_seconds_count", **VERSION, outcome="failed"),
                      "the --package revision's failed build is counted") == 1
    assert httpx.get(f"{broken.url}/livez").json() == {"status": "ok"}
    (version,) = httpx.get(f"{broken.url}/readyz").json()["versions"]
    assert (version["deployment"], version["version"], version["status"]) == (DEPLOYMENT, "v1", "unavailable")
    assert "failed to start (FileNotFoundError: model1.pkl is missing from the package)" in version["error"]


def test_with_a_token_probes_are_open_and_name_nothing_metrics_need_the_token(emulators):
    guarded = emulators("broken_init", token=TOKEN)
    wait_for_log(guarded, "cannot start: ")
    assert httpx.get(f"{guarded.url}/livez").status_code == 200
    anonymous = httpx.get(f"{guarded.url}/readyz")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "not ready", "not_ready": 1}
    assert DEPLOYMENT not in anonymous.text
    for wrong in ({}, {"Authorization": "Token wrong"}):
        assert "versions" not in httpx.get(f"{guarded.url}/readyz", headers=wrong).json()
        response = httpx.get(f"{guarded.url}/metrics", headers=wrong)
        assert response.status_code == 401 and DEPLOYMENT not in response.text
    shown = httpx.get(f"{guarded.url}/readyz", headers={"Authorization": f"Token {TOKEN}"}).json()
    assert [(v["deployment"], v["status"]) for v in shown["versions"]] == [(DEPLOYMENT, "unavailable")]
    value = scrape(guarded, Authorization=f"Bearer {TOKEN}")
    assert value("ubiops_emulator_instance_crashes_total", **VERSION, reason="start") == 1


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Host": "evil.example"}])
def test_foreign_pages_and_hosts_are_refused_as_on_every_route(emulators, path, headers):
    response = httpx.get(emulators("plain").url + path, headers=headers)
    assert response.status_code == 403 and " refused" in response.json()["error"]


def test_json_log_lines_carry_the_request_version_and_instance(emulators):
    echo = emulators("echo", "--log-format", "json")
    form = {"int_in": "1", "double_in": "1", "string_in": "s", "bool_in": "true", "dict_in": "{}",
            "array_int_in": "[]", "array_double_in": "[]", "array_string_in": "[]"}
    answer = httpx.post(echo.requests_url(), files={"file_in": ("p.bin", b"bytes")}, data=form).json()
    assert answer["status"] == "completed", answer
    wait_for_log(echo, f"[request {answer['id']}] echo handling")
    lines = [json.loads(line) for line in echo.log().splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    about = {line["logger"]: line for line in lines if line.get("request_id") == answer["id"]}
    assert about.keys() == {"emulator.deployment", "emulator.requests"}
    printed, ended = about["emulator.deployment"], about["emulator.requests"]
    assert printed["message"].endswith("echo handling ['array_double_in', 'array_int_in', 'array_string_in', "
                                       "'bool_in', 'dict_in', 'double_in', 'file_in', 'int_in', 'string_in']")
    revision = echo.sdk().deployment_versions_get(PROJECT, DEPLOYMENT, "v1").active_revision
    assert (printed["deployment"], printed["version"], printed["revision_id"], printed["instance"]) == (
        DEPLOYMENT, "v1", revision, 1), "the revision it runs, as logs_list labels it (the JSON line left it out)"
    assert printed["stream"] == "stdout", "which stream it printed on, which logs_list gives as its level"
    assert (ended["deployment"], ended["version"], ended["instance"], ended["status"]) == (DEPLOYMENT, "v1", 1, "completed")
    assert ended["duration_seconds"] >= 0
    (ready,) = [line for line in lines if "echo ready in" in line["message"]]
    assert "request_id" not in ready and ready["instance"] == 1, "printed outside a request"


def test_an_unknown_log_format_is_refused_at_start(tmp_path):
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), "--log-format", "xml"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "argument --log-format: invalid choice: 'xml'" in run.stderr


@pytest.mark.parametrize("deleted", ["version", "deployment"])
def test_a_renamed_versions_metrics_follow_it_and_a_deleted_ones_go(tmp_path, deleted):
    """Each version's label sets stayed for ever: 15 versions made, used and deleted left 600 of the
    628 lines of /metrics naming versions that were gone; a renamed one's counts stayed under its old names."""
    emulator = start_emulator("plain", tmp_path)
    try:
        api = emulator.sdk()
        wait_until_served(emulator)
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data="hi").status == "completed"
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "v1", {"version": "renamed"})
        api.deployments_update(PROJECT, DEPLOYMENT, {"name": "moved"})
        moved = {"project": PROJECT, "deployment": "moved", "version": "renamed"}
        value = scrape(emulator)
        assert (value("ubiops_emulator_requests_total", **moved, status="completed"),
                value("ubiops_emulator_request_duration_seconds_count", **moved)) == (1, 1)
        assert value("ubiops_emulator_instance_starts_total", **moved) >= 1, "the first start, counted under v1"
        assert labelled(emulator, "deployment", DEPLOYMENT) == labelled(emulator, "version", "v1") == set()
        if deleted == "version":
            api.deployment_versions_delete(PROJECT, "moved", "renamed")
        else:
            api.deployments_delete(PROJECT, "moved")
        assert labelled(emulator, "version", "renamed") == set()
    finally:
        emulator.stop()


def labelled(emulator: Emulator, label: str, value: str) -> set[str]:
    """The names of the samples /metrics has whose `label` is `value`."""
    families = text_string_to_metric_families(httpx.get(f"{emulator.url}/metrics").text)
    return {sample.name for family in families for sample in family.samples if sample.labels.get(label) == value}
