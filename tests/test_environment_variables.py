"""Environment variables at project, deployment and version level, through the real SDK against a real
emulator: UbiOps' shapes, its order (version over deployment over project, with `ubiops.yaml` below
and `--env` above), secrets answered as null and never logged (nor shown when the deployment prints
them or fails with them), the instances restarted by a change, variables kept across restarts, and every
refusal a clear 4xx.

The served package (`tests/packages/environment`) answers the variables it is asked for, as its
instance sees them in `os.environ` and in the init context.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PACKAGES, PROJECT, ROOT, Emulator, eventually, free_port, start_emulator, wait_for_log, zip_bytes
from ubiops.utils import wait_for_deployment_request, wait_for_deployment_version_request
from ubiops.utils.exceptions import StatusError

from emulator import launcher

PACKAGE = "environment"
PROJECT_SECRET, VERSION_SECRET, ROTATED_SECRET = "project-secret-7f3e91", "version-secret-2b9d44", "rotated-secret-c05a17"
SECRETS = (PROJECT_SECRET, VERSION_SECRET, ROTATED_SECRET)
OTHER = "second"


def variable(name: str, value: str, secret: bool = False) -> ubiops.EnvironmentVariableCreate:
    return ubiops.EnvironmentVariableCreate(name=name, value=value, secret=secret)


def seen(api: ubiops.CoreApi, *names: str, deployment: str = DEPLOYMENT) -> dict[str, str | None]:
    """What the deployment's instance has for `names`; `os.environ` and the init context agree."""
    answer = api.deployment_version_requests_create(PROJECT, deployment, "v1", {"names": list(names)})
    assert answer.status == "completed", answer.error_message
    assert answer.result["environ"] == answer.result["context"], answer.result
    return answer.result["environ"]


def rows(variables: list) -> set[tuple]:
    return {(v.name, v.value, v.secret, v.inheritance_type, v.inheritance_name) for v in variables}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Emulator:
    """An emulator of its own, as these tests set project-wide variables; `--env` sets FROM_ENV."""
    emulator = start_emulator(PACKAGE, tmp_path_factory.mktemp("variables"), "--env", "FROM_ENV=command-line")
    yield emulator
    emulator.stop()


def upload_deployment(api: ubiops.CoreApi, name: str, folder: Path, manifest: str | None = None) -> str:
    """Create deployment `name` with a version v1 and upload the package `PACKAGE` to it, with `manifest`
    as its `ubiops.yaml` if given; the revision's id."""
    package = PACKAGES / PACKAGE
    api.deployments_create(PROJECT, {
        "name": name, "input_type": "structured", "output_type": "structured",
        "input_fields": json.loads((package / "ubiops_input_spec.json").read_text()),
        "output_fields": json.loads((package / "ubiops_output_spec.json").read_text())})
    api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1"))
    files = {f"deployment_package/{path.name}": path.read_bytes() for path in package.iterdir() if path.is_file()}
    if manifest is not None:
        files["deployment_package/ubiops.yaml"] = manifest.encode()
    (folder / f"{name}.zip").write_bytes(zip_bytes(files))
    return api.revisions_file_upload(PROJECT, name, "v1", file=str(folder / f"{name}.zip")).revision


def manifest_of(count: int) -> str:
    """A `ubiops.yaml` of `count` variables of 60 008 bytes each (`YAML_i=...` and the NUL), well under the 64 KiB a value may hold."""
    return "environment_variables:\n" + "".join(f"  - YAML_{i}={'y' * 60000}\n" for i in range(count))


@pytest.fixture(scope="module")
def second(emulator, tmp_path_factory) -> str:
    """Another deployment of the same project running the same package, built through the API."""
    api = emulator.sdk()
    revision = upload_deployment(api, OTHER, tmp_path_factory.mktemp("second"))
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, OTHER, "v1", revision_id=revision, quiet=True)
    return OTHER


def test_the_instance_sees_the_machines_settings_not_the_shell_it_was_started_from(tmp_path):
    """Before, every variable of the emulator's shell reached the instances: a package that read one
    passed here (and `deployer check`) and failed on UbiOps, whose containers have their own."""
    emulator = start_emulator(PACKAGE, tmp_path, "--env", "PASSED_ON", env={"EXPORTED_HERE": "x", "PASSED_ON": "y",
                                                                            "LC_TIME": "C.UTF-8", "https_proxy": ""})
    try:
        names = ("EXPORTED_HERE", "PASSED_ON", "LC_TIME", "https_proxy", "HOME")
        answer = emulator.sdk().deployment_version_requests_create(PROJECT, DEPLOYMENT, "v1", {"names": list(names)})
        assert answer.result["environ"] == {"EXPORTED_HERE": None, "PASSED_ON": "y", "LC_TIME": "C.UTF-8",
                                            "https_proxy": "", "HOME": os.environ["HOME"]}
    finally:
        emulator.stop()


