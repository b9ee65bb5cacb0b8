"""Management state survives a restart: deployments, versions and revisions made through the SDK are
there again when a new emulator starts on the same data folder, their built versions serve again,
and their request history stays reachable through them. Batch requests no instance had taken when it
stopped are queued again. A corrupt catalog stops the start cleanly."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, Emulator, eventually, package_folder, start_emulator, wait_for_log, zip_bytes
from ubiops.utils import upload_file, wait_for_deployment_request

FIELDS = [{"name": "x", "data_type": "int"}]
SETTLE_SECONDS = 60
GOOD = "class Deployment:\n    def request(self, data):\n        return {'y': data['x'] * 3}\n"
PLAIN = "class Deployment:\n    def request(self, data):\n        return data.upper()\n"
BROKEN = "import no_such_module\n"
SLOW = "import time\ntime.sleep(600)\n"


def create(api: ubiops.CoreApi, deployment: str, **extra: object) -> None:
    api.deployments_create(PROJECT, {"name": deployment, "input_type": "structured", "output_type": "structured",
                                     "input_fields": FIELDS, "output_fields": [{"name": "y", "data_type": "int"}],
                                     **extra})
    api.deployment_versions_create(PROJECT, deployment, ubiops.DeploymentVersionCreate(version="v1", maximum_idle_time=60))


def upload(api: ubiops.CoreApi, tmp_path: Path, deployment: str, code: str, version: str = "v1") -> str:
    package = tmp_path / f"{deployment}-{version}.zip"
    package.write_bytes(zip_bytes({"deployment_package/deployment.py": code.encode()}))
    return api.revisions_file_upload(PROJECT, deployment, version, file=str(package)).revision


def revision_once(api: ubiops.CoreApi, deployment: str, revision: str, past: tuple[str, ...],
                  version: str = "v1") -> ubiops.RevisionDetail:
    """The revision once its status is no longer one of `past`."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (found := api.revisions_get(PROJECT, deployment, revision, version)).status in past:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def settled_version(api: ubiops.CoreApi, deployment: str, version: str = "v1") -> ubiops.DeploymentVersionDetail:
    """The version once its instances have started (or failed to)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (found := api.deployment_versions_get(PROJECT, deployment, version)).status == "building":
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


@dataclass
class Before:
    """What the first emulator was told and answered, to compare with the second's answers."""

    deployment: ubiops.DeploymentDetail
    version: ubiops.DeploymentVersionDetail
    built: str
    request_id: str
    failed: ubiops.RevisionDetail
    interrupted: str
    lost: str


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Emulator, Before]:
    """Make deployments of every kind on one emulator, stop it, and start a new one on its data folder."""
    tmp = tmp_path_factory.mktemp("persistence")
    data_dir = tmp / "data"
    first = start_emulator("plain", tmp, data_dir=data_dir)
    try:
        api = first.sdk()
        create(api, "kept", description="survives", labels={"team": "vision"})
        built = upload(api, tmp, "kept", GOOD)
        assert revision_once(api, "kept", built, ("queued", "building", "deploying")).status == "success"
        request_id = api.deployment_requests_create(PROJECT, "kept", {"x": 2}).id
        create(api, "broken")
        failed = revision_once(api, "broken", upload(api, tmp, "broken", BROKEN), ("queued", "building", "deploying"))
        create(api, "lost")
        lost = upload(api, tmp, "lost", GOOD)
        assert revision_once(api, "lost", lost, ("queued", "building", "deploying")).status == "success"
        create(api, "slow")
        interrupted = upload(api, tmp, "slow", SLOW)
        revision_once(api, "slow", interrupted, ("queued",))
        api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="extra"))
        extra = upload(api, tmp, DEPLOYMENT, PLAIN, "extra")
        assert revision_once(api, DEPLOYMENT, extra, ("queued", "building", "deploying"), "extra").status == "success"
        api.deployments_update(PROJECT, DEPLOYMENT, ubiops.DeploymentUpdate(default_version="extra"))
        api.deployment_versions_delete(PROJECT, DEPLOYMENT, "v1")
        api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="v1", maximum_idle_time=60))
        create(api, "gone")
        api.deployments_delete(PROJECT, "gone")
        before = Before(api.deployments_get(PROJECT, "kept"), api.deployment_versions_get(PROJECT, "kept", "v1"),
                        built, request_id, failed, interrupted, lost)
    finally:
        first.stop()
    (data_dir / "revisions" / f"{lost}.zip").unlink()
    second = start_emulator("plain", tmp, data_dir=data_dir)
    yield second, before
    second.stop()


