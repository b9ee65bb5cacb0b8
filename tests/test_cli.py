"""The official UbiOps CLI (`ubiops`, the `test` extra's ubiops-cli pin) against a real emulator, run as
a user runs it: sign in with a token, pick the project, create a deployment from a yaml file, deploy a
package folder, wait for its build, send requests and move files.

Where the CLI writes: its sign-in (API host, token, current project) goes to `.config` beside its own
code (`ubiops_cli/utils.py`, `Config.config_file = dirname(__file__)/.config`; no variable moves it),
and `deployments deploy` writes its zip into the working directory before uploading it. So these tests
run a byte-for-byte copy of the installed `ubiops_cli` package from a temp folder, first on
PYTHONPATH, with HOME and the working directory in temp folders too: the installed package, shared by
every checkout that uses the venv, is never written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import ubiops
import yaml
from harness import DEPLOYMENT, PACKAGES, PROJECT, ROOT, Emulator, eventually, start_emulator
from ubiops.utils import wait_for_deployment_request

from contract.config import load_config
from contract.package import read_package
from emulator import launcher

TOKEN = "cli-test-token"
INSTALLED_CLI = Path(importlib.util.find_spec("ubiops_cli").origin).parent
UBIOPS = Path(sys.executable).with_name("ubiops")
README_ADDRESS = "http://127.0.0.1:8000"
DOUBLER = "class Deployment:\n    def request(self, data):\n        return {'y': data['x'] * %d}\n"


@dataclass
class Cli:
    """The `ubiops` command, with its code, config, HOME and working directory under `root`."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "lib" / "ubiops_cli" / ".config"

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @classmethod
    def installed_copy(cls, root: Path) -> Cli:
        """A copy of the installed CLI, not yet signed in."""
        cli = cls(root)
        shutil.copytree(INSTALLED_CLI, root / "lib" / "ubiops_cli", ignore=shutil.ignore_patterns("__pycache__", ".config"))
        (root / "home").mkdir()
        cli.workdir.mkdir()
        return cli

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("UBIOPS_")}
        env.update(HOME=str(self.root / "home"), PYTHONPATH=str(self.root / "lib"))
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([UBIOPS, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=600)

    def __call__(self, *args: str) -> str:
        """Run a command that must succeed; its standard output."""
        run = self.run(*args)
        assert run.returncode == 0, f"ubiops {' '.join(args)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
        return run.stdout

    def fails(self, *args: str) -> str:
        """Run a command that must fail; what it printed (the CLI prints its errors on stdout)."""
        run = self.run(*args)
        assert run.returncode == 1, f"ubiops {' '.join(args)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
        return run.stdout + run.stderr


def installed_config() -> bytes | None:
    path = INSTALLED_CLI / ".config"
    return path.read_bytes() if path.exists() else None


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    """An emulator of its own, with a token: these tests add deployments other modules must not see."""
    emulator = start_emulator("plain", tmp_path_factory.mktemp("cli-emulator"), token=TOKEN)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def cli(emulator, tmp_path_factory) -> Iterator[Cli]:
    """The CLI signed in to `emulator` with the project chosen, as a user starts; the installed
    package's `.config` is the same afterwards as before."""
    before = installed_config()
    cli = Cli.installed_copy(tmp_path_factory.mktemp("cli"))
    cli("signin", "--token", "-p", f"Token {TOKEN}", "--api", emulator.api)
    cli("current_project", "set", PROJECT)
    yield cli
    assert installed_config() == before


def create_deployment(cli: Cli, folder: Path, name: str, inputs: list[dict], outputs: list[dict]) -> None:
    yaml_file = folder / f"{name}.yaml"
    yaml_file.write_text(yaml.safe_dump({
        "deployment_name": name, "deployment_description": "Created by the UbiOps CLI",
        "input_type": "structured" if inputs else "plain", "input_fields": inputs,
        "output_type": "structured" if outputs else "plain", "output_fields": outputs,
    }, sort_keys=False))
    assert name in cli("deployments", "create", "-f", str(yaml_file))


def deploy(cli: Cli, name: str, package: Path, *extra: str) -> None:
    """`ubiops deployments deploy`, then `ubiops deployment_versions wait` for its build, as a user does."""
    assert "Deployment was successfully deployed" in cli("deployments", "deploy", name, "-v", "v1", "-dir", str(package),
                                                         "-e", "python3-11", "-y", *extra)
    waited = cli("deployment_versions", "wait", "v1", "-d", name, "-t", "300")
    assert "Deployment revision: success" in waited and "Deployment version: available" in waited


def test_signin_keeps_the_host_and_token_in_the_copy_and_picks_the_project(cli, emulator):
    signin = cli("signin", "--token", "-p", f"Token {TOKEN}", "--api", emulator.api)
    assert "Welcome to UbiOps!" in signin and f"Selected project: {PROJECT}" in signin
    assert cli("current_project", "get").strip() == f"*  {PROJECT}"
    config = cli.config_file.read_text()
    assert f"api = {emulator.api}" in config and f"service_token = Token {TOKEN}" in config
    assert cli("status").splitlines()[:1] == ["Authorized"]


def test_signin_with_a_wrong_token_is_refused_and_keeps_the_previous_one(cli, emulator):
    output = cli.fails("signin", "--token", "-p", "Token not-the-token", "--api", emulator.api)
    assert "Could not authorize: Unauthorized (401)" in output and "not-the-token" not in output
    assert f"service_token = Token {TOKEN}" in cli.config_file.read_text()


def test_deploy_a_package_folder_request_it_and_redeploy(cli, emulator, tmp_path):
    package = tmp_path / "doubler"
    package.mkdir()
    (package / "deployment.py").write_text(DOUBLER % 2)
    create_deployment(cli, tmp_path, "doubler", [{"name": "x", "data_type": "int"}], [{"name": "y", "data_type": "int"}])
    deploy(cli, "doubler", package)
    version = emulator.sdk().deployment_versions_get(PROJECT, "doubler", "v1")
    assert (version.environment_name, version.status, version.default) == ("python3-11", "available", True)

    answer = cli("deployments", "requests", "create", "doubler", "--data", '{"x": 21}')
    assert "Status: completed" in answer and 'Result: [{"y": 42}]' in answer
    (response,) = json.loads(cli("deployments", "requests", "create", "doubler", "--data", '{"x": 5}', "-fmt", "json"))
    assert (response["status"], response["result"], response["version"]) == ("completed", [{"y": 10}], "v1")

    (package / "deployment.py").write_text(DOUBLER % 3)
    deploy(cli, "doubler", package, "--overwrite")
    assert 'Result: [{"y": 63}]' in cli("deployments", "requests", "create", "doubler", "--data", '{"x": 21}')
    assert [r.status for r in emulator.sdk().revisions_list(PROJECT, "doubler", "v1")] == ["success", "success"]
    assert list(cli.workdir.iterdir()) == []


PYTHON = "import sys\n\nclass Deployment:\n    def request(self, data):\n        return 'Python %d.%d' % sys.version_info[:2]\n"


def test_a_new_environment_rebuilds_the_version_and_the_wait_waits_for_it(cli, tmp_path):
    """`versions update -e` answered, and `versions wait` ended at once, but the version's requests ran
    on in the Python it was built on until a new upload."""
    package = tmp_path / "python"
    package.mkdir()
    (package / "deployment.py").write_text(PYTHON)
    create_deployment(cli, tmp_path, "python", [], [])
    deploy(cli, "python", package)
    assert 'Result: "Python 3.11"' in cli("deployments", "requests", "create", "python", "--data", "which")
    cli("versions", "update", "v1", "-d", "python", "-e", "python3-12")
    waited = cli("versions", "wait", "v1", "-d", "python", "-t", "300")
    assert "Deployment revision: success" in waited and "Deployment version: available" in waited
    assert 'Result: "Python 3.12"' in cli("deployments", "requests", "create", "python", "--data", "which")


def test_waiting_for_the_package_version(cli):
    """Before, the `--package` version had no revision: the wait printed "Status: failed" and exited 0."""
    waited = cli("deployment_versions", "wait", "v1", "-d", DEPLOYMENT)
    assert "Deployment revision: success" in waited and "Deployment version: available" in waited


@pytest.fixture(scope="module")
def unbuilt_version(cli) -> str:
    """A version of the served deployment that has no package yet."""
    cli("deployment_versions", "create", "empty", "-d", DEPLOYMENT)
    return "empty"


@pytest.mark.parametrize("args, message", [
    (("-v", "empty"), "Version empty has no deployment package yet: upload one and wait for its build"),
    (("-t", "5"), "query timeout: Input should be greater than or equal to 10"),
])
def test_a_refused_request_prints_its_reason(cli, unbuilt_version, args, message):
    """Regression: the CLI's requests go through the stream endpoint, whose reader looks only for
    `error_message`; every refused call used to print "Invalid value for `id`, must not be `None`"."""
    output = cli.fails("deployments", "requests", "create", DEPLOYMENT, *args, "--data", "hello")
    assert f"Error: Request failed with error message: {message}" in output


HELD = """import os, time


class Deployment:
    def __init__(self):
        while not os.path.exists({gate!r}):
            time.sleep(0.05)

    def request(self, data):
        return "held: " + data
"""


def deploy_held(cli: Cli, emulator: Emulator, folder: Path, deployment: str, version: str) -> Path:
    """`ubiops deployments deploy` a package whose `__init__` waits for a gate file, so that its build stays
    `deploying` until the gate (returned) is made."""
    gate, package = folder / f"{version}-gate", folder / version
    package.mkdir()
    (package / "deployment.py").write_text(HELD.format(gate=str(gate)))
    cli("deployments", "deploy", deployment, "-v", version, "-dir", str(package), "-e", "python3-11", "-y")
    api = emulator.sdk()
    eventually(lambda: [r.status for r in api.revisions_list(PROJECT, deployment, version)] == ["deploying"],
               f"{version}'s build runs its __init__")
    return gate


def test_a_request_to_a_version_whose_build_still_runs_says_so(cli, emulator, tmp_path):
    """Before, it said "Version held has no deployment package yet: upload one and wait for its build",
    although one was uploaded and was being built."""
    create_deployment(cli, tmp_path, "first-build", [], [])
    gate = deploy_held(cli, emulator, tmp_path, "first-build", "held")
    message = ("Version held is not built yet: its build is still running (revision status: deploying); wait for it "
               "(`ubiops versions wait`, or ubiops.utils.wait_for_deployment_version)")
    direct = cli.fails("deployments", "requests", "create", "first-build", "-v", "held", "--data", "hi")
    assert f"Error: Request failed with error message: {message}" in direct
    with pytest.raises(ubiops.ApiException) as batch:
        emulator.sdk().batch_deployment_version_requests_create(PROJECT, "first-build", "held", data=["hi"])
    assert (batch.value.status, json.loads(batch.value.body)["error"]) == (503, message)
    gate.touch()
    cli("deployment_versions", "wait", "held", "-d", "first-build")
    assert 'Result: "held: hi"' in cli("deployments", "requests", "create", "first-build", "--data", "hi")


def test_only_a_built_and_available_version_can_be_made_the_default(cli, emulator, tmp_path):
    """UbiOps' docs: "Only versions that have passed the building stage and are available can be marked
    default". Before, `ubiops deployments update --default_version` took any version: one without a
    package, whose build failed or was still running became the default, and every request without a
    version then failed."""
    create_deployment(cli, tmp_path, "promoted", [], [])
    first = tmp_path / "first"
    first.mkdir()
    (first / "deployment.py").write_text("class Deployment:\n    def request(self, data):\n        return 'v1: ' + data\n")
    deploy(cli, "promoted", first)

    def refused(version: str) -> str:
        output = cli.fails("deployments", "update", "promoted", "--default_version", version)
        assert json.loads(cli("deployments", "get", "promoted", "-fmt", "json"))["default_version"] == "v1"
        return output

    refusal = ("Error (400): default_version: only a version that has passed its build and is available can be the "
               "default, and version '{}' of deployment 'promoted' is not: ")
    cli("deployment_versions", "create", "empty", "-d", "promoted")
    assert refusal.format("empty") + "Version empty has no deployment package yet" in refused("empty")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "deployment.py").write_text("class Deployment:\n    def __init__(self):\n        raise RuntimeError('no model')\n")
    cli("deployments", "deploy", "promoted", "-v", "broken", "-dir", str(broken), "-e", "python3-11", "-y")
    assert "Deployment revision: failed" in cli("deployment_versions", "wait", "broken", "-d", "promoted")
    assert refusal.format("broken") + "Version broken's build failed: " in refused("broken")

    gate = deploy_held(cli, emulator, tmp_path, "promoted", "held")
    assert refusal.format("held") + ("it is still building (revision status: deploying); wait for its build "
                                     "(`ubiops versions wait`") in refused("held")
    assert 'Result: "v1: hi"' in cli("deployments", "requests", "create", "promoted", "--data", "hi")

    gate.touch()
    cli("deployment_versions", "wait", "held", "-d", "promoted")
    assert "Deployment was successfully updated" in cli("deployments", "update", "promoted", "--default_version", "held")
    assert 'Result: "held: hi"' in cli("deployments", "requests", "create", "promoted", "--data", "hi")


