"""The emulator's management API, as the deployer and the SDK use it: deployments, versions,
revisions and environments, with every refused input a clear 4xx in UbiOps' error shape."""

from __future__ import annotations

import gzip
import io
import time
import zipfile

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, eventually, start_emulator, zip_bytes

from contract.archive import FILES_AT_ROOT

FIELDS = [{"name": "x", "data_type": "int"}]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """An emulator of its own: these tests add deployments that other modules' emulators must not see."""
    emulator = start_emulator("echo", tmp_path_factory.mktemp("management"))
    yield emulator
    emulator.stop()


def deployment_body(name: str, **extra) -> dict:
    return {"name": name, "input_type": "structured", "output_type": "structured",
            "input_fields": FIELDS, "output_fields": [{"name": "y", "data_type": "int"}], **extra}


def zip_of(files: dict[str, str], folder: str = "deployment_package/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(f"{folder}{name}", content)
    return buffer.getvalue()


def wait_for(api, deployment: str, version: str, revision: str):
    deadline = time.monotonic() + 30
    while (found := api.revisions_get(PROJECT, deployment, revision, version)).status in ("queued", "building", "deploying"):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def test_the_sdk_lifecycle_create_build_serve_update_delete(emulator, tmp_path):
    api = emulator.sdk()
    created = api.deployments_create(PROJECT, deployment_body("lifecycle", labels={"team": "vision"}))
    assert (created.name, created.input_type, created.labels) == ("lifecycle", "structured", {"team": "vision"})
    version = api.deployment_versions_create(PROJECT, "lifecycle", ubiops.DeploymentVersionCreate(
        version="v1", environment="python3-12", minimum_instances=0, maximum_instances=2, maximum_idle_time=60))
    assert (version.status, version.default, version.environment_name, version.maximum_idle_time) == (
        "unavailable", True, "python3-12", 60)
    package = tmp_path / "package.zip"
    package.write_bytes(zip_of({"deployment.py": "class Deployment:\n    def request(self, data):\n"
                                                 "        return {'y': data['x'] + 1}\n"}))
    upload = api.revisions_file_upload(PROJECT, "lifecycle", "v1", file=str(package))
    assert upload.success is True
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "lifecycle", "v1", revision_id=upload.revision,
                                             timeout=30, quiet=True)
    assert api.deployment_requests_create(PROJECT, "lifecycle", {"x": 1}).result == {"y": 2}
    assert [r.status for r in api.revisions_list(PROJECT, "lifecycle", "v1")] == ["success"]
    assert api.deployment_versions_get(PROJECT, "lifecycle", "v1").active_revision == upload.revision

    api.deployment_versions_create(PROJECT, "lifecycle", ubiops.DeploymentVersionCreate(version="v2"))
    second = api.revisions_file_upload(PROJECT, "lifecycle", "v2", file=str(package)).revision
    assert wait_for(api, "lifecycle", "v2", second).status == "success"
    api.deployments_update(PROJECT, "lifecycle", ubiops.DeploymentUpdate(default_version="v2", description="two"))
    assert api.deployments_get(PROJECT, "lifecycle").default_version == "v2"
    assert [v.version for v in api.deployment_versions_list(PROJECT, "lifecycle", labels=None)] == ["v1", "v2"]
    updated = api.deployment_versions_update(PROJECT, "lifecycle", "v1", ubiops.DeploymentVersionUpdate(maximum_instances=3))
    assert updated.maximum_instances == 3 and updated.status == "available"
    api.deployment_versions_delete(PROJECT, "lifecycle", "v1")
    assert [v.version for v in api.deployment_versions_list(PROJECT, "lifecycle")] == ["v2"]
    api.deployments_delete(PROJECT, "lifecycle")
    assert "lifecycle" not in [d.name for d in api.deployments_list(PROJECT)]


