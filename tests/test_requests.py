"""Direct requests through the real `ubiops` SDK: what a user's code sees, field for field."""

from __future__ import annotations

import json

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, package_folder, start_emulator

ECHO_INPUT = {
    "int_in": 7,
    "double_in": 2,
    "string_in": "héllo",
    "bool_in": False,
    "dict_in": {"nested": [1, {"a": None}]},
    "file_in": None,
    "array_int_in": [1, -2],
    "array_double_in": [0.5, 3],
    "array_string_in": ["a", ""],
}


@pytest.fixture(scope="module")
def echo(emulators, tmp_path_factory):
    return emulators("echo", "--env", "FROM_CLI=cli value")


@pytest.fixture(scope="module")
def uploaded_portrait(echo) -> tuple[bytes, str]:
    """A file in the default bucket, put there the way the emulator's signed-URL storage expects."""
    data = b"\x89PNG pretend portrait bytes"
    response = httpx.post(echo.requests_url(), files={"file_in": ("portrait.png", data)},
                          data={k: json.dumps(v) if not isinstance(v, str) else v
                                for k, v in ECHO_INPUT.items() if k != "file_in"})
    body = response.json()
    assert body["status"] == "completed", body
    return data, body["result"]["file_out"]


def test_sdk_request_returns_every_required_field(echo, uploaded_portrait):
    api = echo.sdk()
    _, uri = uploaded_portrait
    response = api.deployment_requests_create(PROJECT, DEPLOYMENT, data={**ECHO_INPUT, "file_in": uri, "extra": 1})
    assert isinstance(response, ubiops.DeploymentRequestCreateResponse)
    assert response.status == "completed" and response.success is True and response.error_message is None
    assert response.deployment == DEPLOYMENT and response.version == "v1" and response.timeout == 300
    result = response.result
    assert result["int_out"] == 7 and result["double_out"] == 2 and result["string_out"] == "héllo"
    assert result["bool_out"] is False and result["array_double_out"] == [0.5, 3]
    assert "extra" not in result["dict_out"]["received_keys"], "extra input keys are dropped"
    assert result["file_out"] == f"ubiops-file://default/deployment_requests/{response.id}/output/copy.bin"


def test_version_level_request_and_timeout_parameter(echo, uploaded_portrait):
    api = echo.sdk()
    response = api.deployment_version_requests_create(
        PROJECT, DEPLOYMENT, "v1", data={**ECHO_INPUT, "file_in": uploaded_portrait[1]}, timeout=60
    )
    assert response.status == "completed" and response.version == "v1" and response.timeout == 60


@pytest.mark.parametrize(("suffix", "query", "error"), [
    ("/requests", "timeout=9", "query timeout: Input should be greater than or equal to 10"),
    ("/requests", "timeout=3601", "query timeout: Input should be less than or equal to 3600"),
    ("/requests", "timeout=soon", "query timeout: Input should be a valid integer, unable to parse string as an integer"),
    ("/requests", "priority=2&timeout=5", "query timeout: Input should be greater than or equal to 10; "
                                          "query priority: Input should be less than or equal to 1"),
    ("/versions/v1/requests/batch", "timeout=172801", "query timeout: Input should be less than or equal to 172800"),
    ("/versions/v1/requests/stream", "timeout=-1", "query timeout: Input should be greater than or equal to 10"),
])
def test_request_query_out_of_bounds_is_refused_before_the_request_exists(echo, suffix, query, error):
    deployment_url = echo.requests_url().removesuffix("/requests")
    before = echo.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, limit=500)
    response = httpx.post(f"{deployment_url}{suffix}?{query}", json={**ECHO_INPUT, "file_in": None})
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert len(echo.sdk().deployment_requests_list(PROJECT, DEPLOYMENT, limit=500)) == len(before)


def test_both_api_prefixes_and_default_sdk_host(echo, uploaded_portrait):
    """SDK 4.15 appends /v2 to a bare host; older SDKs and the CLI use /v2.1."""
    data = {**ECHO_INPUT, "file_in": uploaded_portrait[1]}
    config = ubiops.Configuration(host=echo.url, api_key={"Authorization": "t"})
    assert config.host.endswith("/v2")
    with ubiops.ApiClient(config) as client:
        assert ubiops.CoreApi(client).deployment_requests_create(PROJECT, DEPLOYMENT, data=data).status == "completed"
    assert echo.sdk(prefix="/v2.1").deployment_requests_create(PROJECT, DEPLOYMENT, data=data).status == "completed"


def test_file_input_reaches_request_as_a_local_copy(echo, uploaded_portrait):
    data, uri = uploaded_portrait
    result = echo.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={**ECHO_INPUT, "file_in": uri}).result
    path = result["dict_out"]["file_in_path"]
    assert path.startswith("/") and result["dict_out"]["file_in_size"] == len(data)


