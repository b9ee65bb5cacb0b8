"""`--reload`: edit the package, and the next request runs the new code, without a restart."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from harness import DEPLOYMENT, PROJECT, eventually, start_emulator, wait_for_log, zip_bytes
from ubiops.utils import wait_for_deployment_version
from ubiops.utils.exceptions import StatusError

from emulator.reload import POLL_SECONDS

CODE = '''
import os
import time

class Deployment:
    def request(self, data):
        if data.startswith("gate "):  # says it has started, then waits for the file it names
            gate = data.removeprefix("gate ")
            open(gate + ".taken", "w").close()
            while not os.path.exists(gate):
                time.sleep(0.05)
        return "{greeting} " + data
'''


def write_package(folder, greeting: str) -> None:
    (folder / "deployment.py").write_text(CODE.replace("{greeting}", greeting))


def request(emulator, text: str) -> httpx.Response:
    return httpx.post(emulator.requests_url(), content=text, headers={"Content-Type": "text/plain"}, timeout=60)


def wait_for_result(emulator, text: str, expected: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while (result := request(emulator, text).json().get("result")) != expected:
        assert time.monotonic() < deadline, f"still {result!r} after {seconds} s"
        time.sleep(0.1)


@pytest.fixture
def package(tmp_path):
    folder = tmp_path / "package"
    folder.mkdir()
    write_package(folder, "hello")
    return folder


def test_edit_reaches_the_next_request_and_in_flight_requests_finish_first(package, tmp_path):
    emulator, gate = start_emulator(package, tmp_path, "--reload"), tmp_path / "gate"
    try:
        assert request(emulator, "you").json()["result"] == "hello you"
        old: dict = {}
        in_flight = threading.Thread(target=lambda: old.update(request(emulator, f"gate {gate}").json()))
        in_flight.start()
        eventually(gate.with_suffix(".taken").exists, "the request was taken by an instance")
        write_package(package, "goodbye")
        wait_for_result(emulator, "you", "goodbye you")
        gate.touch()
        in_flight.join()
        assert (old["status"], old["result"]) == ("completed", f"hello gate {gate}"), "started on the old code, finished on it"
        assert "changed: deployment.py; restarting the instances on the new code" in wait_for_log(emulator, "reloaded")
    finally:
        emulator.stop()


GATED = """
import os
import time

class Deployment:
    def request(self, data):
        if data["gate"]:
            open(data["gate"] + ".taken", "w").close()
        while data["gate"] and not os.path.exists(data["gate"]):
            time.sleep(0.05)
        return {"FIELD": 1}
