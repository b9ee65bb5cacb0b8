"""The read-only management calls a user's code makes before sending requests, through the SDK."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT

from emulator.launcher import wait_until_served


@pytest.fixture(scope="module")
def echo(emulators):
    """Served: an emulator answers before its instance has started, and its version is `building` till then."""
    emulator = emulators("echo")
    wait_until_served(emulator)
    return emulator


def test_status(echo):
    assert echo.sdk().service_status().status == "ok"
    assert httpx.get(f"{echo.url}/v2/status").json() == {"status": "ok"}


def test_projects(echo):
    api = echo.sdk()
    projects = api.projects_list()
    assert [(p.name, p.organization_name) for p in projects] == [(PROJECT, "emulator")]
    assert api.projects_get(PROJECT).name == PROJECT


def test_deployments_list_and_get(echo):
    api = echo.sdk()
    assert [d.name for d in api.deployments_list(PROJECT)] == [DEPLOYMENT]
    detail = api.deployments_get(PROJECT, DEPLOYMENT)
    assert (detail.project, detail.default_version, detail.input_type, detail.output_type) == (PROJECT, "v1", "structured", "structured")
    assert detail.input_fields[0].name == "int_in" and detail.input_fields[0].data_type == "int"
    assert [f.data_type for f in detail.output_fields][-1] == "array_string"


def test_versions_list_and_get(echo):
    api = echo.sdk()
    versions = api.deployment_versions_list(PROJECT, DEPLOYMENT)
    assert [(v.version, v.default, v.status) for v in versions] == [("v1", True, "available")]
    version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1")
    assert (version.deployment, version.status, version.has_request_method, version.has_requests_method) == (
        DEPLOYMENT, "available", True, False)
    assert version.request_retention_mode == "full" and version.environment_name.startswith("python3-")


def test_the_package_version_is_served_as_a_built_revision_the_sdks_wait_accepts(echo):
    """Before, the `--package` version had no revision: `wait_for_deployment_version` raised, calling
    `revisions_get` without a `revision_id`. Its package is a folder, so there is no zip to download."""
    api = echo.sdk()
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "v1", quiet=True)
    version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1")
    served = api.revisions_get(PROJECT, DEPLOYMENT, version.active_revision, "v1")
    assert (served.status, served.error_message, served.has_request_method) == ("success", None, True)
    assert api.revisions_list(PROJECT, DEPLOYMENT, "v1")[0].id == version.active_revision
    download = httpx.get(f"{echo.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/v1/revisions/"
                         f"{served.id}/download")
    assert download.status_code == 404 and "served as the command line gives it, not uploaded: it has no kept zip" \
        in download.json()["error"]


def test_the_package_version_is_not_rebuilt_through_the_api(echo):
    """Its revisions have no kept zip, and the command line names its base environment (read again at
    each start): a rebuild, or a new environment, is refused saying so, not taken and left unbuilt."""
    api = echo.sdk()
    version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1")
    with pytest.raises(ubiops.ApiException) as rebuilt:
        api.revisions_rebuild(PROJECT, DEPLOYMENT, version.active_revision, "v1", {})
    assert rebuilt.value.status == 400 and "it has no kept zip to build again from" in rebuilt.value.body
    other = "python3-12" if version.environment_name != "python3-12" else "python3-11"
    with pytest.raises(ubiops.ApiException) as moved:
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "v1", ubiops.DeploymentVersionUpdate(environment=other))
    assert moved.value.status == 400 and f"start the emulator with --environment {other}" in moved.value.body
    assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").environment_name == version.environment_name


def test_ports_and_a_health_check_are_kept_as_the_sdk_reads_them(echo):
    api = echo.sdk()
    api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
        version="ported", ports=[ubiops.DeploymentVersionPort(public_port=8080, deployment_port=80, protocol="tcp")],
        health_check=ubiops.HealthCheck(path="/health", port=80)))
    version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "ported")
    assert (version.ports[0].public_port, version.ports[0].protocol, version.health_check.path) == (8080, "tcp", "/health")
    api.deployment_versions_delete(PROJECT, DEPLOYMENT, "ported")


def test_the_user_is_read_by_the_sdk(echo):
    """The SDK's `user_get` raised "Invalid value for `authentication`, must not be `None`"."""
    user = echo.sdk().user_get()
    project = echo.sdk().projects_get(PROJECT)
    assert (user.email, user.authentication) == ("developer@emulator.local", "password")
    assert user.registration_date == project.creation_date, "registered with the first project"