def test_a_deployment_its_version_and_revision_survive_a_restart(restarted):
    emulator, before = restarted
    api = emulator.sdk()
    deployment = api.deployments_get(PROJECT, "kept")
    assert deployment.to_dict() == before.deployment.to_dict()
    version = settled_version(api, "kept")
    assert (version.status, version.active_revision, version.id) == ("available", before.built, before.version.id)
    assert (version.maximum_idle_time, version.creation_date, version.last_file_upload) == (
        60, before.version.creation_date, before.version.last_file_upload)
    assert api.revisions_get(PROJECT, "kept", before.built, "v1").status == "success"
    download = httpx.get(f"{emulator.api}/projects/{PROJECT}/deployments/kept/versions/v1/revisions/{before.built}/download")
    assert download.status_code == 200 and download.content.startswith(b"PK")


def test_the_restored_version_serves_and_its_history_stays_reachable(restarted):
    emulator, before = restarted
    api = emulator.sdk()
    settled_version(api, "kept")
    assert api.deployment_requests_create(PROJECT, "kept", {"x": 5}).result == {"y": 15}
    old = api.deployment_requests_get(PROJECT, "kept", before.request_id)
    assert (old.status, old.version, old.result) == ("completed", "v1", {"y": 6})
    assert api.deployment_version_requests_get(PROJECT, "kept", before.request_id, "v1").result == {"y": 6}


def test_a_failed_build_stays_failed(restarted):
    emulator, before = restarted
    api = emulator.sdk()
    revision = api.revisions_get(PROJECT, "broken", before.failed.id, "v1")
    assert (revision.status, revision.error_message) == ("failed", before.failed.error_message)
    assert "No module named 'no_such_module'" in revision.error_message
    assert settled_version(api, "broken").status == "unavailable"
    response = httpx.post(f"{emulator.api}/projects/{PROJECT}/deployments/broken/requests", json={"x": 1})
    assert response.status_code == 503 and response.json()["error"].startswith("Version v1's build failed: ")
    assert "No module named 'no_such_module'" in response.json()["error"]


def test_only_the_serving_revisions_unpacked_files_are_kept_at_a_start(restarted):
    """A replaced revision's (or one cut off by the stop) stayed in the data folder for good."""
    emulator, before = restarted
    unpacked = {folder.name for folder in (emulator.data_dir / "builds").iterdir()}
    assert before.built in unpacked and before.interrupted not in unpacked and before.failed.id not in unpacked


def test_a_build_the_emulator_stopped_is_failed_with_the_reason(restarted):
    emulator, before = restarted
    api = emulator.sdk()
    revision = api.revisions_get(PROJECT, "slow", before.interrupted, "v1")
    assert revision.status == "failed"
    assert revision.error_message == "The emulator stopped before this revision was built; upload it again"
    assert settled_version(api, "slow").status == "unavailable"


def test_a_deleted_deployment_stays_deleted(restarted):
    emulator, _ = restarted
    api = emulator.sdk()
    assert "gone" not in [d.name for d in api.deployments_list(PROJECT)]
    with pytest.raises(ubiops.ApiException) as error:
        api.deployments_get(PROJECT, "gone")
    assert error.value.status == 404 and error.value.body == '{"error":"Deployment not found"}'


