"""`[tool.deployer]` environment variables end to end: plain values from the config and a secret read
from the local environment, given to the emulated version by `check` and set on UbiOps (an emulator
playing it) by `push`, on the version or the deployment; the secret never printed, logged or zipped,
and a missing one stopping everything before it starts."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest
from conftest import TOKEN, proxied
from harness import PROJECT

SECRET_NAME = "DEPLOYER_TEST_SECRET"
SECRET = "deployer-secret-value-3c9d1e"
WITH_SECRET = {SECRET_NAME: SECRET}

READS_ITS_VARIABLES = f'''
import hashlib
import os


class Deployment:
    def __init__(self, base_directory, context):
        secret = os.environ["{SECRET_NAME}"]
        if hashlib.sha256(secret.encode()).hexdigest() != "{hashlib.sha256(SECRET.encode()).hexdigest()}":
            raise RuntimeError("{SECRET_NAME} is not the secret the test exported")
        self.factor = int(context["environment_variables"]["FACTOR"])

    def request(self, data):
        return {{"y": data["x"] * self.factor}}
'''


@pytest.fixture
def configured(project):
    """The project, whose package starts only with the secret and multiplies by FACTOR (2)."""
    (project.package / "deployment.py").write_text(READS_ITS_VARIABLES)
    project.configure(environment_variables={"FACTOR": "2"}, secrets=[SECRET_NAME])
    return project


def own_variables(api, deployment: str, version: str | None = None) -> set[tuple]:
    listed = (api.deployment_version_environment_variables_list(PROJECT, deployment, version) if version else
              api.deployment_environment_variables_list(PROJECT, deployment))
    return {(v.name, v.value, v.secret) for v in listed if v.inheritance_type is None}


def test_check_gives_the_variables_to_the_emulated_version(configured):
    result = configured.run("check", env=WITH_SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   environment variables: FACTOR, {SECRET_NAME} (secret) set on the emulated version" in result.stdout
    assert "ok   emulator tests: emulator answered {'y': 42}" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_push_ships_the_variables_and_the_secret_from_the_environment(configured, remote_ubiops):
    result = configured.run("--output", "json", "push", emulator=remote_ubiops, env=WITH_SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["environment_variables"] == [
        {"name": "FACTOR", "secret": False, "level": "version", "action": "create"},
        {"name": SECRET_NAME, "secret": True, "level": "version", "action": "create"}]
    assert summary["smoke"] == {"status": "completed", "error_message": None, "differences": []}
    api = remote_ubiops.sdk()
    assert own_variables(api, configured.deployment, "v1") == {("FACTOR", "2", False), (SECRET_NAME, None, True)}
    assert api.deployment_version_requests_create(PROJECT, configured.deployment, "v1", {"x": 5}).result == {"y": 10}

    text = configured.run("push", "--skip-tests", emulator=remote_ubiops, env=WITH_SECRET)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "FACTOR: set on version v2" in text.stdout
    assert f"{SECRET_NAME} (secret, from the local environment): set on version v2" in text.stdout
    for output in (result.stdout, result.stderr, text.stdout, text.stderr, remote_ubiops.log()):
        assert SECRET not in output
    for package in (configured.root / "dist").glob("*.zip"):
        assert SECRET.encode() not in package.read_bytes()


def test_dry_run_shows_the_variables_with_the_secret_masked(configured, remote_ubiops):
    result = configured.run("push", "--dry-run", "--skip-tests", emulator=remote_ubiops, env=WITH_SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    call = (f"would  deployment_version_environment_variables_create(project_name='{PROJECT}', "
            f"deployment_name='{configured.deployment}', version='v1', data=")
    assert call + "{'name': 'FACTOR', 'value': '2', 'secret': False})" in result.stdout
    assert call + f"{{'name': '{SECRET_NAME}', 'value': '***', 'secret': True}})" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["check", "push"])
@pytest.mark.parametrize("environment", [{}, {SECRET_NAME: ""}], ids=["unset", "empty"])
def test_a_missing_secret_stops_before_anything_is_built_or_uploaded(configured, remote_ubiops, command, environment):
    result = configured.run(command, emulator=remote_ubiops, env=environment)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == (f"deployer: error: {SECRET_NAME} (named in [tool.deployer] secrets) not set in the "
                                     "local environment: export it before running the deployer")
    assert not (configured.root / "dist").exists()
    assert configured.deployment not in [d.name for d in remote_ubiops.sdk().deployments_list(PROJECT)]


def test_deployment_level_variables_are_updated_in_place_and_restart_its_versions(configured, remote_ubiops):
    def push(factor: str) -> list[dict]:
        configured.configure(environment_variables={"FACTOR": factor}, secrets=[SECRET_NAME],
                             environment_variables_level="deployment")
        return configured.push_json("--skip-tests", emulator=remote_ubiops, env=WITH_SECRET)["environment_variables"]

    assert [v["action"] for v in push("2")] == ["create", "create"]
    assert [v["action"] for v in push("3")] == ["update", "update"]
    assert [(v["name"], v["action"]) for v in push("3")] == [("FACTOR", "unchanged"), (SECRET_NAME, "update")]
    api = remote_ubiops.sdk()
    assert own_variables(api, configured.deployment) == {("FACTOR", "3", False), (SECRET_NAME, None, True)}
    assert own_variables(api, configured.deployment, "v1") == set()
    answer = api.deployment_version_requests_create(PROJECT, configured.deployment, "v1", {"x": 5})
    assert answer.result == {"y": 15}, "v1 was restarted with the deployment's new FACTOR"


@pytest.mark.parametrize("command", ["check", "package"])
def test_a_secret_no_environment_can_hold_is_refused_in_one_line(configured, command):
    """A secret's value comes from the shell: one holding a byte that is not UTF-8 (a lone surrogate to
    Python) ended the deployer with a UnicodeEncodeError traceback."""
    configured.configure(environment_variables={"FACTOR": "2"}, secrets=[SECRET_NAME])
    result = configured.run(command, env={SECRET_NAME: os.fsdecode(b"not-utf8-\xff-secret")})
    assert (result.returncode, result.stderr.strip()) == (1, f"deployer: error: {SECRET_NAME} (named in [tool.deployer] "
                                                              "secrets) holds a lone surrogate, which is not text: export "
                                                              "it as UTF-8 text")


def test_a_configured_value_no_environment_can_hold_is_refused_with_the_config(configured):
    configured.configure(environment_variables={"FACTOR": "2", "BROKEN": "a\u0000b"}, secrets=[SECRET_NAME])
    result = configured.run("check", env=WITH_SECRET)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("pyproject.toml: [tool.deployer] environment_variables has BROKEN, whose "
                                          "value holds a NUL character, which no environment variable can")


@pytest.mark.parametrize("command", ["check", "push"])
def test_variables_too_large_together_stop_before_anything_is_built_or_uploaded(configured, remote_ubiops, command):
    """Each fits on its own, so the emulated version (or UbiOps) took some, then refused the rest."""
    configured.configure(environment_variables={"FACTOR": "2", **{f"BIG_{n}": "x" * 60_000 for n in range(18)}},
                         secrets=[SECRET_NAME])
    result = configured.run(command, emulator=remote_ubiops, env=WITH_SECRET)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip().startswith("deployer: error: [tool.deployer] environment_variables and secrets come to ")
    assert result.stderr.strip().endswith(" bytes together, more than the 1048576 (1 MiB) an instance's environment may hold")
    assert not (configured.root / "dist").exists()


def test_the_packages_ubiops_yaml_variables_count_in_the_bound(configured, remote_ubiops):
    """The instance gets them beneath the configured ones: the emulated version refused the configured
    ones past the bound halfway through the check, UbiOps' start would fail."""
    (configured.package / "ubiops.yaml").write_text("environment_variables:\n" + "".join(
        f"  - YAML_{n}={'y' * 60_000}\n" for n in range(10)))
    configured.configure(environment_variables={"FACTOR": "2", **{f"BIG_{n}": "x" * 60_000 for n in range(8)}},
                         secrets=[SECRET_NAME])
    result = configured.run("check", emulator=remote_ubiops, env=WITH_SECRET)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip().startswith("deployer: error: [tool.deployer] environment_variables and secrets, "
                                            "with ubiops.yaml's, come to ")
    assert not (configured.root / "dist").exists()