@pytest.mark.parametrize("option, message", [("NOT_SET_ANYWHERE", "--env NOT_SET_ANYWHERE: NOT_SET_ANYWHERE is not set here"),
                                             ("=value", "must be written NAME=value")])
def test_an_env_option_without_a_value_to_pass_on_is_refused(tmp_path, option, message):
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", str(PACKAGES / PACKAGE), "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), "--env", option], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and message in run.stderr


def test_a_configured_secret_no_environment_can_hold_is_refused_at_start(tmp_path):
    """A `[tool.deployer]` secret's value comes from the shell, as for the deployer, which refuses one no
    environment can hold; the emulator passed it on, and its instances failed to start (`UnicodeEncodeError`)."""
    shutil.copytree(PACKAGES / PACKAGE, tmp_path / "pkg")
    (tmp_path / "pyproject.toml").write_text('[tool.deployer]\npackage = "pkg"\nsecrets = ["API_KEY"]\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "UBIOPS_"))}
    run = subprocess.run([sys.executable, "-m", "emulator", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**environment, "PYTHONPATH": str(ROOT), "API_KEY": os.fsdecode(b"not-utf8-\xff-secret")})
    assert (run.returncode, run.stderr.strip()) == (1, "emulator: error: API_KEY (named in [tool.deployer] secrets) holds "
                                                       "a lone surrogate, which is not text: export it as UTF-8 text")


def test_a_project_secret_overridden_by_the_version_reaches_the_instance_and_is_never_shown(emulator):
    api = emulator.sdk()
    names = ("API_KEY", "LEVEL", "FROM_YAML", "FROM_ENV")
    assert seen(api, *names) == {"API_KEY": None, "LEVEL": "yaml", "FROM_YAML": "yaml", "FROM_ENV": "command-line"}

    created = api.project_environment_variables_create(PROJECT, variable("API_KEY", PROJECT_SECRET, secret=True))
    assert (created.name, created.value, created.secret) == ("API_KEY", None, True)
    assert seen(api, "API_KEY") == {"API_KEY": PROJECT_SECRET}
    api.deployment_environment_variables_create(PROJECT, DEPLOYMENT, variable("LEVEL", "deployment"))
    own = api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1",
                                                              variable("API_KEY", VERSION_SECRET, secret=True))
    api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1", variable("FROM_ENV", "api"))
    assert seen(api, *names) == {"API_KEY": VERSION_SECRET, "LEVEL": "deployment", "FROM_YAML": "yaml",
                                 "FROM_ENV": "command-line"}

    assert rows(api.deployment_version_environment_variables_list(PROJECT, DEPLOYMENT, "v1")) == {
        ("API_KEY", None, True, None, None), ("FROM_ENV", "api", False, None, None),
        ("LEVEL", "deployment", False, "deployment", DEPLOYMENT)}
    assert rows(api.deployment_environment_variables_list(PROJECT, DEPLOYMENT)) == {
        ("LEVEL", "deployment", False, None, None), ("API_KEY", None, True, "project", PROJECT)}
    assert [(v.name, v.value, v.secret) for v in api.project_environment_variables_list(PROJECT)] == [
        ("API_KEY", None, True)]
    by_name = api.deployment_version_environment_variables_get(PROJECT, DEPLOYMENT, "API_KEY", "v1")
    assert (by_name.id, by_name.value) == (own.id, None), "found by name too, as the CLI's --overwrite asks"

    rotated = api.deployment_version_environment_variables_update(PROJECT, DEPLOYMENT, own.id, "v1",
                                                                  variable("API_KEY", ROTATED_SECRET, secret=True))
    assert (rotated.id, rotated.value, rotated.secret) == (own.id, None, True)
    assert seen(api, "API_KEY") == {"API_KEY": ROTATED_SECRET}

    base = f"{emulator.api}/projects/{PROJECT}"
    level = f"{base}/deployments/{DEPLOYMENT}/versions/v1"
    answers = [httpx.get(f"{url}/environment-variables") for url in (base, f"{base}/deployments/{DEPLOYMENT}", level)]
    answers += [httpx.get(f"{base}/environment-variables/{created.id}"),
                httpx.get(f"{level}/environment-variables/{own.id}"),
                httpx.patch(f"{level}/environment-variables/{own.id}", json={"value": ROTATED_SECRET}),
                httpx.post(f"{base}/deployments/{DEPLOYMENT}/copy-environment-variables",
                           json={"source_deployment": DEPLOYMENT, "source_version": "v1"})]
    assert [a.status_code for a in answers] == [200] * 7
    for answer in answers:
        assert not any(secret in answer.text for secret in SECRETS), answer.text

    api.deployment_version_environment_variables_delete(PROJECT, DEPLOYMENT, own.id, "v1")
    for name in ("API_KEY", "FROM_ENV"):  # the copies just made
        api.deployment_environment_variables_delete(PROJECT, DEPLOYMENT, name)
    api.deployment_version_environment_variables_delete(PROJECT, DEPLOYMENT, "FROM_ENV", "v1")
    assert seen(api, "API_KEY") == {"API_KEY": PROJECT_SECRET}, "without its own, the version sees the project's"
    api.project_environment_variables_delete(PROJECT, created.id)
    assert seen(api, "API_KEY") == {"API_KEY": None}
    log = wait_for_log(emulator, "restarting")
    assert not any(secret in log for secret in SECRETS)