def test_a_revision_that_cannot_start_fails_its_build_and_keeps_the_previous_one(emulator, tmp_path):
    api = emulator.sdk()
    api.deployments_create(PROJECT, deployment_body("rebuild"))
    api.deployment_versions_create(PROJECT, "rebuild", ubiops.DeploymentVersionCreate(version="v1"))
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(zip_of({"deployment.py": "class Deployment:\n    def request(self, data):\n        return {'y': 7}\n"}))
    bad.write_bytes(zip_of({"deployment.py": "import no_such_module\n"}))
    first = api.revisions_file_upload(PROJECT, "rebuild", "v1", file=str(good)).revision
    assert wait_for(api, "rebuild", "v1", first).status == "success"
    second = api.revisions_file_upload(PROJECT, "rebuild", "v1", file=str(bad)).revision
    failed = wait_for(api, "rebuild", "v1", second)
    assert failed.status == "failed" and "No module named 'no_such_module'" in failed.error_message
    version = api.deployment_versions_get(PROJECT, "rebuild", "v1")
    assert (version.active_revision, version.latest_revision, version.status) == (first, second, "available")
    assert api.deployment_requests_create(PROJECT, "rebuild", {"x": 1}).result == {"y": 7}


def test_a_zip_with_its_files_at_the_root_builds_with_a_warning_in_the_build_log(emulator, tmp_path):
    """It built with no word, where UbiOps' docs ask for a folder at the zip's root."""
    api = emulator.sdk()
    api.deployments_create(PROJECT, deployment_body("at-root"))
    api.deployment_versions_create(PROJECT, "at-root", ubiops.DeploymentVersionCreate(version="v1"))
    code = {"deployment.py": "class Deployment:\n    def request(self, data):\n        return {'y': 1}\n"}
    built = {}
    for folder in ("", "deployment_package/"):
        package = tmp_path / f"package-{len(folder)}.zip"
        package.write_bytes(zip_of(code, folder=folder))
        revision = api.revisions_file_upload(PROJECT, "at-root", "v1", file=str(package)).revision
        assert wait_for(api, "at-root", "v1", revision).status == "success", "a warning, not a failure"
        built[folder] = revision

    def warned(revision: str) -> list[str]:
        lines = api.logs_list(PROJECT, query=f'| deployment_version_revision_id="{revision}"')
        if not any(line.log.startswith("built ") for line in lines):  # the build's last line: all are stored
            return []
        return [line.log for line in lines if FILES_AT_ROOT in line.log] or ["none"]

    assert eventually(lambda: warned(built[""]), "the build's lines are stored") == [FILES_AT_ROOT]
    assert eventually(lambda: warned(built["deployment_package/"]), "the build's lines are stored") == ["none"]


@pytest.mark.parametrize("content, message", [
    (zip_of({"deployment.py": "x = 1\n", "ubiops_input_spec.json": '[{"name": "z", "data_type": "int"}]'}),
     "ubiops_input_spec.json declares z (int) but the deployment's input fields are x (int)"),
    (zip_of({"deployment.py": "x = 1\n", "ubiops.yaml": "apt: {}\n"}), "ubiops.yaml"),
    # the emulator's own name of its copy was given ("796c81bc-….zip is not a readable zip file (File is not a zip file)")
    (b"", "the uploaded file is empty: it is not a zip file"),
    (b"not a zip", "the uploaded file is not a zip file"),
    (zip_of({"deployment.py": "x = 1\n"})[:-30], "the uploaded file is not a zip file"),
    (gzip.compress(zip_of({"deployment.py": "x = 1\n"})), "the uploaded file is not a zip file"),
    # a zip written with Windows' separators: it named no backslash, only the missing deployment.py
    (zip_of({"deployment.py": "x = 1\n"}, folder="deployment_package\\"),
     "the package has no deployment.py (the zip names its entries with backslashes, as "
     "deployment_package\\deployment.py, where a zip's folders are separated by '/'"),
    # these said only "the package has no deployment.py"
    (zip_of({"deployment.py": "x = 1\n"}, folder="project/deployment_package/"),
     "the package has no deployment.py (the package holds one at deployment_package/deployment.py: the package is the "
     "folder that holds deployment.py; zip that folder, not the one above it)"),
    (zip_bytes({"deployment.py": b"x = 1\n", "deployment_package/model.py": b"x = 1\n"}),
     "the package has no deployment.py (the zip holds deployment.py outside its package folder deployment_package/, "
     "whose files alone are the package: move it into that folder)"),
], ids=["spec", "manifest", "empty", "not-a-zip", "truncated", "gzip", "backslashes", "zip-of-the-folder-above",
        "deployment-py-beside-the-folder"])