"""


def write_gated_package(folder, field: str) -> None:
    """A structured package with one output field `field`, whose requests wait for the file their `gate` names."""
    (folder / "ubiops_input_spec.json").write_text('[{"name": "gate", "data_type": "string"}]')
    (folder / "ubiops_output_spec.json").write_text(f'[{{"name": "{field}", "data_type": "int"}}]')
    (folder / "deployment.py").write_text(GATED.replace("FIELD", field))


def test_a_request_running_on_the_old_code_is_checked_against_the_old_output_fields(tmp_path):
    """Before, the reload changed the deployment's output fields under it: the old code's output was
    checked against the new ones, and the request failed."""
    folder, gate = tmp_path / "gated", tmp_path / "gate"
    folder.mkdir()
    write_gated_package(folder, "a")
    emulator = start_emulator(folder, tmp_path, "--reload")
    try:
        old: dict = {}
        in_flight = threading.Thread(target=lambda: old.update(httpx.post(
            emulator.requests_url(), json={"gate": str(gate)}, timeout=60).json()))
        in_flight.start()
        deadline = time.monotonic() + 20
        while not gate.with_suffix(".taken").exists():
            assert time.monotonic() < deadline, "the request was not taken by an instance"
            time.sleep(0.05)
        write_gated_package(folder, "b")
        wait_for_log(emulator, "reloaded")
        deadline = time.monotonic() + 20
        while (new := httpx.post(emulator.requests_url(), json={"gate": ""}, timeout=60).json())["result"] != {"b": 1}:
            assert time.monotonic() < deadline, f"still {new}"
            time.sleep(0.1)
        gate.touch()
        in_flight.join()
        assert (old["status"], old["result"]) == ("completed", {"a": 1}), old
    finally:
        emulator.stop()


def test_a_broken_edit_is_reported_and_the_next_good_one_recovers(package, tmp_path):
    emulator = start_emulator(package, tmp_path, "--reload")
    try:
        (package / "deployment.py").write_text("class Deployment:\n    def request(self, data)\n")
        wait_for_log(emulator, "SyntaxError")
        deadline = time.monotonic() + 20
        while (response := request(emulator, "you")).status_code != 503:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "failed to start (SyntaxError" in response.json()["error"]
        with pytest.raises(StatusError, match=r"Deployment revision: failed: .*failed to start \(SyntaxError"):
            wait_for_deployment_version(emulator.sdk().api_client, PROJECT, DEPLOYMENT, "v1", quiet=True)
        (package / "ubiops_input_spec.json").write_text("[{]")
        assert "not reloaded, the package is not valid: ubiops_input_spec.json: not valid JSON" in wait_for_log(emulator, "not reloaded")
        (package / "ubiops_input_spec.json").unlink()
        (package / "loop").symlink_to("loop")  # no stat of it ends: it once ended the watch, silently
        time.sleep(3 * POLL_SECONDS)
        (package / "loop").unlink()
        write_package(package, "fixed")
        wait_for_result(emulator, "you", "fixed you")
    finally:
        emulator.stop()


def test_a_spec_that_does_not_read_makes_the_version_unavailable_until_a_save_that_does(package, tmp_path):
    """Before, the old code went on answering (and /readyz said ready), so the edits saved meanwhile
    seemed ignored."""
    emulator = start_emulator(package, tmp_path, "--reload")
    try:
        assert request(emulator, "you").json()["result"] == "hello you"
        (package / "ubiops_input_spec.json").write_text('[{"name": "x", "data_type":')
        wait_for_log(emulator, "not reloaded, the package is not valid")
        refused = request(emulator, "you")
        reason = "its package is not valid (ubiops_input_spec.json: not valid JSON"
        assert refused.status_code == 503 and reason in refused.json()["error"], refused.text
        assert httpx.get(f"{emulator.url}/readyz").status_code == 503
        with pytest.raises(StatusError, match=r"Deployment revision: failed: ubiops_input_spec.json: not valid JSON"):
            wait_for_deployment_version(emulator.sdk().api_client, PROJECT, DEPLOYMENT, "v1", quiet=True)
        write_package(package, "edited")  # saved while the spec still does not read: not served either
        eventually(lambda: "not reloaded" in emulator.log().rpartition("changed: deployment.py")[2],
                   "the save read while the spec does not")
        assert reason in request(emulator, "you").json()["error"]
        (package / "ubiops_input_spec.json").unlink()
        wait_for_result(emulator, "you", "edited you")
        assert httpx.get(f"{emulator.url}/readyz").status_code == 200
    finally:
        emulator.stop()


def test_a_revision_uploaded_to_the_package_version_is_served_until_a_restart_and_saves_are_not_reloaded(
        package, tmp_path):
    """Before, the next save put the folder's code back while the API still named the uploaded revision active."""
    emulator = start_emulator(package, tmp_path, "--reload")
    try:
        api = emulator.sdk()
        archive = tmp_path / "uploaded.zip"
        archive.write_bytes(zip_bytes({"deployment_package/deployment.py": CODE.replace("{greeting}", "uploaded").encode()}))
        uploaded = api.revisions_file_upload(PROJECT, DEPLOYMENT, "v1", file=str(archive)).revision
        wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "v1", revision_id=uploaded, quiet=True)
        assert request(emulator, "you").json()["result"] == "uploaded you"
        write_package(package, "saved")
        wait_for_log(emulator, f"not reloaded: revision {uploaded} was uploaded to {DEPLOYMENT}/v1 through the API, "
                               "and the version no longer follows the folder")
        assert request(emulator, "you").json()["result"] == "uploaded you"
        version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1")
        assert (version.active_revision, version.latest_revision, version.status) == (uploaded, uploaded, "available")
    finally:
        emulator.stop()