def test_multipart_upload_and_download_url_for_curl_users(echo):
    portrait = b"JPEG-ish bytes \x00\x01\x02"
    form = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in ECHO_INPUT.items() if k != "file_in"}
    form["bool_in"] = "true"
    response = httpx.post(echo.requests_url(), files={"file_in": ("my portrait.jpg", portrait)}, data=form)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "completed", body
    assert body["result"]["bool_out"] is True and body["result"]["int_out"] == 7
    assert body["result"]["dict_out"]["file_in_path"].endswith("/my portrait.jpg")
    uri = body["result"]["file_out"]
    download = httpx.get(body["emulator_file_urls"][uri])
    assert download.status_code == 200 and download.content == portrait


def test_download_url_is_bound_to_its_file(echo):
    form = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in ECHO_INPUT.items() if k != "file_in"}
    body = httpx.post(echo.requests_url(), files={"file_in": ("a.bin", b"a")}, data=form).json()
    url = next(iter(body["emulator_file_urls"].values()))
    forged = url.replace("copy.bin", "copy-1.bin")
    assert httpx.get(forged).status_code == 403
    assert httpx.get(url.replace("signature=", "signature=0")).json() == {"error": "The signed URL is invalid or has expired"}


def test_context_environment_and_sys_path_as_on_ubiops(echo, uploaded_portrait):
    response = echo.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={**ECHO_INPUT, "file_in": uploaded_portrait[1]})
    seen = response.result["dict_out"]
    init = seen["init_context"]
    assert set(init) >= {"project", "project_id", "deployment", "deployment_id", "version", "version_id", "input_type",
                         "output_type", "input_fields", "output_fields", "language", "environment_variables"}
    assert (init["project"], init["deployment"], init["version"], init["language"]) == (PROJECT, DEPLOYMENT, "v1", "python")
    assert init["input_fields"][0] == "int_in" and init["output_type"] == "structured"
    assert init["environment_variables"] == {"FROM_YAML": "yaml=value", "FROM_CLI": "cli value"}
    assert seen["request_context"]["id"] == response.id and seen["request_context"]["request_mode"] == "express"
    assert "user_id" in seen["request_context"]
    assert seen["request_context_callables"] == ["streaming_update"]
    assert (seen["env_from_yaml"], seen["env_from_cli"], seen["default_bucket"]) == ("yaml=value", "cli value", "default")
    revision = echo.sdk().deployment_versions_get(PROJECT, DEPLOYMENT, "v1").active_revision
    package = str((echo.data_dir / "builds" / revision).resolve())  # the revision's own copy of the folder
    assert seen["base_directory"] == package and seen["cwd"] == package
    assert seen["sys_path_tail"] == [package, f"{package}/libraries"]
    assert seen["helper"] == "helper saw 'héllo'"


def test_plain_package_takes_and_returns_text(emulators):
    plain = emulators("plain")
    response = plain.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="portrait please")
    assert response.status == "completed" and response.result == "PORTRAIT PLEASE"
    details = plain.sdk().deployments_get(PROJECT, DEPLOYMENT)
    assert (details.input_type, details.output_type, details.input_fields) == ("plain", "plain", [])


def test_oldest_signatures_are_called_without_context(emulators):
    minimal = emulators("minimal")
    api = minimal.sdk()
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data="a").result == "a #1"
    assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data="b").result == "b #2", "one instance, kept between requests"


def test_a_list_goes_to_requests_in_one_call(emulators):
    batch = emulators("batch")
    response = batch.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"x": 1}, {"x": 2.5}])
    assert response.status == "completed"
    assert response.result == [{"y": 10.02}, {"y": 25.02}]
    single = batch.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data={"x": 3})
    assert single.result == {"y": 30.01}, "a single item goes to requests() as a list of one"


COPYING = """
class Deployment:
    def requests(self, data):
        return [{"y": item["x"]} for item in data for _ in range(item["copies"])]
"""


def test_a_requests_that_returns_another_number_of_results_fails_the_request(tmp_path):
    """A list of 2 answered with one result completed, with that one output: the other input's was lost."""
    emulator = start_emulator(package_folder(tmp_path / "copying", COPYING, '[{"name": "x", "data_type": "int"}, '
                                             '{"name": "copies", "data_type": "int"}]', '[{"name": "y", "data_type": "int"}]'),
                              tmp_path)
    try:
        api = emulator.sdk()
        matched = api.deployment_requests_create(PROJECT, DEPLOYMENT, data=[{"x": 1, "copies": 1}, {"x": 2, "copies": 1}])
        assert (matched.status, matched.result) == ("completed", [{"y": 1}, {"y": 2}])
        for data, message in [
            ([{"x": 1, "copies": 0}, {"x": 2, "copies": 1}], "The input was a list of 2; requests() returned 1 result, "
             "where each input needs its own"),
            ([{"x": 1, "copies": 2}, {"x": 2, "copies": 1}], "The input was a list of 2; requests() returned 3 results, "
             "where each input needs its own"),
            ({"x": 1, "copies": 2}, "The input was one item, given to requests() as a list of one; requests() returned 2 results"),
            ({"x": 1, "copies": 0}, "The input was one item, given to requests() as a list of one; requests() returned 0 results"),
        ]:
            answer = api.deployment_requests_create(PROJECT, DEPLOYMENT, data=data)
            assert (answer.status, answer.result, answer.error_message) == ("failed", None, message)
    finally:
        emulator.stop()