def test_a_package_that_cannot_be_built_fails_with_its_reason(emulator, tmp_path, content, message, request):
    api = emulator.sdk()
    name = f"broken-{request.node.callspec.id}"
    api.deployments_create(PROJECT, deployment_body(name))
    api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1"))
    package = tmp_path / "package.zip"
    package.write_bytes(content)
    revision = api.revisions_file_upload(PROJECT, name, "v1", file=str(package)).revision
    failed = wait_for(api, name, "v1", revision)
    assert failed.status == "failed" and message in failed.error_message
    assert api.deployment_versions_get(PROJECT, name, "v1").status == "unavailable"
    response = httpx.post(f"{emulator.api}/projects/{PROJECT}/deployments/{name}/requests", json={"x": 1})
    assert response.status_code == 503 and response.json()["error"] == \
        f"Version v1's build failed: {failed.error_message}; upload a corrected package"


def test_environments_and_user(emulator):
    api = emulator.sdk()
    environment = api.environments_get(PROJECT, "python3-11")
    assert environment.system is True
    assert api.environment_tags_list(PROJECT, "python3-11")[0].status == "success"
    assert "python3-11" in [e.name for e in api.environments_list(PROJECT)]
    assert api.environments_list(PROJECT, labels="team:vision") == [], "base environments have no labels"
    assert httpx.get(f"{emulator.api}/user").json()["email"]
    with pytest.raises(ubiops.ApiException) as error:
        api.environments_get(PROJECT, "cobol-85")
    assert error.value.status == 404


@pytest.mark.parametrize("path, body, status, message", [
    ("deployments", {"name": "Bad Name"}, 400, "body name: String should match pattern"),
    ("deployments", {"name": "d", "colour": "red"}, 400, "body colour: Extra inputs are not permitted"),
    ("deployments", {"name": "d", "input_type": "plain", "input_fields": FIELDS}, 400,
     "input_fields must be empty when input_type is plain"),
    ("deployments", {"name": "d", "input_type": "structured"}, 400,
     "input_fields must list at least one field when input_type is structured"),
    ("deployments", {"name": "d", "input_fields": [{"name": "x", "data_type": "float"}]}, 400, "has data_type 'float'"),
    ("deployments", {"name": DEPLOYMENT}, 409, f"A deployment named '{DEPLOYMENT}' already exists"),
    (f"deployments/{DEPLOYMENT}/versions", {"version": "v1"}, 409, "A version named 'v1' already exists"),
    (f"deployments/{DEPLOYMENT}/versions", {}, 400, "body version: Field required"),
    (f"deployments/{DEPLOYMENT}/versions", {"version": "v9", "environment": "cobol-85"}, 400,
     "environment: 'cobol-85' is not an environment"),
    (f"deployments/{DEPLOYMENT}/versions", {"version": "v9", "maximum_idle_time": 5}, 400,
     "body maximum_idle_time: Input should be greater than or equal to 10"),
    (f"deployments/{DEPLOYMENT}/versions", {"version": "v9", "minimum_instances": 3, "maximum_instances": 1}, 400,
     "minimum_instances (3) exceeds maximum_instances (1)"),
    (f"deployments/{DEPLOYMENT}/versions", {"version": "v9", "request_retention_mode": "all"}, 400,
     "body request_retention_mode: Input should be 'none', 'metadata' or 'full'"),
    ("deployments/nope/versions", {"version": "v9"}, 404, "Deployment not found"),
])
def test_refused_management_bodies_are_clear_4xx(emulator, path, body, status, message):
    response = httpx.post(f"{emulator.api}/projects/{PROJECT}/{path}", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("method, path, kwargs, status, message", [
    ("patch", f"deployments/{DEPLOYMENT}", {"json": {"default_version": "v9"}}, 400, "has no version 'v9'"),
    ("post", f"deployments/{DEPLOYMENT}/versions/v1/revisions", {}, 400, "empty revisions (no code, as for a custom image) are not served"),
    ("post", f"deployments/{DEPLOYMENT}/versions/v1/revisions", {"data": {"source_version": "v0"}}, 400, "not supported"),
    ("post", f"deployments/{DEPLOYMENT}/versions/v9/revisions", {"files": {"file": ("p.zip", b"")}}, 404, "Version not found"),
    ("get", f"deployments/{DEPLOYMENT}/versions/v1/revisions/nope", {}, 404, "Revision not found"),
    ("get", "deployments?labels=team", {}, 400, "labels: 'team' is not written key:value"),
    ("delete", "deployments/nope", {}, 404, "Deployment not found"),
])
def test_other_refused_calls_are_clear_4xx(emulator, method, path, kwargs, status, message):
    response = httpx.request(method, f"{emulator.api}/projects/{PROJECT}/{path}", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