def test_a_change_restarts_every_version_that_sees_it_and_a_new_build_gets_them(emulator, second):
    api = emulator.sdk()
    shared = api.project_environment_variables_create(PROJECT, variable("SHARED", "one"))
    assert seen(api, "SHARED") == seen(api, "SHARED", deployment=second) == {"SHARED": "one"}
    api.deployment_environment_variables_create(PROJECT, second, variable("SHARED", "its own"))
    api.project_environment_variables_update(PROJECT, shared.id, variable("SHARED", "two"))
    assert seen(api, "SHARED") == {"SHARED": "two"}
    assert seen(api, "SHARED", deployment=second) == {"SHARED": "its own"}, "a deployment's own variable wins"
    assert f"restarting {second}/v1: its environment variables changed" in emulator.log()
    api.project_environment_variables_delete(PROJECT, shared.id)


def test_copy_takes_a_versions_own_variables_and_overwrites_same_names(emulator, second):
    api = emulator.sdk()
    api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1", variable("COPIED", "from v1"))
    api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1",
                                                        variable("COPIED_SECRET", VERSION_SECRET, secret=True))
    api.deployment_environment_variables_create(PROJECT, DEPLOYMENT, variable("NOT_COPIED", "inherited by v1"))
    api.deployment_version_environment_variables_create(PROJECT, second, "v1", variable("COPIED", "to be overwritten"))
    copies = api.deployment_version_environment_variables_copy(
        PROJECT, second, "v1", ubiops.EnvironmentVariableCopy(source_deployment=DEPLOYMENT, source_version="v1"))
    assert {(c.name, c.value, c.secret, c.inheritance_type) for c in copies} == {
        ("COPIED", "from v1", False, None), ("COPIED_SECRET", None, True, None)}
    assert seen(api, "COPIED", "COPIED_SECRET", "NOT_COPIED", deployment=second) == {
        "COPIED": "from v1", "COPIED_SECRET": VERSION_SECRET, "NOT_COPIED": None}
    own = [v.name for v in api.deployment_version_environment_variables_list(PROJECT, second, "v1") if not v.inheritance_type]
    assert sorted(own) == ["COPIED", "COPIED_SECRET"], "overwritten, not doubled"


def test_variables_too_large_together_to_start_a_process_with_are_refused(emulator):
    """Forty version secrets of 60 000 characters each answered 201, and the version then failed to start
    (`Argument list too long`); one such project variable took down every version."""
    api = emulator.sdk()
    big = [api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1", variable(f"BIG_{i}", "b" * 61500, True))
           for i in range(17)]  # 17 x 61 508 bytes with the names: 3 KB under the bound, and the instance starts with them
    try:
        assert seen(api, "BIG_0") == {"BIG_0": "b" * 61500}
        base = f"{emulator.api}/projects/{PROJECT}"
        version = f"{base}/deployments/{DEPLOYMENT}/versions/v1/environment-variables"
        refused = [httpx.post(version, json={"name": "BIG_17", "value": "b" * 5000, "secret": True}),
                   httpx.post(f"{base}/environment-variables", json={"name": "PROJECT_BIG", "value": "b" * 5000}),
                   httpx.patch(f"{version}/BIG_0", json={"value": "b" * 65536})]
        for response in refused:
            assert response.status_code == 400, response.text[:300]
            assert re.fullmatch(rf"value: version v1 of deployment {DEPLOYMENT} would see environment variables of 1\d{{6}} bytes "
                                r"together, more than the 1048576 \(1 MiB\) an instance's environment may hold",
                                response.json()["error"]), response.text
        assert seen(api, "BIG_0", "BIG_17", "PROJECT_BIG") == {"BIG_0": "b" * 61500, "BIG_17": None, "PROJECT_BIG": None}, (
            "a refused change leaves the variables as they were")
    finally:
        for created in big:
            api.deployment_version_environment_variables_delete(PROJECT, DEPLOYMENT, created.id, "v1")