def test_the_package_version_renamed_through_the_api_still_reloads(package, tmp_path):
    """Before, the watch looked the version up by its old name: the first save after a rename ended it
    silently, and no later save reloaded anything."""
    emulator = start_emulator(package, tmp_path, "--reload")
    try:
        renamed = emulator.api.removesuffix("/") + f"/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/renamed"
        assert httpx.patch(renamed.replace("/renamed", "/v1"), json={"version": "renamed"}).status_code == 200
        for greeting in ("first", "second"):
            write_package(package, greeting)
            wait_for_log(emulator, f"reloaded {DEPLOYMENT}/renamed")
            deadline = time.monotonic() + 20
            while (answer := httpx.post(f"{renamed}/requests", content="you", headers={"Content-Type": "text/plain"},
                                        timeout=60).json()).get("result") != f"{greeting} you":
                assert time.monotonic() < deadline, answer
                time.sleep(0.1)
    finally:
        emulator.stop()


def test_reload_needs_a_package_folder(tmp_path):
    archive = tmp_path / "package.zip"
    archive.write_bytes(b"PK")
    emulator = start_emulator(archive, tmp_path, "--reload", wait=False)
    assert emulator.process.wait(30) == 2
    assert "--reload watches a package folder; --package is not one" in emulator.log()


def test_an_emulator_data_folder_in_the_package_is_not_watched(package, tmp_path):
    """One left in the package by a run from inside it restarted the instances on each write to it (its
    logs' database: about once a second)."""
    (package / ".emulator-data").mkdir()
    emulator = start_emulator(package, tmp_path, "--reload")
    try:
        (package / ".emulator-data" / "logs.sqlite3-wal").write_bytes(b"\0")
        time.sleep(3 * POLL_SECONDS)
        write_package(package, "goodbye")
        wait_for_result(emulator, "you", "goodbye you")
        assert "changed: deployment.py; restarting" in wait_for_log(emulator, "reloaded")
        assert ".emulator-data" not in emulator.log()
    finally:
        emulator.stop()


WRITES_ITS_OUTPUT = '''
class Deployment:
    def request(self, data):
        with open("prediction.csv", "w") as out:  # UbiOps' own pattern: a file in the working directory
            out.write("{greeting} " + data["x"])
        return {"prediction": "prediction.csv"}
'''


def test_a_request_writing_to_its_working_directory_does_not_restart_the_instances(tmp_path):
    """Before, the package folder was the instances' working directory: each request writing its
    output file there was taken for an edit ("changed: prediction.csv; restarting the instances on the
    new code"), a new revision and a restart per request, and the file stayed in the folder; while
    such requests kept coming the folder never settled, so an edit never reached them."""
    package = tmp_path / "package"
    package.mkdir()
    (package / "ubiops_input_spec.json").write_text('[{"name": "x", "data_type": "string"}]')
    (package / "ubiops_output_spec.json").write_text('[{"name": "prediction", "data_type": "file"}]')
    (package / "deployment.py").write_text(WRITES_ITS_OUTPUT.replace("{greeting}", "hello"))
    emulator = start_emulator(package, tmp_path, "--reload")

    def predicted() -> bytes:
        answer = emulator.request({"x": "you"})
        return emulator.download(answer, answer["result"]["prediction"])

    try:
        wait_for_log(emulator, "watching")  # the folder is seen as it was before any request wrote
        assert predicted() == b"hello you"
        (package / "deployment.py").write_text(WRITES_ITS_OUTPUT.replace("{greeting}", "goodbye"))
        eventually(lambda: predicted() == b"goodbye you", "the edit reaches the requests")
        changes = [line for line in emulator.log().splitlines() if "emulator.reload: changed:" in line]
        assert changes and all(line.endswith("changed: deployment.py; restarting the instances on the new code")
                               for line in changes), changes
        assert not (package / "prediction.csv").exists()
    finally:
        emulator.stop()
    assert not list((emulator.data_dir / "builds").iterdir()), "each revision's copy is removed, the last at stop"