def test_updating_a_deployments_fields_keeps_its_types(cli, tmp_path):
    """An update names no `input_type`/`output_type`. Before, `input_fields: []` turned a structured input
    plain, and output fields turned a plain output structured, where a create of either is refused."""
    create_deployment(cli, tmp_path, "typed", [{"name": "x", "data_type": "int"}], [])

    def update(**fields: list) -> str:
        (tmp_path / "update.yaml").write_text(yaml.safe_dump(fields))
        return cli.fails("deployments", "update", "typed", "-f", str(tmp_path / "update.yaml"))

    assert "Error (400): input_fields must list at least one field when input_type is structured" in update(input_fields=[])
    assert "Error (400): output_fields must be empty when output_type is plain" in update(
        output_fields=[{"name": "y", "data_type": "int"}])
    shown = json.loads(cli("deployments", "get", "typed", "-fmt", "json"))
    assert (shown["input_type"], shown["input_fields"], shown["output_type"]) == (
        "structured", [{"name": "x", "data_type": "int", "widget": None}], "plain")
    (tmp_path / "update.yaml").write_text(yaml.safe_dump({"input_fields": [{"name": "z", "data_type": "string"}]}))
    assert "Deployment was successfully updated" in cli("deployments", "update", "typed", "-f", str(tmp_path / "update.yaml"))
    assert json.loads(cli("deployments", "get", "typed", "-fmt", "json"))["input_fields"][0]["name"] == "z"


