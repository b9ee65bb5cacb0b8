"""Requests in flight while their version changes under them: a new revision is uploaded (as `push`
and `ubiops deployments deploy` do), the version or deployment is deleted, or the emulator is
stopped. Each request gets an answer; none waits forever."""

from __future__ import annotations

import http.client
import json
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, Emulator, eventually, start_emulator, wait_for_log, zip_bytes

CLIENT_TIMEOUT = 30
SLOW_PACKAGE = '''
import time

class Deployment:
    def request(self, data):
        time.sleep(data["seconds"])
        return {{"revision": "{tag}"}}
'''


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emulator = start_emulator("minimal", tmp_path_factory.mktemp("replacement"))
    yield emulator
    emulator.stop()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(4) as executor:
        yield executor


def deploy(emulator: Emulator, tmp_path, name: str) -> ubiops.CoreApi:
    """A deployment `name` with version v1 built from the slow package tagged `one`."""
    api = emulator.sdk()
    api.deployments_create(PROJECT, {
        "name": name, "input_type": "structured", "output_type": "structured",
        "input_fields": [{"name": "seconds", "data_type": "double"}],
        "output_fields": [{"name": "revision", "data_type": "string"}]})
    api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1", environment="python3-11"))
    upload(emulator, tmp_path, name, "one")
    return api


def upload(emulator: Emulator, tmp_path, name: str, tag: str, init: str = "", extra: dict[str, bytes] | None = None,
           wait: bool = True) -> str:
    """Upload the slow package tagged `tag` (its `__init__` running `init`, beside `extra` files) as a new
    revision of v1 and (with `wait`) wait for its build; the revision's id."""
    api = emulator.sdk()
    package = tmp_path / f"{tag}.zip"
    source = SLOW_PACKAGE.format(tag=tag) + (f"\n    def __init__(self):\n        {init}\n" if init else "")
    package.write_bytes(zip_bytes({"deployment_package/deployment.py": source.encode(), **(extra or {})}))
    revision = api.revisions_file_upload(PROJECT, name, "v1", file=str(package)).revision
    if wait:
        assert built(api, name, revision) == "success"
    return revision


def built(api: ubiops.CoreApi, name: str, revision: str) -> str:
    """The status a revision of `name`'s v1 ends its build with."""
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while (status := api.revisions_get(PROJECT, name, revision, "v1").status) in ("queued", "building", "deploying"):
        assert time.monotonic() < deadline, "the build did not finish"
        time.sleep(0.05)
    return status


def send(pool: ThreadPoolExecutor, emulator: Emulator, name: str, seconds: float) -> Future:
    url = f"{emulator.api}/projects/{PROJECT}/deployments/{name}/versions/v1/requests"
    return pool.submit(lambda: httpx.post(url, json={"seconds": seconds}, timeout=CLIENT_TIMEOUT).json())


def wait_for_request(emulator: Emulator, name: str, status: str) -> str:
    """The id of a request to `name`'s v1 that has reached `status` (`processing`: the one instance is busy)."""
    api = emulator.sdk()
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while not (found := api.deployment_version_requests_list(PROJECT, name, "v1", status=status)):
        assert time.monotonic() < deadline, f"no request reached {status}"
        time.sleep(0.05)
    return found[0].id

def test_a_new_revision_lets_the_running_request_finish_and_runs_the_queued_one(emulator, tmp_path, pool):
    deploy(emulator, tmp_path, "replaced")
    running = send(pool, emulator, "replaced", 6)
    wait_for_request(emulator, "replaced", "processing")
    queued = send(pool, emulator, "replaced", 0)
    wait_for_request(emulator, "replaced", "pending")
    upload(emulator, tmp_path, "replaced", "two")
    assert not running.done(), "the first request should still be running when the new revision is built"
    assert queued.result()["result"] == {"revision": "two"}, "a queued request runs on the new revision"
    assert running.result()["result"] == {"revision": "one"}, "a running request finishes on its instance"
    after = send(pool, emulator, "replaced", 0).result()
    assert (after["status"], after["result"]) == ("completed", {"revision": "two"})