def test_a_new_version_becomes_the_default_only_as_its_deployments_only_version(echo):
    """UbiOps makes the first version the default, and only a built, available one otherwise. Before, once
    the default was deleted, the next version created (unbuilt) became the default at once."""
    api = echo.sdk()
    api.deployments_create(PROJECT, {"name": "defaults", "input_type": "plain", "output_type": "plain"})
    try:
        for version in ("v1", "v2"):
            api.deployment_versions_create(PROJECT, "defaults", ubiops.DeploymentVersionCreate(version=version))
        assert api.deployments_get(PROJECT, "defaults").default_version == "v1"
        api.deployment_versions_delete(PROJECT, "defaults", "v1")
        assert api.deployments_get(PROJECT, "defaults").default_version is None
        api.deployment_versions_create(PROJECT, "defaults", ubiops.DeploymentVersionCreate(version="v3"))
        assert api.deployments_get(PROJECT, "defaults").default_version is None
        assert [(v.version, v.default) for v in api.deployment_versions_list(PROJECT, "defaults")] == [
            ("v2", False), ("v3", False)]
        for version in ("v2", "v3"):
            api.deployment_versions_delete(PROJECT, "defaults", version)
        api.deployment_versions_create(PROJECT, "defaults", ubiops.DeploymentVersionCreate(version="v4"))
        assert api.deployments_get(PROJECT, "defaults").default_version == "v4", "again the deployment's first"
    finally:
        api.deployments_delete(PROJECT, "defaults")


def test_a_setting_given_as_null_is_put_back_to_what_a_new_version_has(echo):
    api = echo.sdk()
    api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
        version="nulled", maximum_instances=3, request_retention_mode="none", description="kept",
        ports=[ubiops.DeploymentVersionPort(public_port=8080, deployment_port=80, protocol="tcp")]))
    fresh = httpx.post(f"{echo.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions", json={"version": "fresh"}).json()
    nulled = httpx.patch(f"{echo.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/nulled",
                         json={"maximum_instances": None, "request_retention_mode": None, "ports": None})
    assert nulled.status_code == 200, nulled.text
    for setting in ("maximum_instances", "request_retention_mode", "ports"):
        assert nulled.json()[setting] == fresh[setting], setting
    assert nulled.json()["description"] == "kept", "a setting not given is unchanged"
    for version in ("nulled", "fresh"):
        api.deployment_versions_delete(PROJECT, DEPLOYMENT, version)


def nested(levels: int) -> list:
    """`[[…]]`, `levels` arrays deep."""
    return json.loads("[" * levels + "]" * levels)


SURROGATE = os.fsdecode(b"photo-\xff.jpg")
"""A file name Python could not decode: it holds the lone surrogate U+DCFF, which UTF-8 cannot carry."""
REFUSED_SETTINGS = [
    ({"ports": [{"port": 8080}]}, "body ports 0 public_port: Field required"),
    ({"ports": [{"public_port": 1, "deployment_port": 2, "protocol": ""}]}, "body ports 0 protocol: String should have at least 1"),
    ({"health_check": {"interval": "often"}}, "body health_check interval: Input should be a valid integer"),
    ({"environment_tag": ""}, "body environment_tag: String should have at least 1 character"),
    ({"instance_type_group_name": ""}, "body instance_type_group_name: String should have at least 1 character"),
    # Before, the ones below were kept: then answers holding them, and saves of the catalog, failed with a 500 (or
    # the catalog was saved, and the next start refused to read it)
    ({"command": nested(101)}, "body command: Value error, nests objects and arrays deeper than 100 levels"),
    ({"args": nested(450)}, "body args: Value error, nests objects and arrays deeper than 100 levels"),
    ({"labels": {"source": SURROGATE}}, "body labels: Value error, 'photo-\\udcff.jpg' holds a lone UTF-16 surrogate"),
    ({"labels": {SURROGATE: "photo"}}, "body labels: Value error, 'photo-\\udcff.jpg' holds a lone UTF-16 surrogate"),
    ({"health_check": {"path": SURROGATE}}, "body health_check path: Value error, 'photo-\\udcff.jpg' holds a lone UTF-16"),
]


def send_json(method: str, url: str, body: dict) -> httpx.Response:
    """`body` as JSON text that spells a lone surrogate as its escape, as the SDK sends it (httpx's own
    `json=` cannot encode one)."""
    return httpx.request(method, url, content=json.dumps(body), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("settings, message", REFUSED_SETTINGS)
def test_version_settings_the_sdk_could_not_read_back_are_refused(echo, settings, message):
    """Before, they were stored: from then on the SDK refused every answer holding the version, the
    whole deployment's list included, also after a restart."""
    response = send_json("POST", f"{echo.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions",
                         {"version": "refused", **settings})
    assert response.status_code == 400 and response.json()["error"].startswith(message), response.text
    assert [v.version for v in echo.sdk().deployment_versions_list(PROJECT, DEPLOYMENT)] == ["v1"]


@pytest.mark.parametrize("settings, message", REFUSED_SETTINGS[-5:])
def test_an_update_to_settings_no_answer_could_hold_changes_nothing(echo, settings, message):
    """Before, a PATCH answered 500 but kept the settings: every later list, and every save, failed."""
    api, url = echo.sdk(), f"{echo.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}"
    api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
        version="patched", labels={"team": "vision"}, command=["python", "serve.py"]))
    try:
        response = send_json("PATCH", f"{url}/versions/patched", settings)
        assert response.status_code == 400 and response.json()["error"].startswith(message), response.text
        kept = api.deployment_versions_get(PROJECT, DEPLOYMENT, "patched")
        assert (kept.labels, kept.command, kept.args, kept.health_check) == ({"team": "vision"}, ["python", "serve.py"], None, None)
        assert [v.version for v in api.deployment_versions_list(PROJECT, DEPLOYMENT)] == ["v1", "patched"]
    finally:
        api.deployment_versions_delete(PROJECT, DEPLOYMENT, "patched")


