"""The README's count of the SDK operations the emulator serves, measured: every operation of the
`ubiops` SDK's own API classes (its method, path and name, as the SDK sends them) against the paths
and methods of the emulator's OpenAPI document. The others are answered 501, naming the operation."""

from __future__ import annotations

import functools
import json
import re

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, ROOT, start_emulator

from emulator.api import unserved

README_COUNT = re.compile(r"\*\*(\d+) of the (\d+) operations\*\*")
MULTIPART_CALLS = {"files_start_multipart_upload", "files_complete_multipart_upload"}
"""Taken by the route of `files_upload` (`…/files/{file:path}`), which refuses them with its own 404
(tests/test_files.py)."""


@pytest.fixture(scope="module")
def plain(emulators):
    return emulators("plain")


def not_served(name: str) -> dict[str, str]:
    """The answer to an operation the emulator does not serve; the README section it names exists."""
    method, path = sdk_operations()[name]
    readme = (ROOT / "README.md").read_text()
    assert "\n## Differences from UbiOps\n" in readme and "\n- **Not served**" in readme
    return {"error": f"{name} ({method} {path}) is not served by the emulator (README: Differences from UbiOps, Not served)"}


@functools.cache
def sdk_operations() -> dict[str, tuple[str, str]]:
    """Each SDK operation's name: its HTTP method and path template, as the emulator reads them from the
    SDK's API modules (the count below checks that every operation is found)."""
    return {operation.name: (operation.method, operation.path) for operation in unserved.sdk_operations()}


def _template(path: str) -> str:
    """A path with its parameters unnamed, so `{name}` and `{deployment_name}` compare equal."""
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def test_the_readme_states_how_many_sdk_operations_are_served(tmp_path):
    emulator = start_emulator("plain", tmp_path)
    try:
        document = httpx.get(f"{emulator.url}/openapi.json").json()
    finally:
        emulator.stop()
    served = {(method.upper(), _template(path.removeprefix("/v2.1")))
              for path, methods in document["paths"].items() for method in methods}
    operations = sdk_operations()
    assert len(operations) == 238, "the ubiops 4.15 SDK's operations, all found"
    count = sum((method, _template(path)) in served for method, path in operations.values())
    assert README_COUNT.search((ROOT / "README.md").read_text()).groups() == (str(count), str(len(operations)))


def test_every_sdk_operation_the_emulator_does_not_serve_is_a_501_naming_it(plain):
    """Before, each was a bare 404 "Not Found", or a 405 "Method Not Allowed" where the emulator serves
    the path with other methods, as if the caller had used the wrong method. Sent for a project that does
    not exist, so that no route that might take the path could change anything."""
    document = httpx.get(f"{plain.url}/openapi.json").json()
    served = {(method.upper(), _template(path.removeprefix("/v2.1")))
              for path, methods in document["paths"].items() for method in methods}
    unserved = [name for name, (method, path) in sdk_operations().items()
                if (method, _template(path)) not in served and name not in MULTIPART_CALLS]
    assert {"environment_tags_rebuild", "projects_create", "environments_create", "quotas_list"} <= set(unserved)
    for name in unserved:
        method, path = sdk_operations()[name]
        concrete = re.sub(r"\{(\w+)\}", lambda parameter: f"no-such-{parameter[1].replace('_', '-')}", path)
        for prefix in ("/v2.1", "/v2"):
            response = httpx.request(method, plain.url + prefix + concrete)
            assert (response.status_code, response.json()) == (501, not_served(name)), (method, prefix + concrete)


@pytest.mark.parametrize("name, call", [
    ("environment_tags_rebuild", lambda api: api.environment_tags_rebuild(PROJECT, "python3-11", "latest")),
    ("environment_tags_build", lambda api: api.environment_tags_build(PROJECT, "python3-11", "latest")),
    ("quotas_list", lambda api: api.quotas_list(PROJECT)),
    ("deployment_audit_events_list", lambda api: api.deployment_audit_events_list(PROJECT, DEPLOYMENT)),
    # Paths the emulator serves with GET: these were 405 "Method Not Allowed"
    ("environments_create", lambda api: api.environments_create(
        PROJECT, ubiops.EnvironmentCreate(name="custom", base_environment="python3-11"))),
    ("projects_create", lambda api: api.projects_create(ubiops.ProjectCreate(name="another", organization_name="emulator"))),
    ("instances_update", lambda api: api.instances_update(PROJECT, DEPLOYMENT, "v1", "an-instance", {"status": "stopping"})),
])
def test_the_sdk_raises_the_501_naming_an_operation_not_served(plain, name, call):
    for prefix in ("/v2.1", "/v2"):
        with pytest.raises(ubiops.ApiException) as error:
            call(plain.sdk(prefix=prefix))
        assert (error.value.status, json.loads(error.value.body)) == (501, not_served(name)), prefix


@pytest.mark.parametrize("call", [
    lambda api: api.deployments_get(PROJECT, f"{DEPLOYMENT}/v1"),
    lambda api: api.files_get(PROJECT, "default/x", "a.txt"),
    lambda api: api.deployment_requests_get(PROJECT, DEPLOYMENT, "abc/def"),
])
def test_a_served_operation_naming_something_with_a_slash_is_a_404(plain, call):
    """The SDK sends the `/` as %2F, which no route matches, as Starlette matches the path decoded: this
    was a 501 saying that the operation is not served."""
    with pytest.raises(ubiops.ApiException) as error:
        call(plain.sdk())
    assert (error.value.status, json.loads(error.value.body)) == (404, {"error": "Not Found"})


@pytest.mark.parametrize("method, path, status, message", [
    ("PUT", f"/v2.1/projects/{PROJECT}", 405, "Method Not Allowed"),  # served with GET; no SDK operation PUTs it
    ("PUT", f"/v2/projects/{PROJECT}/deployments/{DEPLOYMENT}/requests/batch", 405, "Method Not Allowed"),
    ("GET", "/v2.1/no/such/route", 404, "Not Found"),
    ("GET", f"/v2.1/projects/{PROJECT}/quotas/", 404, "Not Found"),  # quotas_list's path has no trailing slash
    ("POST", f"/v2.1/projects/{PROJECT}/deployments//versions", 404, "Not Found"),  # an empty name is no name
    ("GET", f"/v3/projects/{PROJECT}/quotas", 404, "Not Found"),  # quotas_list, but not under the API
])
def test_a_call_that_is_no_sdk_operation_keeps_starlettes_answer(plain, method, path, status, message):
    response = httpx.request(method, plain.url + path)
    assert (response.status_code, response.json()) == (status, {"error": message})