@pytest.mark.parametrize("deleted", ["version", "deployment"])
def test_deleting_under_a_running_request_fails_it_clearly(emulator, tmp_path, pool, deleted):
    name = f"deleted-{deleted}"
    api = deploy(emulator, tmp_path, name)
    running = send(pool, emulator, name, 25)
    request_id = wait_for_request(emulator, name, "processing")
    queued = send(pool, emulator, name, 0)
    wait_for_request(emulator, name, "pending")
    if deleted == "version":
        api.deployment_versions_delete(PROJECT, name, "v1")
    else:
        api.deployments_delete(PROJECT, name)
    for answer in (running.result(), queued.result()):
        assert answer["status"] == "failed", answer
        assert answer["error_message"] == f"{'Version v1' if deleted == 'version' else f'Deployment {name}'} " \
                                          "was deleted before this request finished"
    assert request_id == running.result()["id"]
    # A new one of the same name starts without the deleted one's history: before, it listed and served
    # the deleted one's requests, their data included (on UbiOps requests belong to a version, not a name).
    if deleted == "version":
        api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1", environment="python3-11"))
    else:
        deploy(emulator, tmp_path, name)
    assert api.deployment_version_requests_list(PROJECT, name, "v1", status="failed") == []
    with pytest.raises(ubiops.ApiException) as gone:
        api.deployment_requests_get(PROJECT, name, request_id)
    assert gone.value.status == 404


def test_stopping_the_emulator_answers_the_running_request_at_once(tmp_path, pool):
    emulator = start_emulator("minimal", tmp_path)
    try:
        deploy(emulator, tmp_path, "stopped")
        running = send(pool, emulator, "stopped", 25)
        wait_for_request(emulator, "stopped", "processing")
        emulator.process.send_signal(signal.SIGTERM)
        answer = running.result()
        assert emulator.process.wait(CLIENT_TIMEOUT) == -signal.SIGTERM, "uvicorn exits by the signal it was stopped with"
    finally:
        if emulator.process.poll() is None:
            emulator.process.kill()
    assert (answer["status"], answer["error_message"]) == ("failed", "The emulator stopped before this request finished")
    assert "Traceback" not in emulator.log()


def test_the_package_versions_revision_follows_the_restart_its_new_variables_make_while_it_starts(tmp_path):
    """The `--package` version's revision ends `success` when the instances a change of its variables
    restarted (as `deployer check` sets them) start: it waited for the replaced ones for ever, and the
    version stayed `building`."""
    gate, folder = tmp_path / "gate", tmp_path / "package"
    folder.mkdir()
    (folder / "deployment.py").write_text(f"""
import os, time

class Deployment:
    def __init__(self):
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.05)

    def request(self, data):
        return os.environ["GREETING"] + " " + data
""")
    emulator = start_emulator(folder, tmp_path)
    try:
        api = emulator.sdk()
        revision = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").active_revision
        eventually(lambda: api.revisions_get(PROJECT, DEPLOYMENT, revision, "v1").status == "deploying", "__init__ runs")
        api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1", ubiops.EnvironmentVariableCreate(
            name="GREETING", value="hello", secret=False))
        wait_for_log(emulator, "restarting")
        gate.touch()
        assert built(api, DEPLOYMENT, revision) == "success"
        assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "available"
        assert httpx.post(emulator.requests_url(), content="you", headers={"Content-Type": "text/plain"},
                          timeout=CLIENT_TIMEOUT).json()["result"] == "hello you"
    finally:
        emulator.stop()