def test_a_version_whose_kept_zip_is_gone_is_unavailable_with_the_reason(restarted):
    emulator, before = restarted
    assert settled_version(emulator.sdk(), "lost").status == "unavailable"
    response = httpx.post(f"{emulator.api}/projects/{PROJECT}/deployments/lost/requests", json={"x": 1})
    assert response.status_code == 503
    assert response.json()["error"].startswith(f"Version v1 could not be restarted from revision {before.lost}: "
                                               "its kept zip cannot be read (No such file or directory)")


def test_the_package_version_comes_from_the_command_line_beside_saved_ones(restarted):
    emulator, _ = restarted
    api = emulator.sdk()
    deployment = api.deployments_get(PROJECT, DEPLOYMENT)
    assert deployment.default_version == "extra", "the saved default is kept"
    versions = {v.version: v.status for v in api.deployment_versions_list(PROJECT, DEPLOYMENT)}
    assert versions == {"v1": versions["v1"], "extra": versions["extra"]}
    assert settled_version(api, DEPLOYMENT, "extra").status == "available"
    package_version = settled_version(api, DEPLOYMENT, "v1")
    assert (package_version.status, package_version.maximum_idle_time) == ("available", 300), "the saved v1 is replaced"
    assert f"the saved version {DEPLOYMENT}/v1 is replaced by --package" in emulator.log()
    assert api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", "from the command line").result == (
        "FROM THE COMMAND LINE")


def test_serving_the_package_under_another_name_leaves_the_earlier_deployment_without_a_default(tmp_path):
    """Before, the earlier deployment still named its forgotten `--package` version as its default:
    requests to the deployment, and getting its default version, answered 404."""
    data = tmp_path / "data"
    first = start_emulator("plain", tmp_path, data_dir=data)
    try:
        first.sdk().deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="v2"))
    finally:
        first.stop()
    second = start_emulator("plain", tmp_path, "--deployment", "second", data_dir=data)
    try:
        api = second.sdk()
        assert api.deployments_get(PROJECT, DEPLOYMENT).default_version is None
        assert [v.version for v in api.deployment_versions_list(PROJECT, DEPLOYMENT)] == ["v2"]
    finally:
        second.stop()


def test_settings_set_through_the_api_on_the_package_version_survive_a_restart(tmp_path):
    """Before, they were applied, then dropped at the next start without a word (its variables were kept):
    a version whose retention was turned off to keep no sensitive input stored every request again. The
    flags of the new start still win for what they give (`--instances`), with a warning."""
    data = tmp_path / "data"
    first = start_emulator("plain", tmp_path, data_dir=data)
    try:
        first.sdk().deployment_versions_update(PROJECT, DEPLOYMENT, "v1", ubiops.DeploymentVersionUpdate(
            request_retention_mode="none", maximum_queue_size=7, minimum_instances=0, description="kept"))
    finally:
        first.stop()
    second = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = second.sdk()
        version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1")
        assert (version.request_retention_mode, version.maximum_queue_size, version.description) == ("none", 7, "kept")
        assert (version.minimum_instances, version.maximum_instances) == (1, 1), "--instances gives them at each start"
        assert (f"{DEPLOYMENT}/v1's minimum_instances is 1, as --instances gives it at this start, not the 0 kept from "
                "an earlier one (set through the API)") in second.log()
        answer = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", "not kept")
        assert answer.result == "NOT KEPT"
        with pytest.raises(ubiops.ApiException) as missing:
            api.deployment_requests_get(PROJECT, DEPLOYMENT, answer.id)
        assert missing.value.status == 404, "retention none: the request is not stored"
    finally:
        second.stop()