def test_a_ubiops_yaml_too_large_to_start_a_process_with_fails_its_build_saying_so(emulator, tmp_path):
    """`ubiops.yaml`'s variables come on top of the API's, which alone are held to 1 MiB: past Linux's ARG_MAX
    together, the build failed with a bare `OSError: [Errno 7] Argument list too long`."""
    api = emulator.sdk()
    revision = upload_deployment(api, "crowded", tmp_path, manifest_of(os.sysconf("SC_ARG_MAX") // 60000 + 1))
    try:
        with pytest.raises(Exception, match="failed"):
            ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "crowded", "v1", revision_id=revision,
                                                     timeout=120, quiet=True)
        failed = api.revisions_get(PROJECT, "crowded", revision, "v1")
        assert failed.status == "failed"
        assert re.match(r"the deployment failed to start \(its environment variables are too large together \(2\d{6} bytes: "
                        r"ubiops.yaml's, the API's, --env's and the machine's\); Linux starts a process only while its "
                        r"environment and command line fit in ARG_MAX \(\d+ bytes here\)\)", failed.error_message), failed.error_message
        assert seen(api, "FROM_YAML") == {"FROM_YAML": "yaml"}, "the other versions serve on"
    finally:
        api.deployments_delete(PROJECT, "crowded")


def test_the_api_counts_a_versions_ubiops_yaml_variables_in_the_bound(emulator, tmp_path):
    """The instances get `ubiops.yaml`'s variables too: with 600 KB of them, 490 KB more through the API
    answered 201, and the version then held more than the 1 MiB the API promises to keep it under."""
    api = emulator.sdk()
    revision = upload_deployment(api, "heavy", tmp_path, manifest_of(10))
    try:
        ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "heavy", "v1", revision_id=revision, quiet=True)
        version = f"{emulator.api}/projects/{PROJECT}/deployments/heavy/versions/v1/environment-variables"
        for i in range(7):  # 600 080 + 7 x 61 507 bytes, and --env's: under the bound
            created = httpx.post(version, json={"name": f"BIG_{i}", "value": "b" * 61500})
            assert created.status_code == 201, created.text[:300]
        refused = [httpx.post(version, json={"name": "BIG_7", "value": "b" * 61500}),
                   httpx.post(f"{emulator.api}/projects/{PROJECT}/environment-variables",
                              json={"name": "PROJECT_BIG", "value": "b" * 61500})]
        for response in refused:
            assert response.status_code == 400, response.text[:300]
            assert re.fullmatch(r"value: version v1 of deployment heavy would see environment variables of 1\d{6} bytes "
                                r"together, more than the 1048576 \(1 MiB\) an instance's environment may hold",
                                response.json()["error"]), response.text
        shrunk = httpx.patch(f"{version}/BIG_0", json={"value": "b"})
        assert shrunk.status_code == 200, shrunk.text
    finally:
        api.deployments_delete(PROJECT, "heavy")


@pytest.fixture(scope="module")
def taken(emulator) -> dict[str, str]:
    """A variable TAKEN set at each level, and the level URLs."""
    base = f"{emulator.api}/projects/{PROJECT}"
    levels = {"project": base, "deployment": f"{base}/deployments/{DEPLOYMENT}",
              "version": f"{base}/deployments/{DEPLOYMENT}/versions/v1"}
    for url in levels.values():
        created = httpx.post(f"{url}/environment-variables", json={"name": "TAKEN", "value": "x", "secret": True})
        assert created.status_code == 201, created.text
    return levels