@pytest.mark.parametrize("labels, message", [
    ({"source": SURROGATE}, "body labels: Value error, 'photo-\\udcff.jpg' holds a lone UTF-16 surrogate"),
    ({SURROGATE: "photo"}, "body labels: Value error, 'photo-\\udcff.jpg' holds a lone UTF-16 surrogate"),
])
def test_deployment_labels_that_are_not_unicode_text_are_refused(echo, labels, message):
    """Before, they were kept (a key as U+FFFD): the answer was a 500, and so was every later list and save."""
    url = f"{echo.api}/projects/{PROJECT}/deployments"
    created = send_json("POST", url, {"name": "labelled", "input_type": "plain", "output_type": "plain", "labels": labels})
    assert created.status_code == 400 and created.json()["error"].startswith(message), created.text
    updated = send_json("PATCH", f"{url}/{DEPLOYMENT}", {"labels": labels})
    assert updated.status_code == 400 and updated.json()["error"].startswith(message), updated.text
    assert [(d.name, d.labels) for d in echo.sdk().deployments_list(PROJECT)] == [(DEPLOYMENT, {})]


def test_an_environment_tag_the_environments_do_not_have_is_refused(echo):
    """It was echoed and the revision built, then the SDK's wait raised 404 "Environment tag not found",
    from the emulator's own environment_tags_get."""
    api = echo.sdk()
    refused = "environment_tag: 'v2' is not a tag of the environment; the emulator's environments have one, 'latest'"
    with pytest.raises(ubiops.ApiException) as created:
        api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
            version="tagged", environment="python3-11", environment_tag="v2"))
    assert (created.value.status, created.value.body) == (400, '{"error":"' + refused + '"}')
    api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(
        version="tagged", environment="python3-11", environment_tag="latest"))
    try:
        with pytest.raises(ubiops.ApiException) as updated:
            api.deployment_versions_update(PROJECT, DEPLOYMENT, "tagged", ubiops.DeploymentVersionUpdate(environment_tag="v2"))
        assert (updated.value.status, updated.value.body) == (400, '{"error":"' + refused + '"}')
        tag = api.deployment_versions_get(PROJECT, DEPLOYMENT, "tagged").environment_tag
        assert api.environment_tags_get(PROJECT, "python3-11", tag).name == "latest"
    finally:
        api.deployment_versions_delete(PROJECT, DEPLOYMENT, "tagged")


@pytest.mark.parametrize("call, args, message", [
    ("projects_get", ("nope",), "Project not found"),
    ("deployments_get", (PROJECT, "nope"), "Deployment not found"),
    ("deployments_list", ("nope",), "Project not found"),
    ("deployment_versions_get", (PROJECT, DEPLOYMENT, "v9"), "Version not found"),
    ("revisions_rebuild", (PROJECT, DEPLOYMENT, "nope", "v1", {}), "Revision not found"),
    ("deployment_version_requests_create", (PROJECT, DEPLOYMENT, "v9", {"int_in": 1}), "Version not found"),
    ("deployment_requests_create", (PROJECT, "nope", {"int_in": 1}), "Deployment not found"),
    ("deployment_requests_create", ("nope", DEPLOYMENT, {"int_in": 1}), "Project not found"),
])
def test_unknown_names_are_404_in_ubiops_error_shape(echo, call, args, message):
    with pytest.raises(ubiops.ApiException) as error:
        getattr(echo.sdk(), call)(*args)
    assert error.value.status == 404
    assert error.value.body == '{"error":"' + message + '"}'


def test_path_segments_are_percent_decoded(echo):
    response = httpx.get(f"{echo.api}/projects/{PROJECT.replace('-', '%2D')}/deployments/{DEPLOYMENT.replace('-', '%2D')}")
    assert response.status_code == 200 and response.json()["name"] == DEPLOYMENT


def test_unknown_route_answers_in_error_shape(echo):
    response = httpx.get(f"{echo.api}/no/such/route")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}


def test_openapi_docs_are_served(echo):
    assert httpx.get(f"{echo.url}/docs").status_code == 200
    paths = httpx.get(f"{echo.url}/openapi.json").json()["paths"]
    assert "/v2.1/projects/{project_name}/deployments/{deployment_name}/requests" in paths