def test_a_kept_default_of_another_version_is_said_at_start_with_the_package_versions_url(tmp_path):
    """Before, after `deployer push --promote` to the emulator made v2 the default (kept across restarts),
    the start printed the deployment's URL, which answers with v2's code, as where the package is served."""
    data = tmp_path / "data"
    first = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = first.sdk()
        api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="v2"))
        v2 = upload(api, tmp_path, DEPLOYMENT, PLAIN, "v2")
        assert revision_once(api, DEPLOYMENT, v2, ("queued", "building", "deploying"), "v2").status == "success"
        api.deployments_update(PROJECT, DEPLOYMENT, ubiops.DeploymentUpdate(default_version="v2"))
        assert f"deployments/{DEPLOYMENT}/requests" in first.log(), "the package's version is the default: its URL"
    finally:
        first.stop()
    second = start_emulator("plain", tmp_path, data_dir=data)
    try:
        log = second.log()
        assert f"version v1 at {second.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/v1/requests" in log
        assert (f"deployment {DEPLOYMENT}'s default version is v2 (kept from an earlier run), not the package's v1: "
                f"requests without a version go to v2; make v1 the default again with `ubiops deployments update "
                f"{DEPLOYMENT} --default_version v1`") in log
    finally:
        second.stop()


def test_a_start_that_changes_the_deployments_fields_names_the_versions_built_for_the_old_ones(tmp_path):
    """A renamed output field in the package's spec files: the restart gave the deployment the new fields
    without a word, and v2, pushed earlier for the old ones, stayed available with every request failing."""
    fields = '[{"name": "x", "data_type": "int"}]'
    package = package_folder(tmp_path / "package", GOOD, fields, '[{"name": "y", "data_type": "int"}]')
    data = tmp_path / "data"
    first = start_emulator(package, tmp_path, data_dir=data)
    try:
        api = first.sdk()
        api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="v2"))
        v2 = upload(api, tmp_path, DEPLOYMENT, GOOD, "v2")
        assert revision_once(api, DEPLOYMENT, v2, ("queued", "building", "deploying"), "v2").status == "success"
    finally:
        first.stop()
    assert "takes the package's fields" not in first.log(), "the deployment was made with them"
    (package / "deployment.py").write_text(GOOD.replace("'y'", "'z'"))
    (package / "ubiops_output_spec.json").write_text('[{"name": "z", "data_type": "int"}]')
    second = start_emulator(package, tmp_path, data_dir=data)
    try:
        assert (f"deployment {DEPLOYMENT} takes the package's fields (output fields y (int) -> z (int)): its version(s) "
                "v2 were built for the old fields and stay available, but their requests fail where their code does "
                "not match the new ones; push them again or delete them") in second.log()
        api = second.sdk()
        assert settled_version(api, DEPLOYMENT, "v2").status == "available"
        failed = api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v2", {"x": 2})
        assert (failed.status, failed.error_message) == ("failed", "Missing output field 'z' of type int"), failed
        assert api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", {"x": 2}).result == {"z": 6}
    finally:
        second.stop()


def nested(levels: int) -> list:
    """`[[…]]`, `levels` arrays deep."""
    return json.loads("[" * levels + "]" * levels)


def test_what_the_catalog_saves_the_next_start_reads_back(tmp_path):
    """Before, a version whose `command` nested 196 arrays deep was taken and saved, and the next start refused
    the whole catalog: its reader stops at 200 levels, the catalog's own nesting included. The deepest the
    API takes, and labels of any Unicode text, come back as they were saved."""
    data = tmp_path / "data"
    first = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = first.sdk()
        refused = httpx.post(f"{first.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions",
                             json={"version": "deep", "command": nested(196)})
        assert refused.status_code == 400, refused.text
        labels = {"café": "\N{HOT BEVERAGE} ünïcode", "source": "photo-\N{GRINNING FACE}.jpg"}
        api.deployments_create(PROJECT, {"name": "labelled", "input_type": "plain", "output_type": "plain", "labels": labels})
        api.deployment_versions_create(PROJECT, "labelled", ubiops.DeploymentVersionCreate(
            version="deepest", command=nested(100), args=[{"a": nested(98)}], labels=labels))
        saved = api.deployment_versions_get(PROJECT, "labelled", "deepest")
    finally:
        first.stop()
    second = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = second.sdk()
        again = api.deployment_versions_get(PROJECT, "labelled", "deepest")
        assert (again.command, again.args, again.labels) == (saved.command, saved.args, labels) == (
            nested(100), [{"a": nested(98)}], labels)
        assert api.deployments_get(PROJECT, "labelled").labels == labels
    finally:
        second.stop()