def test_an_older_build_that_ends_last_does_not_replace_the_newer_revision(emulator, tmp_path, pool):
    """Before, the slower older build took over once it ended: the latest revision said `success` while
    the old code served."""
    api = deploy(emulator, tmp_path, "ordered")
    gate = tmp_path / "older-gate"
    older = upload(emulator, tmp_path, "ordered", "older", wait=False,
                   init=f"while not __import__('os').path.exists({str(gate)!r}): time.sleep(0.05)")
    eventually(lambda: api.revisions_get(PROJECT, "ordered", older, "v1").status == "deploying", "the older __init__ runs")
    newer = upload(emulator, tmp_path, "ordered", "newer")
    assert api.revisions_get(PROJECT, "ordered", older, "v1").status == "deploying", "the older build ends last"
    gate.touch()
    assert built(api, "ordered", older) == "success"
    assert api.deployment_versions_get(PROJECT, "ordered", "v1").active_revision == newer
    assert send(pool, emulator, "ordered", 0).result()["result"] == {"revision": "newer"}


def test_deleting_a_version_while_it_builds_stops_the_instance_the_build_started(emulator, tmp_path):
    """Before, the build ended anyway and its instance ran on, for a version that no longer existed."""
    api = deploy(emulator, tmp_path, "deleted-building")
    started = tmp_path / "instance-pid"
    upload(emulator, tmp_path, "deleted-building", "never",
           init=f"open({str(started)!r}, 'w').write(str(__import__('os').getpid())); time.sleep(60)", wait=False)
    pid = int(eventually(lambda: started.is_file() and started.read_text(), "the build's instance started"))
    api.deployment_versions_delete(PROJECT, "deleted-building", "v1")
    eventually(lambda: not Path(f"/proc/{pid}").exists(), "the build's instance stopped", seconds=CLIENT_TIMEOUT)
    assert all(i.deployment != "deleted-building" for i in api.project_instances_list(PROJECT).results)


def test_renaming_a_deployment_while_its_revision_unpacks_ends_the_build_under_the_new_name(emulator, tmp_path, pool):
    """Before, the build looked its deployment up by the old name once the zip was unpacked, failed with
    NotFound, and left the revision `building` for ever."""
    api = deploy(emulator, tmp_path, "renamed-building")
    revision = upload(emulator, tmp_path, "renamed-building", "renamed", wait=False,
                      extra={"deployment_package/weights.bin": bytes(64 * 1024 * 1024)})  # unpacking takes a while
    api.deployments_update(PROJECT, "renamed-building", {"name": "renamed-built"})
    assert built(api, "renamed-built", revision) == "success"
    assert send(pool, emulator, "renamed-built", 0).result()["result"] == {"revision": "renamed"}


def test_a_failed_builds_unpacked_files_and_a_deleted_versions_files_are_removed(emulator, tmp_path):
    """Before, every revision's unpacked package stayed in the data folder for good, and a deleted
    version's kept zips too: the folder grew with every upload."""
    api = deploy(emulator, tmp_path, "tidy")
    served = api.deployment_versions_get(PROJECT, "tidy", "v1").active_revision
    failed = upload(emulator, tmp_path, "tidy", "broken", init="raise RuntimeError('no model')", wait=False)
    assert built(api, "tidy", failed) == "failed"
    data = emulator.data_dir
    assert not (data / "builds" / failed).exists() and (data / "revisions" / f"{failed}.zip").exists(), \
        "its unpacked files go; its zip stays, to be downloaded"
    assert (data / "builds" / served).is_dir(), "the serving revision's are kept"
    api.deployment_versions_delete(PROJECT, "tidy", "v1")
    for revision in (served, failed):
        eventually(lambda revision=revision: not (data / "builds" / revision).exists()
                   and not (data / "revisions" / f"{revision}.zip").exists(), "the deleted version's files removed")


GATED_PACKAGE = '''
import os, time

class Deployment:
    def __init__(self, base_directory):
        self.tag = os.path.join(base_directory, "tag.txt")

    def request(self, data):
        while data["seconds"] and not os.path.exists({gate!r}):
            time.sleep(0.05)
        with open(self.tag) as tag:  # its package's file, read once the gate opens
            return {{"revision": tag.read()}}
'''