@pytest.mark.parametrize("level", ["project", "deployment", "version"])
@pytest.mark.parametrize("method, path, body, status, message", [
    ("post", "", {"name": "1ST", "value": "x", "secret": False}, 400, "'1ST' is not an environment variable name"),
    ("post", "", {"name": "_LEADING", "value": "x", "secret": False}, 400, "is not an environment variable name: use"),
    ("post", "", {"name": "TRAILING_", "value": "x", "secret": False}, 400, "is not an environment variable name"),
    ("post", "", {"name": "HAS-DASH", "value": "x", "secret": False}, 400, "is not an environment variable name"),
    ("post", "", {"name": "A" * 65, "value": "x", "secret": False}, 400, "at most 64 characters"),
    ("post", "", {"name": "", "value": "x", "secret": False}, 400, "is not an environment variable name"),
    ("post", "", {"name": "NO_VALUE", "secret": False}, 400, "body value: Field required"),
    ("post", "", {"name": "NUMBER", "value": 5, "secret": False}, 400, "body value: Input should be a valid string"),
    ("post", "", {"name": "NUL", "value": "hidden-\x00-value", "secret": True}, 400, "holds a NUL character"),
    ("post", "", {"name": "SURROGATE", "value": "hidden-\ud800", "secret": True}, 400, "holds a lone surrogate"),
    ("post", "", {"name": "HUGE", "value": "v" * 65537, "secret": False}, 400, "longer than 65536 bytes in UTF-8"),
    ("post", "", {"name": "EMOJI", "value": "\U0001f600" * 16385, "secret": True}, 400, "longer than 65536 bytes in UTF-8"),
    ("post", "", {"name": "EXTRA", "value": "x", "secret": False, "level": 1}, 400, "Extra inputs are not permitted"),
    ("post", "", {"name": "TAKEN", "value": "x", "secret": False}, 409, "named 'TAKEN' already exists"),
    ("patch", "/TAKEN", {"name": "bad name"}, 400, "'bad name' is not an environment variable name"),
    ("get", "/no-such-id", None, 404, "Environment variable not found"),
    ("patch", "/no-such-id", {"value": "x"}, 404, "Environment variable not found"),
    ("delete", "/no-such-id", None, 404, "Environment variable not found"),
])
def test_refused_calls_are_clear_4xx_and_echo_no_value(taken, level, method, path, body, status, message):
    """Bodies are sent as JSON with every non-ASCII character escaped, as a lone surrogate can only be."""
    response = httpx.request(method, f"{taken[level]}/environment-variables{path}", headers={"Content-Type": "application/json"},
                             content=None if body is None else json.dumps(body))
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert "hidden-" not in response.text


@pytest.mark.parametrize("method, path, body, status, message", [
    ("get", "projects/nope/environment-variables", None, 404, "Project not found"),
    ("post", f"projects/{PROJECT}/deployments/nope/environment-variables", {"name": "A", "value": "x"}, 404,
     "Deployment not found"),
    ("get", f"projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/v9/environment-variables", None, 404,
     "Version not found"),
    ("post", f"projects/{PROJECT}/deployments/{DEPLOYMENT}/copy-environment-variables",
     {"source_deployment": "nope"}, 404, "Deployment not found"),
    ("post", f"projects/{PROJECT}/deployments/{DEPLOYMENT}/copy-environment-variables",
     {"source_deployment": DEPLOYMENT, "source_version": "v9"}, 404, "Version not found"),
    ("post", f"projects/{PROJECT}/deployments/{DEPLOYMENT}/copy-environment-variables", {}, 400,
     "body source_deployment: Field required"),
    ("post", f"projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/v1/copy-environment-variables",
     {"source_deployment": ""}, 400, "body source_deployment: String should have at least 1 character"),
])
def test_unknown_levels_and_bad_copies_are_refused(emulator, method, path, body, status, message):
    response = httpx.request(method, f"{emulator.api}/{path}", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_an_inherited_variable_is_not_a_levels_own(taken):
    """As on UbiOps, get, update and delete reach only the variables a level sets itself."""
    project_variable = httpx.get(f"{taken['project']}/environment-variables/TAKEN").json()
    response = httpx.delete(f"{taken['deployment']}/environment-variables/{project_variable['id']}")
    assert (response.status_code, response.json()) == (404, {"error": "Environment variable not found"})


@pytest.mark.parametrize("level", ["project", "deployment", "version"])
def test_secret_false_on_a_secret_is_ignored_and_the_rest_applied(taken, level):
    """A secret stays a secret ("can be updated from false to true, but not from true to false"), and the
    CLI sends `secret: false` whenever `--secret` is left out (`env update`, `env create --overwrite`):
    before, such a rotation was refused with a 400 ("is a secret and stays one")."""
    url = f"{taken[level]}/environment-variables"
    created = httpx.post(url, json={"name": "ROTATE", "value": "hidden-old", "secret": True}).json()
    try:
        updated = httpx.patch(f"{url}/{created['id']}", json={"name": "ROTATED", "value": "hidden-new", "secret": False})
        assert (updated.status_code, updated.json()) == (200, {"id": created["id"], "name": "ROTATED", "value": None,
                                                               "secret": True})
        assert httpx.get(f"{url}/ROTATED").json()["secret"] is True
    finally:
        httpx.delete(f"{url}/{created['id']}")


def test_renaming_onto_a_taken_name_is_refused(taken):
    created = httpx.post(f"{taken['deployment']}/environment-variables", json={"name": "FREE", "value": "1"}).json()
    response = httpx.patch(f"{taken['deployment']}/environment-variables/{created['id']}", json={"name": "TAKEN"})
    assert (response.status_code, response.json()) == (
        409, {"error": f"An environment variable named 'TAKEN' already exists for deployment {DEPLOYMENT}"})


def test_variables_and_secrets_survive_a_restart_in_a_private_file(tmp_path):
    data = tmp_path / "data"
    for run in ("first", "again", "other"):
        (tmp_path / run).mkdir()
    first = start_emulator(PACKAGE, tmp_path / "first", data_dir=data)
    try:
        api = first.sdk()
        api.project_environment_variables_create(PROJECT, variable("API_KEY", PROJECT_SECRET, secret=True))
        api.deployment_environment_variables_create(PROJECT, DEPLOYMENT, variable("LEVEL", "deployment"))
        api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1",
                                                            variable("VERSION_KEY", VERSION_SECRET, secret=True))
    finally:
        first.stop()
    catalog = data / "catalog.json"
    assert stat.S_IMODE(catalog.stat().st_mode) == 0o600, "the secrets' file is readable by its owner only"

    again = start_emulator(PACKAGE, tmp_path / "again", data_dir=data)
    try:
        assert seen(again.sdk(), "API_KEY", "LEVEL", "VERSION_KEY") == {
            "API_KEY": PROJECT_SECRET, "LEVEL": "deployment", "VERSION_KEY": VERSION_SECRET}
    finally:
        again.stop()

    other_version = start_emulator(PACKAGE, tmp_path / "other", "--version", "v2", data_dir=data)
    try:
        answer = other_version.sdk().deployment_version_requests_create(
            PROJECT, DEPLOYMENT, "v2", {"names": ["API_KEY", "LEVEL", "VERSION_KEY"]})
        assert answer.result["environ"] == {"API_KEY": PROJECT_SECRET, "LEVEL": "deployment", "VERSION_KEY": None}
        assert f"forgot {DEPLOYMENT}/v1, the --package version of an earlier start" in other_version.log()
    finally:
        other_version.stop()