def test_deploying_without_a_package_folder_says_that_empty_revisions_are_not_served(cli):
    """`ubiops deployments deploy` without `-dir` uploads an empty revision (the code in a custom image);
    the emulator said only "upload the deployment package as the multipart part 'file'", then only to run
    it again with -dir, which the version the CLI had made refused (409) without --overwrite."""
    output = cli.fails("deployments", "deploy", DEPLOYMENT, "-v", "no-code", "-e", "python3-11", "-y")
    try:
        assert "Error (400): file: empty revisions (no code, as for a custom image) are not served by the emulator; " \
               "a deployment package is needed" in output
        assert "(ubiops deployments deploy again with -dir, and with --overwrite, as the version it made stays)" in output
        assert "Error (409): A version named 'no-code' already exists" in cli.fails(
            "deployments", "deploy", DEPLOYMENT, "-v", "no-code", "-dir", str(PACKAGES / "plain"), "-e", "python3-11", "-y")
        cli("deployments", "deploy", DEPLOYMENT, "-v", "no-code", "-dir", str(PACKAGES / "plain"), "-e", "python3-11", "-y",
            "--overwrite")
        assert "Deployment revision: success" in cli("deployment_versions", "wait", "no-code", "-d", DEPLOYMENT)
    finally:
        cli("deployment_versions", "delete", "no-code", "-d", DEPLOYMENT, "-y")