def test_a_version_saved_with_the_emulators_former_group_name_reports_ubiops_default(tmp_path):
    """A version created without an instance type group was given "emulator (this machine)", which no UbiOps
    group is named and `ubiops versions get -o yaml` exported; one saved so reads back as UbiOps' default."""
    data = tmp_path / "data"
    data.mkdir()
    stamp = "2024-01-01T00:00:00Z"
    version = {"name": "v1", "id": "v", "settings": {"instance_type_group_name": "emulator (this machine)"},
               "request_retention_mode": "full", "created": stamp, "last_updated": stamp}
    (data / "catalog.json").write_text(json.dumps({"format": 1, "projects": [{
        "name": PROJECT, "id": "p", "created": stamp, "deployments": [{
            "name": "saved", "id": "d", "input_fields": [], "output_fields": [], "created": stamp, "last_updated": stamp,
            "default_version": "v1", "versions": [version]}]}]}))
    emulator = start_emulator("plain", tmp_path, data_dir=data)
    try:
        assert emulator.sdk().deployment_versions_get(PROJECT, "saved", "v1").instance_type_group_name == "512 MB + 0.125 vCPU"
    finally:
        emulator.stop()


@pytest.mark.parametrize("content, problem", [
    ("{not json", "Invalid JSON"),
    (json.dumps({"format": 1, "projects": [{"name": PROJECT}]}), "projects.0.id: Field required"),
    (json.dumps({"format": 1, "projects": [{"name": PROJECT, "id": "p", "created": "2024-01-01T00:00:00Z",
                                            "deployments": [{"name": "d", "id": "d", "input_fields": [{"name": "x"}],
                                                             "output_fields": [], "created": "2024-01-01T00:00:00Z",
                                                             "last_updated": "2024-01-01T00:00:00Z"}]}]}),
     "deployment 'd' input_fields[0]: field 'x' has data_type None"),
    (json.dumps({"format": 1, "projects": [{"name": PROJECT, "id": "p", "created": "2024-01-01T00:00:00Z",
                                            "deployments": [{"name": "d", "id": "d", "input_fields": [], "output_fields": [],
                                                             "created": "2024-01-01T00:00:00Z",
                                                             "last_updated": "2024-01-01T00:00:00Z",
                                                             "versions": [{"name": "v1", "id": "v",
                                                                           "settings": {"maximum_queue_size": "five"},
                                                                           "request_retention_mode": "full",
                                                                           "created": "2024-01-01T00:00:00Z",
                                                                           "last_updated": "2024-01-01T00:00:00Z"}]}]}]}),
     "projects.0.deployments.0.versions.0.settings.maximum_queue_size: Input should be a valid integer"),
])
def test_a_corrupt_catalog_stops_the_start_with_a_clear_error(tmp_path, content, problem):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "catalog.json").write_text(content)
    emulator = start_emulator("plain", tmp_path, data_dir=data_dir, wait=False)
    assert emulator.process.wait(60) == 1
    log = emulator.log()
    assert f"emulator: error: the saved deployments in {data_dir.resolve() / 'catalog.json'} cannot be read (" in log
    assert problem in log and "Traceback" not in log
    assert (data_dir / "catalog.json").read_text() == content, "the file is left as it was"