def test_a_replaced_revisions_unpacked_files_go_once_the_request_running_on_it_ends(emulator, tmp_path, pool):
    """Before, each replaced revision's unpacked package stayed until the emulator restarted: a 20 MB
    package uploaded four times grew the data folder by 80 MB. A request still running on the old
    instances reads its package's files to its end."""
    api = deploy(emulator, tmp_path, "tidy-replaced")
    gate, builds = tmp_path / "gate", emulator.data_dir / "builds"

    def upload_gated(tag: str) -> str:
        package = tmp_path / f"{tag}.zip"
        package.write_bytes(zip_bytes({"deployment_package/deployment.py": GATED_PACKAGE.format(gate=str(gate)).encode(),
                                       "deployment_package/tag.txt": tag.encode()}))
        revision = api.revisions_file_upload(PROJECT, "tidy-replaced", "v1", file=str(package)).revision
        assert built(api, "tidy-replaced", revision) == "success"
        return revision

    first = api.deployment_versions_get(PROJECT, "tidy-replaced", "v1").active_revision
    one = upload_gated("one")
    eventually(lambda: not (builds / first).exists(), "the first revision's unpacked files removed")
    running = send(pool, emulator, "tidy-replaced", 1)
    wait_for_request(emulator, "tidy-replaced", "processing")
    two = upload_gated("two")
    assert (builds / one).is_dir(), "a request runs on it"
    gate.touch()
    assert running.result()["result"] == {"revision": "one"}
    eventually(lambda: not (builds / one).exists(), "the replaced revision's unpacked files removed")
    assert (builds / two).is_dir()
    assert {first, one, two} <= {z.stem for z in (emulator.data_dir / "revisions").glob("*.zip")}, "the zips stay"
    assert send(pool, emulator, "tidy-replaced", 0).result()["result"] == {"revision": "two"}


@pytest.mark.parametrize("deleted", ["version", "deployment"])
@pytest.mark.parametrize("route", ["requests", "requests/batch"])
def test_a_request_whose_version_is_deleted_while_its_body_arrives_is_not_found_and_not_kept(emulator, tmp_path,
                                                                                               deleted, route):
    """Before, the request was accepted for the deleted version (a batch `pending`, then failed for want
    of a package; a direct one 503), and both failed records showed up in the new v1's history."""
    name = f"deleted-mid-body-{deleted}-{route.replace('/', '-')}"
    api = deploy(emulator, tmp_path, name)
    body = json.dumps([{"seconds": 0}] if route.endswith("batch") else {"seconds": 0}).encode()
    connection = http.client.HTTPConnection(urlsplit(emulator.api).netloc, timeout=CLIENT_TIMEOUT)
    connection.putrequest("POST", f"{urlsplit(emulator.api).path}/projects/{PROJECT}/deployments/{name}/versions/v1/{route}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    # The server asks for the body once the route reads it, after it has found the version.
    assert interim_answer(connection) == b"HTTP/1.1 100 Continue\r\n\r\n"
    if deleted == "version":
        api.deployment_versions_delete(PROJECT, name, "v1")
    else:
        api.deployments_delete(PROJECT, name)
    connection.send(body)
    answer = connection.getresponse()
    assert (answer.status, json.loads(answer.read())) == (404, {"error": f"{deleted.capitalize()} not found"})
    connection.close()
    if deleted == "version":
        api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1", environment="python3-11"))
        upload(emulator, tmp_path, name, "again")
    else:
        deploy(emulator, tmp_path, name)
    assert api.deployment_version_requests_list(PROJECT, name, "v1") == [], "none recorded, in any status"


def interim_answer(connection: http.client.HTTPConnection) -> bytes:
    """The interim answer (`100 Continue`) a server sends before its answer, read whole from the socket."""
    assert connection.sock is not None, "connected"
    answer = b""
    while not answer.endswith(b"\r\n\r\n") and (byte := connection.sock.recv(1)):
        answer += byte
    return answer