def test_a_version_created_without_a_group_exports_ubiops_default_group(cli, unbuilt_version, tmp_path):
    """Before, it reported "emulator (this machine)", which `versions get -o` wrote into a yaml that UbiOps
    would refuse to create a version from (no group is named so)."""
    cli("deployment_versions", "get", unbuilt_version, "-d", DEPLOYMENT, "-o", str(tmp_path / "version.yaml"))
    exported = yaml.safe_load((tmp_path / "version.yaml").read_text())
    assert exported["instance_type_group_name"] == "512 MB + 0.125 vCPU"


def test_a_versions_retention_time_and_queue_size_are_set_and_shown_out_of_range_ones_refused(cli):
    created = json.loads(cli("deployment_versions", "create", "retained", "-d", DEPLOYMENT, "--request_retention_time",
                             "3600", "--maximum_queue_size", "3", "-fmt", "json"))
    assert (created["request_retention_time"], created["maximum_queue_size"]) == (3600, 3)
    output = cli.fails("deployment_versions", "create", "too-long", "-d", DEPLOYMENT, "--request_retention_time", "2419201")
    assert "body request_retention_time: Input should be less than or equal to 2419200" in output


def test_a_plain_request(cli):
    answer = cli("deployments", "requests", "create", DEPLOYMENT, "--data", "hello there")
    assert "Status: completed" in answer and 'Result: "HELLO THERE"' in answer