def test_a_change_reaches_a_version_whose_spec_files_its_deployments_updated_fields_no_longer_match(tmp_path):
    """The spec files are checked at a build only (UbiOps ignores them). Before, they were checked at every
    restart: once the deployment's fields were updated, a variable created or rotated answered 201/200 but
    the instances kept the old values, and after a restart the version was unavailable."""
    data = tmp_path / "data"
    first = start_emulator(PACKAGE, tmp_path, data_dir=data)
    try:
        api = first.sdk()
        revision = upload_deployment(api, "respecified", tmp_path)
        ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "respecified", "v1", revision_id=revision, quiet=True)
        fields = [*json.loads((PACKAGES / PACKAGE / "ubiops_input_spec.json").read_text()), {"name": "note", "data_type": "string"}]
        api.deployments_update(PROJECT, "respecified", ubiops.DeploymentUpdate(input_fields=fields))
        created = api.deployment_version_environment_variables_create(PROJECT, "respecified", "v1",
                                                                      variable("API_KEY", PROJECT_SECRET, secret=True))
        assert seen_with_note(api, "respecified") == {"API_KEY": PROJECT_SECRET}
        api.deployment_version_environment_variables_update(PROJECT, "respecified", created.id, "v1",
                                                            variable("API_KEY", ROTATED_SECRET, secret=True))
        assert seen_with_note(api, "respecified") == {"API_KEY": ROTATED_SECRET}

        api.revisions_rebuild(PROJECT, "respecified", revision, "v1", {})
        with pytest.raises(StatusError, match="failed"):
            ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, "respecified", "v1", revision_id=revision,
                                                     quiet=True)
        failed = api.revisions_get(PROJECT, "respecified", revision, "v1")
        assert failed.error_message.startswith("ubiops_input_spec.json declares names (array_string) but the deployment's "
                                               "input fields are names (array_string), note (string)"), failed.error_message
        assert seen_with_note(api, "respecified") == {"API_KEY": ROTATED_SECRET}, "the last build serves on"
    finally:
        first.stop()
    again = start_emulator(PACKAGE, tmp_path, data_dir=data)
    try:
        assert seen_with_note(again.sdk(), "respecified") == {"API_KEY": ROTATED_SECRET}
        assert again.sdk().deployment_versions_get(PROJECT, "respecified", "v1").status == "available"
    finally:
        again.stop()