@pytest.mark.parametrize("name, content, problem", [
    ("buckets.json", b"{not json", "the buckets' settings in {path} cannot be read (Expecting property name"),
    ("buckets.json", b"[]", "the buckets' settings in {path} cannot be read (a JSON list, not an object)"),
    ("requests.sqlite3", bytes(range(256)) * 8, "the request history in {path} cannot be read (file is not a database)"),
    ("logs.sqlite3", bytes(range(256)) * 8, "the deployment logs in {path} cannot be read (file is not a database)"),
])
def test_a_damaged_data_file_stops_the_start_with_a_clear_error(tmp_path, name, content, problem):
    """Before, each was a traceback (or, for a list in buckets.json, a server answering 500 to every
    bucket call)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / name).write_bytes(content)
    emulator = start_emulator("plain", tmp_path, data_dir=data_dir, wait=False)
    assert emulator.process.wait(60) == 1
    log = emulator.log()
    assert "emulator: error: " + problem.format(path=data_dir.resolve() / name) in log and "Traceback" not in log
    assert (data_dir / name).read_bytes() == content, "the file is left as it was"


def test_a_catalog_left_half_written_by_a_killed_process_is_removed_at_the_next_start(tmp_path):
    """It may hold secrets' values, and no later start would ever read it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    left = data_dir / ".catalog.json.k1ll3d"
    left.write_text('{"format": 1, "projects": [{"variables": [{"value": "a-secret')
    emulator = start_emulator("plain", tmp_path, data_dir=data_dir)
    try:
        assert not left.exists()
    finally:
        emulator.stop()


def test_a_zip_uploaded_to_the_package_version_goes_at_the_next_start(tmp_path):
    """That version's revisions are not kept (the next start reads the package again): their zips stayed
    in the data folder for good."""
    data_dir = tmp_path / "data"
    first = start_emulator("plain", tmp_path, data_dir=data_dir)
    try:
        api = first.sdk()
        revision = upload(api, tmp_path, DEPLOYMENT, GOOD)
        revision_once(api, DEPLOYMENT, revision, ("queued", "building", "deploying"))
        assert (data_dir / "revisions" / f"{revision}.zip").is_file()
    finally:
        first.stop()
    start_emulator("plain", tmp_path, data_dir=data_dir).stop()
    assert not (data_dir / "revisions" / f"{revision}.zip").exists()


def gated_batch(emulator: Emulator, tmp_path: Path, count: int) -> tuple[list[str], Path]:
    """A batch of `count` requests to `gated_files` (one instance), and the folder of their gates: item n
    answers once `<gate>/<n>` exists. Once the first runs, the others wait."""
    gate = tmp_path / "gate"
    gate.mkdir()
    (tmp_path / "input.bin").write_bytes(b"data")
    api = emulator.sdk()
    uri = upload_file(api.api_client, PROJECT, str(tmp_path / "input.bin"), file_name="input.bin", _progress_bar=False)
    ids = [r.id for r in api.batch_deployment_requests_create(
        PROJECT, DEPLOYMENT, data=[{"f": uri, "n": n, "gate": str(gate)} for n in range(count)])]
    expected = ["processing"] + ["pending"] * (count - 1)
    eventually(lambda: statuses(emulator, ids) == expected, "the first item runs, the others wait")
    return ids, gate


def statuses(emulator: Emulator, ids: list[str]) -> list[str]:
    return [r.status for r in emulator.sdk().deployment_requests_batch_get(PROJECT, DEPLOYMENT, ids)]


def stopped(emulator: Emulator, how: signal.Signals) -> None:
    assert emulator.process is not None
    emulator.process.send_signal(how)
    assert emulator.process.wait(SETTLE_SECONDS) == -how


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_batch_requests_no_instance_had_taken_run_after_a_restart(tmp_path, how):
    """They came back `failed` ("The emulator stopped before this request finished"), where UbiOps keeps a
    queued batch request through an outage: its user had to find and send them again. Stopped (Ctrl-C)
    or killed outright, the one running stays failed (its deployment may have done part of the work);
    those waiting run, in their order, and can be cancelled as any queued request."""
    data = tmp_path / "data"
    first = start_emulator("gated_files", tmp_path, data_dir=data)
    try:
        ids, gate = gated_batch(first, tmp_path, 4)
        stopped(first, how)
    finally:
        first.stop()
    (gate / "0").touch()  # whatever still waits on it ends
    second = start_emulator("gated_files", tmp_path, data_dir=data)
    try:
        wait_for_log(second, "3 batch request(s) no instance had taken when the emulator last stopped are queued again")
        eventually(lambda: statuses(second, ids) == ["failed", "processing", "pending", "pending"], "item 1 runs again")
        api = second.sdk()
        assert [r["status"] for r in api.deployment_requests_batch_cancel(PROJECT, DEPLOYMENT, [ids[3]])] == ["cancelled"]
        (gate / "1").touch()
        (gate / "2").touch()
        for request_id in ids[1:3]:
            wait_for_deployment_request(api.api_client, PROJECT, DEPLOYMENT, request_id, timeout=SETTLE_SECONDS, quiet=True)
        running, *done, cancelled = api.deployment_requests_batch_get(PROJECT, DEPLOYMENT, ids)
        assert [(r.status, r.result["n"]) for r in done] == [("completed", 1), ("completed", 2)]
        assert done[0].time_started < done[1].time_started, "in their order"
        assert (running.status, running.error_message) == ("failed", "The emulator stopped before this request finished")
        assert cancelled.status == "cancelled"
    finally:
        second.stop()