def test_a_file_holding_a_secrets_value_is_refused(configured):
    (configured.package / "settings.py").write_text(f"PASSWORD = '{SECRET}'\n")
    result = configured.run("package", env=WITH_SECRET)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"deployer: error: settings.py contains the value of {SECRET_NAME}; "
                                     "remove it or list the file in .ubiops-ignore")
    assert SECRET not in result.stdout + result.stderr


def unmasking(emulator):
    """A proxy in front of `emulator` playing a UbiOps that does not mask secrets in what it answers (the
    emulator masks them itself): every `***` in an answer becomes the secret again."""
    def answer(_call, forward):
        found = forward()
        return httpx.Response(found.status_code, headers=found.headers, content=found.content.replace(b"***", SECRET.encode()))

    return proxied(emulator, answer)


def test_a_secret_quoted_by_a_failed_build_or_request_is_masked(configured, remote_ubiops):
    """The smoke request's error, `request`'s and the build's (a failed `__init__`) were shown as UbiOps
    gave them, the secret's value in clear."""
    (configured.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "y", "data_type": "file"}]))
    (configured.package / "deployment.py").write_text(  # an output file that is not there: its path is quoted
        f"import os\n\nclass Deployment:\n    def request(self, data):\n        return {{'y': '/none/' + os.environ['{SECRET_NAME}']}}\n")
    with unmasking(remote_ubiops) as api:
        env = {**WITH_SECRET, "UBIOPS_API_HOST": api}
        smoke = configured.run("--output", "json", "push", "--skip-tests", env=env)
        assert smoke.returncode == 1, smoke.stdout + smoke.stderr
        error = json.loads(smoke.stdout)["smoke"]["error_message"]
        assert error.endswith("no file at '/none/***'") and f"smoke request FAILED: {error}" in smoke.stderr
        asked = configured.run("--output", "json", "request", "--version", "v1", env=env)
        assert asked.returncode == 1 and json.loads(asked.stdout)["error_message"] == error
        (configured.package / "deployment.py").write_text(
            f"import os\n\nclass Deployment:\n    def __init__(self):\n        raise RuntimeError('key ' + os.environ['{SECRET_NAME}'])\n"
            "    def request(self, data):\n        return data\n")
        built = configured.run("push", "--skip-tests", env=env)
        assert built.returncode == 1, built.stdout + built.stderr
        assert "RuntimeError: key ***" in built.stderr
        unmasked = httpx.post(f"{api}/projects/{PROJECT}/deployments/{configured.deployment}/versions/v1/"
                              "requests", json={"x": 1}, headers={"Authorization": f"Token {TOKEN}"}).json()
    assert SECRET in unmasked["error_message"], "the proxy shows what the emulator masked"
    for output in (smoke.stdout, smoke.stderr, asked.stdout, asked.stderr, built.stdout, built.stderr):
        assert SECRET not in output