def seen_with_note(api: ubiops.CoreApi, deployment: str) -> dict[str, str | None]:
    """`seen` of API_KEY, for a deployment whose input fields have a `note` besides the package's `names`."""
    answer = api.deployment_version_requests_create(PROJECT, deployment, "v1", {"names": ["API_KEY"], "note": "x"})
    assert answer.status == "completed", answer.error_message
    assert answer.result["environ"] == answer.result["context"], answer.result
    return answer.result["environ"]


def test_a_variable_set_through_the_api_that_env_overrides_is_warned_at_the_call_and_at_start(tmp_path):
    """Before, the API took it and restarted the version, which went on seeing --env's value, silently."""
    data = tmp_path / "data"
    warning = (f"GREETING, set through the API on version v1 of deployment {DEPLOYMENT}, is not the value its versions "
               "see: --env or [tool.deployer] (environment_variables, secrets) sets GREETING for every version this "
               "emulator runs, over the API's")
    first = start_emulator(PACKAGE, tmp_path, "--env", "GREETING=FromEnv", data_dir=data)
    try:
        api = first.sdk()
        api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1", variable("GREETING", "FromApi"))
        assert seen(api, "GREETING") == {"GREETING": "FromEnv"}, "--env stays above the API, as README orders them"
        assert "FromApi" not in wait_for_log(first, warning)
    finally:
        first.stop()
    again = start_emulator(PACKAGE, tmp_path, "--env", "GREETING=FromEnv", data_dir=data)
    try:
        assert warning in again.log(), "a variable kept from the earlier run"
    finally:
        again.stop()


REVEALING = "revealing"
"""Prints the value of the variable a request names and fails with it; fails to start with FAIL_START_WITH's."""
PRINTED_SECRET, STARTING_SECRET, CONFIGURED_SECRET = "printed-secret-4d1c8a", "start-secret-93be02", "configured-secret-8a0f3c"
PLAIN_VALUE = "plain-value-5e2741"


@pytest.fixture(scope="module")
def revealing(tmp_path_factory) -> Emulator:
    """An emulator of its own serving `tests/packages/revealing`, as these tests set variables on it."""
    emulator = start_emulator(REVEALING, tmp_path_factory.mktemp("revealing"))
    yield emulator
    emulator.stop()


def printed(api: ubiops.CoreApi, request_id: str) -> list[str]:
    """The lines the deployment printed for `request_id` (stdout and stderr) as `logs_list` answers them,
    once its traceback's last line is in: what it prints reaches the logs beside the request's answer."""
    def lines() -> list[str] | None:
        texts = [line.log for line in api.logs_list(PROJECT, query=f'| deployment_request_id="{request_id}"')
                 if not line.metadata.system]
        return texts if any("Revealed: boom with " in text for text in texts) else None
    return eventually(lines, f"the traceback of request {request_id} in the logs")


def kept(emulator: launcher.Emulator) -> bytes:
    """Everything the emulator has shown on its console and kept in its data folder (its logs and request
    history), but the catalog, which keeps the secrets' values in clear for the instances' next start."""
    assert emulator.log_path is not None and emulator.data_dir is not None
    files = [path for path in sorted(emulator.data_dir.rglob("*")) if path.is_file() and path.name != "catalog.json"]
    assert any(path.name == "logs.sqlite3" for path in files), files
    return b"".join(path.read_bytes() for path in [emulator.log_path, *files])


def test_a_secret_the_deployment_prints_and_fails_with_is_masked_and_a_plain_value_is_not(revealing):
    """Before, a secret's value stood in clear in the deployment's lines (logs_list, the console, the log
    store) and in the error_message a failed request answers and keeps, direct or batch."""
    api = revealing.sdk()
    api.deployment_version_environment_variables_create(PROJECT, DEPLOYMENT, "v1",
                                                        variable("REVEALED", PRINTED_SECRET, secret=True))
    api.deployment_environment_variables_create(PROJECT, DEPLOYMENT, variable("PLAIN", PLAIN_VALUE))

    failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, "REVEALED")
    assert (failed.status, failed.error_message) == ("failed", "boom with ***")
    (batched,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=["REVEALED"])
    with pytest.raises(StatusError) as waited:
        wait_for_deployment_request(api.api_client, PROJECT, DEPLOYMENT, batched.id, timeout=60, quiet=True)
    assert str(waited.value) == "Deployment request: failed: boom with ***"
    assert api.deployment_requests_get(PROJECT, DEPLOYMENT, batched.id).error_message == "boom with ***"
    lines = printed(api, failed.id)
    assert "the value of REVEALED is ***" in lines and any(line.endswith("Revealed: boom with ***") for line in lines)

    plain = api.deployment_requests_create(PROJECT, DEPLOYMENT, "PLAIN")
    assert (plain.status, plain.error_message) == ("failed", f"boom with {PLAIN_VALUE}"), "not a secret: as is"
    assert f"the value of PLAIN is {PLAIN_VALUE}" in printed(api, plain.id)
    everything = kept(revealing)
    assert PLAIN_VALUE.encode() in everything and b"the value of REVEALED is ***" in everything
    assert PRINTED_SECRET.encode() not in everything