def test_a_requests_input_and_output_saved_in_a_folder(cli, emulator, tmp_path):
    """`-o DIR` saves them in DIR under the name the answer gives, `<id>_input.json` and `<id>_output.json`
    as the CLI names them when it has none (plain text too): without one, the SDK's name was None, and
    the CLI crashed joining it to DIR."""
    (created,) = json.loads(cli("deployments", "requests", "create", DEPLOYMENT, "--batch", "--data", "hi folder",
                                "-fmt", "json"))  # a batch request's input and output are always kept
    wait_for_deployment_request(emulator.sdk().api_client, PROJECT, DEPLOYMENT, created["id"], timeout=60)
    for data_type, text in (("input", "hi folder"), ("output", "HI FOLDER")):
        cli("deployments", "requests", data_type, DEPLOYMENT, "-id", created["id"], "-o", str(tmp_path))
        assert (tmp_path / f"{created['id']}_{data_type}.json").read_text() == text
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"{created['id']}_input.json", f"{created['id']}_output.json"]


def test_this_repositorys_package_with_its_sample_input(cli, tmp_path):
    """The package `[tool.deployer]` names, deployed and called only through the CLI with its
    `sample_input`: file inputs uploaded with `ubiops files upload`, file outputs downloaded."""
    config = load_config(ROOT)
    package = read_package(config.package_path)
    create_deployment(cli, tmp_path, "own-package", package.input_spec.to_api(), package.output_spec.to_api())
    deploy(cli, "own-package", package.directory)
    data = dict(config.sample_input)
    for field in package.input_spec.fields:
        if field.data_type == "file":
            path = config.root / data[field.name]
            data[field.name] = cli("files", "upload", "-f", str(path), f"samples/{path.name}").strip()
            assert data[field.name] == f"ubiops-file://default/samples/{path.name}"
    answer = cli("deployments", "requests", "create", "own-package", "--data", json.dumps(data), "-fmt", "json")
    (response,) = json.loads(answer)
    assert response["status"] == "completed", response["error_message"]
    (result,) = response["result"]
    for field in package.output_spec.fields:
        if field.data_type == "file" and result[field.name]:
            download = tmp_path / field.name
            assert "File stored in" in cli("files", "download", "-u", result[field.name], "-o", str(download))
            assert download.stat().st_size > 0


PROJECT_SECRET, VERSION_SECRET, ROTATED_SECRET = "cli-project-secret-41d7", "cli-version-secret-9e02", "cli-rotated-8a6c"
ROTATED_AGAIN, UPDATED_SECRET = "cli-rotated-again-3f5b", "cli-updated-secret-d81e"
SECRETS = (PROJECT_SECRET, VERSION_SECRET, ROTATED_SECRET, ROTATED_AGAIN, UPDATED_SECRET)