def test_a_waiting_batch_request_whose_version_is_gone_at_the_restart_fails_saying_so(tmp_path):
    """The `--package` version served under another version name at the next start is forgotten: its waiting
    batch requests cannot run, and fail naming it (its history is the project's only, as it was)."""
    data = tmp_path / "data"
    first = start_emulator("gated_files", tmp_path, "--version", "old", data_dir=data)
    try:
        ids, gate = gated_batch(first, tmp_path, 2)
        stopped(first, signal.SIGINT)
    finally:
        first.stop()
    (gate / "0").touch()
    second = start_emulator("gated_files", tmp_path, "--version", "new", data_dir=data)
    try:
        line = next(line for line in wait_for_log(second, f"request {ids[1]} failed").splitlines() if ids[1] in line)
        assert line.endswith(f": The emulator stopped before this request ran, and its version old of deployment {DEPLOYMENT} "
                             "no longer existed when it started again"), line
        listed = second.sdk().project_requests_list(PROJECT, status="failed")
        assert sorted((r.id, r.version) for r in listed) == sorted((request_id, "old") for request_id in ids)
    finally:
        second.stop()



@pytest.mark.parametrize("how", ["made", "renamed"])
def test_a_version_or_deployment_that_takes_a_gone_ones_name_starts_without_its_requests(tmp_path, how):
    """On UbiOps requests belong to the version, not to its name. The `--package` version served under
    other names at a later start left its requests in the history, and a version or deployment made, or
    renamed, to its names later listed them as its own and answered them by id."""
    data = tmp_path / "data"
    sent = {}
    for deployment, version in ((DEPLOYMENT, "old"), ("earlier", "v1")):
        first = start_emulator("plain", tmp_path, "--deployment", deployment, "--version", version, data_dir=data)
        try:
            sent[deployment] = first.sdk().deployment_requests_create(PROJECT, deployment, "kept").id
        finally:
            first.stop()
    second = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = second.sdk()
        assert set(sent.values()) <= {r.id for r in api.project_requests_list(PROJECT)}, "the project's history has them"
        if how == "made":
            api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="old"))
            api.deployments_create(PROJECT, {"name": "earlier", "input_type": "plain", "output_type": "plain"})
        else:
            api.deployment_versions_update(PROJECT, DEPLOYMENT, "v1", ubiops.DeploymentVersionUpdate(version="old"))
            api.deployments_update(PROJECT, DEPLOYMENT, ubiops.DeploymentUpdate(name="earlier"))
        deployment = DEPLOYMENT if how == "made" else "earlier"
        assert api.deployment_version_requests_list(PROJECT, deployment, "old", status="completed") == []
        with pytest.raises(ubiops.ApiException) as gone:
            api.deployment_version_requests_get(PROJECT, deployment, sent[DEPLOYMENT], "old")
        assert gone.value.status == 404
        assert not set(sent.values()) & {r.id for r in api.project_requests_list(PROJECT)}
    finally:
        second.stop()