def test_a_secret_a_failed_start_names_is_masked_in_the_requests_it_fails_and_in_the_revision(revealing, tmp_path):
    """Before, `__init__`'s exception showed a secret's value in clear in the error_message of the requests
    that waited for the start (and in their history), in the revision's error_message (what `ubiops versions
    wait` prints), in the 503 answered to the requests after, and in the logs."""
    api = revealing.sdk()
    name, gate = "failing-start", tmp_path / "gate"
    api.deployments_create(PROJECT, {"name": name, "input_type": "plain", "output_type": "plain"})
    api.deployment_versions_create(PROJECT, name, ubiops.DeploymentVersionCreate(version="v1"))
    api.deployment_environment_variables_create(PROJECT, name, variable("START_GATE", str(gate)))
    package = tmp_path / f"{name}.zip"
    package.write_bytes(zip_bytes({"deployment_package/deployment.py": (PACKAGES / REVEALING / "deployment.py").read_bytes()}))
    gate.touch()
    first = api.revisions_file_upload(PROJECT, name, "v1", file=str(package)).revision
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, name, "v1", revision_id=first, quiet=True)

    gate.unlink()  # the restart's `__init__` waits, so a request is queued for it
    api.deployment_environment_variables_create(PROJECT, name, variable("FAIL_START_WITH", STARTING_SECRET, secret=True))
    wait_for_log(revealing, f"restarting {name}/v1")
    (waiting,) = api.batch_deployment_version_requests_create(PROJECT, name, "v1", data=["START_GATE"])
    gate.touch()
    with pytest.raises(StatusError) as waited:
        wait_for_deployment_version_request(api.api_client, PROJECT, name, "v1", waiting.id, timeout=60, quiet=True)
    assert "the deployment failed to start (RuntimeError: cannot start with ***)" in str(waited.value), waited.value
    kept_request = api.deployment_version_requests_get(PROJECT, name, waiting.id, "v1")
    assert "RuntimeError: cannot start with ***" in kept_request.error_message, kept_request.error_message

    second = api.revisions_file_upload(PROJECT, name, "v1", file=str(package)).revision
    failed = eventually(lambda: (found := api.revisions_get(PROJECT, name, second, "v1")).status == "failed" and found,
                        "the revision fails")
    assert "RuntimeError: cannot start with ***" in failed.error_message, failed.error_message
    with pytest.raises(ubiops.ApiException) as refused:
        api.deployment_version_requests_create(PROJECT, name, "v1", "START_GATE")
    assert refused.value.status == 503 and "RuntimeError: cannot start with ***" in str(refused.value), refused.value
    assert STARTING_SECRET.encode() not in kept(revealing)


def test_a_configured_secret_is_masked_as_the_apis_are(tmp_path):
    """A `[tool.deployer]` secret the shell holds reaches the emulator's own package as `--env` does, and is
    masked as a secret set through the API is (`deployer check` sets it as one)."""
    shutil.copytree(PACKAGES / REVEALING, tmp_path / "pkg")
    (tmp_path / "pyproject.toml").write_text('[tool.deployer]\npackage = "pkg"\nsecrets = ["API_KEY"]\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "UBIOPS_"))}
    emulator = launcher.start_emulator(tmp_path / "pkg", tmp_path, project=PROJECT, deployment=DEPLOYMENT, cwd=tmp_path,
                                       env={**environment, "PYTHONPATH": str(ROOT), "API_KEY": CONFIGURED_SECRET})
    try:
        answer = emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, "API_KEY")
        assert (answer.status, answer.error_message) == ("failed", "boom with ***")
        assert "the value of API_KEY is ***" in printed(emulator.sdk(), answer.id)
        assert CONFIGURED_SECRET.encode() not in kept(emulator)
    finally:
        emulator.stop()