def test_environment_variables_a_project_secret_overridden_by_the_version(cli, emulator, tmp_path):
    """`ubiops environment_variables` (alias `env`) at project and version level: the version's secret
    wins in the instance, and no command prints a secret (only the deployment's own answer holds it,
    as this test package answers the variables it is asked for)."""
    package = PACKAGES / "environment"
    create_deployment(cli, tmp_path, "environment", json.loads((package / "ubiops_input_spec.json").read_text()),
                      json.loads((package / "ubiops_output_spec.json").read_text()))
    deploy(cli, "environment", package)
    version = ("-d", "environment", "-v", "v1")
    printed = [cli("environment_variables", "create", "CLI_KEY", "--value", PROJECT_SECRET, "--secret"),
               cli("env", "create", "CLI_KEY", "--value", VERSION_SECRET, "--secret", *version),
               cli("env", "create", "CLI_PLAIN", "--value", "plain value", "-d", "environment")]

    def instance_has() -> dict:
        (answer,) = json.loads(cli("deployments", "requests", "create", "environment", "--data",
                                   json.dumps({"names": ["CLI_KEY", "CLI_PLAIN"]}), "-fmt", "json"))
        return answer["result"][0]["environ"]

    assert instance_has() == {"CLI_KEY": VERSION_SECRET, "CLI_PLAIN": "plain value"}
    listed = cli("env", "list", *version, "-fmt", "json")
    assert sorted((v["name"], v["value"], v["secret"], v["inheritance_type"]) for v in json.loads(listed)) == [
        ("CLI_KEY", None, True, None), ("CLI_PLAIN", "plain value", False, "deployment")]
    printed += [listed, cli("env", "list"), cli("env", "list", *version), cli("env", "get", "CLI_KEY", *version)]

    printed.append(cli("env", "create", "CLI_KEY", "--value", ROTATED_SECRET, "--secret", "--overwrite", *version))
    assert instance_has()["CLI_KEY"] == ROTATED_SECRET, "--overwrite found the variable by name and updated it"
    # Without --secret the CLI sends `secret: false`: the secret is rotated and stays one (before: a 400).
    printed.append(cli("env", "create", "CLI_KEY", "--value", ROTATED_AGAIN, "--overwrite", *version))
    assert instance_has()["CLI_KEY"] == ROTATED_AGAIN
    printed.append(cli("env", "update", "CLI_KEY", "--value", UPDATED_SECRET, *version))
    assert instance_has()["CLI_KEY"] == UPDATED_SECRET
    listed = cli("env", "list", *version, "-fmt", "json")
    assert [(v["value"], v["secret"]) for v in json.loads(listed) if v["name"] == "CLI_KEY"] == [(None, True)]
    printed.append(listed)
    printed.append(cli("env", "copy", "-fd", "environment", "-fv", "v1", "-td", "environment", "-y"))
    assert {v["name"] for v in json.loads(cli("env", "list", "-d", "environment", "-fmt", "json"))
            if v["inheritance_type"] is None} == {"CLI_KEY", "CLI_PLAIN"}
    printed.append(cli("env", "delete", "CLI_KEY", *version, "-y"))
    printed.append(cli("env", "delete", "CLI_KEY", "-d", "environment", "-y"))
    assert instance_has()["CLI_KEY"] == PROJECT_SECRET, "without the version's own, the project's"
    printed.append(cli("env", "update", "CLI_PLAIN", "--value", "changed", "-d", "environment"))
    assert instance_has()["CLI_PLAIN"] == "changed"

    refused = [cli.fails("env", "create", "CLI_PLAIN", "--value", "again", "-d", "environment"),
               cli.fails("env", "create", "9LIVES", "--value", PROJECT_SECRET, "--secret"),
               cli.fails("env", "get", "NO_SUCH_VARIABLE", *version)]
    assert "Error (409): An environment variable named 'CLI_PLAIN' already exists for deployment environment" in refused[0]
    assert "Error (400): name: '9LIVES' is not an environment variable name" in refused[1]
    assert "Make sure you provided the right environment variable ID" in refused[2]
    assert "Error (404): Environment variable not found" in refused[2]
    printed.append(cli("env", "delete", "CLI_KEY", "-y"))
    for output in [*printed, *refused, emulator.log()]:
        assert not any(secret in output for secret in SECRETS), output


