"""Request retention over HTTP with the real SDK: a version's `request_retention_time` deletes its
requests and their files once they are older than it (the sweep runs every 0.2 s here), while the
requests of a version that keeps them longer, and the files users uploaded, stay; and the values
UbiOps refuses are refused, as is a sweep interval that is not a positive number."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import ubiops
from harness import DEPLOYMENT, PACKAGES, PROJECT, ROOT, Emulator, eventually, free_port, start_emulator, wait_for_log, zip_bytes
from ubiops.utils import upload_file

SHORT = 1
"""The retention time, in seconds, of the version whose requests go."""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    """The `files` package as v1 (the default retention), and as `short`, which keeps requests SHORT s."""
    emulator = start_emulator("files", tmp_path_factory.mktemp("retention"), "--retention-sweep-seconds", "0.2")
    try:
        api = emulator.sdk()
        api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
            version="short", environment="python3-11", request_retention_time=SHORT))
        package = tmp_path_factory.mktemp("package") / "files.zip"
        package.write_bytes(zip_bytes({f"deployment_package/{p.name}": p.read_bytes()
                                       for p in (PACKAGES / "files").iterdir() if p.is_file()}))
        revision = api.revisions_file_upload(PROJECT, DEPLOYMENT, "short", file=str(package)).revision
        eventually(lambda: api.revisions_get(PROJECT, DEPLOYMENT, revision, "short").status == "success", "short is built")
        yield emulator
    finally:
        emulator.stop()



def request_files(api: ubiops.CoreApi, request_id: str) -> list[str]:
    return [f.file for f in api.files_list(PROJECT, "default", prefix=f"deployment_requests/{request_id}/").files]


def recorded(api: ubiops.CoreApi, version: str, request_id: str) -> bool:
    """Whether `version` still holds the request (asked of the version: the deployment-level call sees
    the default version's requests only)."""
    try:
        api.deployment_version_requests_get(PROJECT, DEPLOYMENT, request_id, version, metadata_only=True)
    except ubiops.ApiException as error:
        assert error.status == 404
        return False
    return True


def test_requests_past_their_retention_time_go_with_their_files_others_stay(emulator, tmp_path):
    api = emulator.sdk()
    note = tmp_path / "note.txt"
    note.write_text("keep the user's own file")
    uri = upload_file(api.api_client, PROJECT, str(note), file_name="retention/note.txt")
    data = {"images": [uri], "note": uri}
    short = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "short", data=data)
    kept = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", data=data)
    assert short.status == kept.status == "completed" and request_files(api, short.id) and request_files(api, kept.id)

    eventually(lambda: not recorded(api, "short", short.id), "the short-lived request is deleted")
    assert request_files(api, short.id) == [], "its output files went with it"
    assert recorded(api, "v1", kept.id) and request_files(api, kept.id), "a version keeping requests a week keeps them"
    assert api.files_get(PROJECT, "default", "retention/note.txt").size == note.stat().st_size, "uploads are not requests"
    wait_for_log(emulator, "past their retention time, with their files")


def test_a_requests_retention_time_is_its_versions_when_it_was_made(emulator, tmp_path):
    """UbiOps: "Changing the retention time or mode does not influence the retention of already stored
    requests" [docs: request settings]. A lowered time deleted every older request at the next sweep,
    and a raised one kept requests made under the short one."""
    api = emulator.sdk()
    (tmp_path / "note.txt").write_text("a note")
    data = {"images": [], "note": upload_file(api.api_client, PROJECT, str(tmp_path / "note.txt"), file_name="retention/made.txt")}
    before = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", data=data)
    short_lived = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "short", data=data)
    try:
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "v1", {"request_retention_time": SHORT})
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "short", {"request_retention_time": 2419200})
        after = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", data=data)
        eventually(lambda: not recorded(api, "v1", after.id), "the request made under v1's new time is deleted")
        eventually(lambda: not recorded(api, "short", short_lived.id), "the request made under short's old time is deleted")
        assert recorded(api, "v1", before.id), "made under v1's week, it is kept a week"
    finally:
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "v1", {"request_retention_time": 604800})
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "short", {"request_retention_time": SHORT})


def test_a_version_echoes_its_retention_time_and_its_default(emulator):
    api = emulator.sdk()
    assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").request_retention_time == 604800
    assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "short").request_retention_time == SHORT
    updated = api.deployment_versions_update(PROJECT, DEPLOYMENT, "short", {"request_retention_time": 2419200})
    assert updated.request_retention_time == 2419200, "the documented maximum, 28 days, is accepted"
    api.deployment_versions_update(PROJECT, DEPLOYMENT, "short", {"request_retention_time": SHORT})


@pytest.mark.parametrize("seconds, message", [
    (2419201, "body request_retention_time: Input should be less than or equal to 2419200"),
    (-1, "body request_retention_time: Input should be greater than or equal to 0"),
])
def test_retention_times_outside_the_documented_range_are_refused(emulator, seconds, message):
    api = emulator.sdk()
    for call in (lambda: api.deployment_versions_update(PROJECT, DEPLOYMENT, "v1", {"request_retention_time": seconds}),
                 lambda: api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
                     version="too-long", environment="python3-11", request_retention_time=seconds))):
        with pytest.raises(ubiops.ApiException) as error:
            call()
        assert error.value.status == 400 and json.loads(error.value.body) == {"error": message}
    assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").request_retention_time == 604800


@pytest.mark.parametrize("value, message", [
    ("0", "--retention-sweep-seconds must be more than 0"),
    ("soon", "argument --retention-sweep-seconds: invalid float value: 'soon'"),
])
def test_a_sweep_interval_that_is_not_a_positive_number_is_refused_at_start(tmp_path, value, message):
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), "--retention-sweep-seconds", value], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