@pytest.mark.parametrize("name, deployment_file", [("renamed", "serve.py"), ("renamed-module", "serve")])
def test_deploy_with_another_deployment_file(cli, tmp_path, name, deployment_file):
    """`ubiops deployments deploy --deployment_file` sets SYS_DEPLOYMENT_FILE_NAME on the version through
    the environment-variable calls, and the build loads that file; a name without `.py` is the module's, as
    the CLI's own default `deployment` is (before, the build failed: "the package has no serve")."""
    package = tmp_path / name
    package.mkdir()
    (package / "serve.py").write_text(DOUBLER % 5)
    create_deployment(cli, tmp_path, name, [{"name": "x", "data_type": "int"}], [{"name": "y", "data_type": "int"}])
    deploy(cli, name, package, "--deployment_file", deployment_file)
    assert 'Result: [{"y": 10}]' in cli("deployments", "requests", "create", name, "--data", '{"x": 2}')
    listed = json.loads(cli("env", "list", "-d", name, "-v", "v1", "-fmt", "json"))
    assert [(v["name"], v["value"]) for v in listed if v["inheritance_type"] is None] == [
        ("SYS_DEPLOYMENT_FILE_NAME", deployment_file)]


@pytest.mark.face_profile
def test_the_readme_cli_sample_runs_as_written(tmp_path):
    """The README's CLI lines (its blocks in order), pasted into a shell in a folder holding the package,
    with `$MY_API_KEY` set, against an emulator serving it as `make serve` does (no token) on a free
    port instead of 8000: the request's lines are in `logs`, its instance in `instances list`, and the
    secret's value is never shown (its VALUE column empty, as the README says)."""
    config = load_config(ROOT)
    served = launcher.start_emulator(config.package_path, tmp_path, project=config.project,
                                    deployment=config.deployment, cwd=ROOT)
    secret = f"readme-api-key-{secrets.token_hex(8)}"
    try:
        cli = Cli.installed_copy(tmp_path / "cli")
        (cli.workdir / config.package).symlink_to(config.package_path)
        blocks = [b for b in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S) if ".venv/bin/ubiops" in b]
        script = "\n".join(blocks).replace(README_ADDRESS, served.url).replace(".venv/bin/ubiops", str(UBIOPS))
        run = subprocess.run(["bash", "-e", "-c", script], cwd=cli.workdir, env={**cli.env, "MY_API_KEY": secret},
                             capture_output=True, text=True, timeout=600)
    finally:
        served.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Status: completed" in run.stdout and "LOG_LEVEL" in run.stdout, run.stdout
    request_id = re.search(r"^Request id: (\S+)$", run.stdout, re.M)[1]
    version = config.emulator_version
    assert f"{config.deployment}/{version} request {request_id} completed in " in run.stdout, "logs shows the request"
    assert re.search(r"^[0-9a-f-]{36} +running +", run.stdout, re.M), "instances list shows the running instance"
    assert secret not in run.stdout + run.stderr
    assert re.search(r"^\S+ +API_KEY +True *$", run.stdout, re.M), "env create shows the secret's value empty"
    assert re.search(rf"^\S+ +API_KEY +True +project +{config.project} *$", run.stdout, re.M), "and so does env list"


def test_ubiops_logs_shows_a_requests_lines_found_by_its_id(cli):
    (response,) = json.loads(cli("deployments", "requests", "create", DEPLOYMENT, "--data", "logged", "-fmt", "json"))
    query = f'| deployment_request_id="{response["id"]}"'
    ended = f"{DEPLOYMENT}/v1 request {response['id']} completed in "
    assert ended in cli("logs", "--query", query, "--no_pager")
    assert f"deployment_request_id: {response['id']}\nsystem: True\nlevel: info\nlog: {ended}" in cli(
        "logs", "-q", query, "-fmt", "extended", "--no_pager")
    (line,) = json.loads(cli("logs", "-q", query, "-fmt", "json"))
    assert line["log"].startswith(ended) and line["timestamp_str"] == str(line["timestamp"])
    assert (line["metadata"]["deployment_name"], line["metadata"]["system"]) == (DEPLOYMENT, True)
    assert json.loads(cli("logs", "-q", query, "--start", "2020-01-01T00:00:00Z", "--end", "2020-01-02T00:00:00Z",
                          "-fmt", "json")) == []


def test_ubiops_logs_with_only_start_or_only_end_takes_the_other_as_the_cli_documents(cli):
    """The CLI's help: `--start` "[default = now]", `--end` "[default = yesterday]"; it sends only what is
    given. Before, either alone was refused: "start and end must be given together"."""
    (response,) = json.loads(cli("deployments", "requests", "create", DEPLOYMENT, "--data", "windowed", "-fmt", "json"))
    query = f'| deployment_request_id="{response["id"]}"'
    ended = f"{DEPLOYMENT}/v1 request {response['id']} completed in "
    assert ended in cli("logs", "--query", query, "--no_pager")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    def found(*window: str) -> bool:
        return any(line["log"].startswith(ended) for line in json.loads(cli("logs", "-q", query, *window, "-fmt", "json")))

    assert found("--start", later), "back from an hour ahead to yesterday"
    assert found("--end", "2020-01-01T00:00:00Z"), "back from now to 2020"
    assert not found("--start", "2020-01-01T00:00:00Z"), "on from 2020 to yesterday"
    assert not found("--end", later), "on from now to an hour ahead"


def test_ubiops_logs_prints_why_a_filter_is_refused(cli):
    assert "Error (400): query: unknown label 'colour' at position 2" in cli.fails(
        "logs", "--query", '| colour="red"', "--no_pager")


def test_ubiops_instances_and_project_instances_list_the_worker_processes_and_their_events(cli):
    (instance,) = json.loads(cli("instances", "list", "-d", DEPLOYMENT, "-v", "v1", "-fmt", "json"))
    assert instance["status"] == "running" and instance["instance_type"]["name"] == "emulator"
    assert instance["id"] in cli("instances", "list", "-d", DEPLOYMENT, "-v", "v1")
    assert f"id: {instance['id']}\nstatus: running\n" in cli("instances", "get", instance["id"], "-d", DEPLOYMENT, "-v", "v1")
    events = cli("instances", "events", instance["id"], "-d", DEPLOYMENT, "-v", "v1")
    assert "Instance created" in events and "Instance status changed to running" in events
    in_project = json.loads(cli("project_instances", "list", "-fmt", "json"))
    assert {(i["id"], i["deployment"], i["version"]) for i in in_project} >= {(instance["id"], DEPLOYMENT, "v1")}
    assert "Error (404): Instance not found" in cli.fails("instances", "get", "nope", "-d", DEPLOYMENT, "-v", "v1")


def test_ubiops_buckets_create_list_update_and_delete_with_their_files(cli, tmp_path):
    """A bucket's description and labels are kept, as its owner set them; another provider, which the
    emulator cannot reach, is refused at once rather than made a local folder under its name."""
    cli("buckets", "create", "scans", "-desc", "first", "-lb", "team:vision")
    shown = json.loads(cli("buckets", "get", "scans", "-fmt", "json"))
    assert (shown["provider"], shown["description"], shown["labels"]) == ("ubiops", "first", {"team": "vision"})
    cli("buckets", "create", "other", "-lb", "team:audio")
    assert [b["name"] for b in json.loads(cli("buckets", "list", "-lb", "team:vision", "-fmt", "json"))] == ["scans"]

    assert "successfully updated" in cli("buckets", "update", "scans", "-desc", "second", "-lb", "stage:prod")
    shown = json.loads(cli("buckets", "get", "scans", "-fmt", "json"))
    assert (shown["description"], shown["labels"]) == ("second", {"stage": "prod"})

    (tmp_path / "page.txt").write_text("one page")
    assert cli("files", "upload", "-f", str(tmp_path / "page.txt"), "page.txt", "-b", "scans").strip() == \
        "ubiops-file://scans/page.txt"
    cli("buckets", "delete", "scans", "-y")
    assert "scans" not in [b["name"] for b in json.loads(cli("buckets", "list", "-fmt", "json"))]
    assert "404" in cli.fails("files", "list", "-b", "scans")
    cli("buckets", "create", "scans")
    assert json.loads(cli("files", "list", "-b", "scans", "-fmt", "json"))["files"] == [], "a new bucket of the name is empty"

    refused = cli.fails("buckets", "create", "s3-scans", "-p", "amazon_s3", "--configuration", '{"bucket": "b"}')
    assert "400" in refused and "provider 'amazon_s3' are not served by the emulator" in refused
    assert "cannot be deleted" in cli.fails("buckets", "delete", "default", "-y")
    names = [b["name"] for b in json.loads(cli("buckets", "list", "-fmt", "json"))]
    assert "s3-scans" not in names and "default" in names
