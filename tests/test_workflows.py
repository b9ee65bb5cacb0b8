"""The workflows the README tells users to run, run for real on this repository as it is: `make serve`
and the README's curl; `python -m deployer check` and `push` with this repository's own config,
package and test command, against an emulator playing UbiOps. No stand-ins: if a headline command
fails for users, this fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, free_port

from contract.config import load_config
from contract.package import read_package
from contract.versions import instance_type_memory_mb
from deployer.client import Api
from deployer.inputs import upload_inputs
from deployer.smoke import compare_outputs
from emulator.launcher import Emulator, start_emulator, wait_until_up

CONFIG = load_config(ROOT)
TOKEN = "workflow-token-8c1d2e"
COMMAND_SECONDS = 600


def readme_block(starting_with: str) -> str:
    """The README's fenced code block whose first line starts with `starting_with`."""
    blocks = re.findall(r"```\w*\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if b.startswith(starting_with))


def repository_copy(target: Path) -> Path:
    """This repository's files as they are (committed or not, ignored ones left out), in `target`."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def deployer(root: Path, *args: str, ubiops: Emulator) -> subprocess.CompletedProcess:
    """`python -m deployer …` in `root`, with the token and host a user exports for UbiOps."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    env.update(UBIOPS_API_TOKEN=TOKEN, UBIOPS_API_HOST=ubiops.api)
    return subprocess.run([sys.executable, "-m", "deployer", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=COMMAND_SECONDS, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def ubiops(tmp_path_factory) -> Emulator:
    """UbiOps, as the deployer sees it: an emulator requiring a token, with the configured project."""
    emulator = start_emulator(ROOT / "tests" / "packages" / "minimal", tmp_path_factory.mktemp("ubiops"),
                              project=CONFIG.project, deployment="placeholder", token=TOKEN, cwd=ROOT)
    yield emulator
    emulator.stop()


@pytest.mark.face_profile
def test_make_serve_then_the_readme_curl(tmp_path):
    """The README's curl (a portrait for the face profile) against `make serve` completes, and every output
    file it names downloads from its plain URL (the face profile's own checks are its package's tests)."""
    port = free_port()
    serve = subprocess.Popen(["make", "serve", f"ARGS=--port {port} --data-dir {tmp_path / 'data'}"], cwd=ROOT,
                             stdout=(tmp_path / "serve.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    served = Emulator(f"http://127.0.0.1:{port}", CONFIG.project, CONFIG.deployment, serve, tmp_path / "serve.log")
    try:
        wait_until_up(served, seconds=COMMAND_SECONDS)
        curl = readme_block("curl ").replace("http://127.0.0.1:8000", served.url)
        answer = json.loads(subprocess.run(["bash", "-c", curl], cwd=ROOT, check=True, capture_output=True, text=True,
                                           timeout=COMMAND_SECONDS).stdout)
        assert answer["status"] == "completed", answer
        for number, url in enumerate(answer.get("emulator_file_urls", {}).values()):
            download = tmp_path / f"output-{number}"
            subprocess.run(["curl", "-sf", "-o", str(download), url], check=True, timeout=COMMAND_SECONDS)
            assert download.stat().st_size > 0
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(COMMAND_SECONDS)
    assert f"deployment {CONFIG.deployment}" in served.log(), "make serve names the configured deployment"


def test_deployer_check_then_push_on_this_repository(tmp_path, ubiops):
    copy = repository_copy(tmp_path / "repo")
    check = deployer(copy, "check", ubiops=ubiops)
    assert check.returncode == 0, check.stdout + check.stderr
    assert re.search(r"ok   emulator tests: \d+ passed", check.stdout), check.stdout
    memory = instance_type_memory_mb(CONFIG.instance_type_group)  # the face profile peaked at ~210 MB in its tests
    assert f"each instance limited to {memory} MB of memory, as instance_type_group " in check.stdout, check.stdout

    package = read_package(ROOT / CONFIG.package)
    push = deployer(copy, "push", "--promote", "--output", "json", ubiops=ubiops)
    assert push.returncode == 0, push.stdout + push.stderr
    summary = json.loads(push.stdout)
    assert (summary["build_status"], summary["promoted"], summary["smoke"]["status"]) == ("success", True, "completed")
    assert summary["smoke"]["differences"] == [], summary["smoke"]
    assert TOKEN not in push.stdout + push.stderr

    api = ubiops.sdk()
    assert api.deployments_get(CONFIG.project, CONFIG.deployment).default_version == summary["version"]
    local = start_emulator(ROOT / CONFIG.package, tmp_path, project=CONFIG.project, deployment=CONFIG.deployment,
                           cwd=ROOT)
    try:
        answers = [sdk.deployment_version_requests_create(CONFIG.project, CONFIG.deployment, version, data=upload_inputs(
                       Api(core=sdk), CONFIG.project, package.input_spec, dict(CONFIG.sample_input), ROOT))
                   for sdk, version in ((api, summary["version"]), (local.sdk(), CONFIG.emulator_version))]
    finally:
        local.stop()
    assert [a.status for a in answers] == ["completed", "completed"], [a.error_message for a in answers]
    assert compare_outputs(package.output_spec, answers[1].result, answers[0].result) == []


MODEL_LIBRARY = '''"""A nearest-centroid classifier in plain numpy: the user's own model."""

import numpy as np


class NearestCentroid:
    def __init__(self, features, labels):
        self.labels = sorted(set(labels))
        rows = np.asarray(features, dtype=float)
        self.centroids = np.stack([rows[[y == label for y in labels]].mean(axis=0) for label in self.labels])

    def predict(self, row):
        distances = np.linalg.norm(self.centroids - np.asarray(row, dtype=float), axis=1)
        best = int(distances.argmin())
        return float(distances[best]), self.labels[best]
'''

MODEL_DEPLOYMENT = '''import os

import joblib


class Deployment:
    def __init__(self, base_directory, context):
        self.model = joblib.load(os.path.join(base_directory, "model1.pkl"))

    def request(self, data, context):
        distance, label = self.model.predict(data["features"])
        return {"prediction": distance, "label": label}
'''

TRAIN = '''import sys, joblib
sys.path.insert(0, "deployment_package/libraries")
from iris_model import NearestCentroid
model = NearestCentroid([[5.0, 3.4], [4.8, 3.1], [6.7, 3.0], [6.3, 2.9]], ["setosa", "setosa", "virginica", "virginica"])
joblib.dump(model, "deployment_package/model1.pkl", protocol=4)
'''


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    result = subprocess.run(command, cwd=cwd, env={**environment, **env}, capture_output=True, text=True,
                            timeout=COMMAND_SECONDS, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def commit_all(repository: Path, message: str) -> None:
    for command in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", message]):
        run(["git", *command], repository)


def test_your_own_model_from_init_to_push(tmp_path):
    """The README's *Your own model*, its blocks run as written: in a git repository of this
    repository's files, its first block replaces the package with `init`; a model and the README's
    fixture sample (as a test of the package) are written and committed. In a fresh clone of that
    commit, `make serve` serves it, pytest runs its tests with the real plugin, `check` checks it and
    the README's push line ships it to that `make serve`."""
    work = repository_copy(tmp_path / "work")
    (work / ".venv").symlink_to(ROOT / ".venv")  # ignored by git, as a real checkout's
    run(["git", "init", "-q"], work)
    commit_all(work, "the repository")
    run(["bash", "-e", "-c", readme_block("git rm -r -q deployment_package")], work)
    package = work / "deployment_package"
    (package / "libraries").mkdir()
    (package / "libraries" / "iris_model.py").write_text(MODEL_LIBRARY)
    (package / "deployment.py").write_text(MODEL_DEPLOYMENT)
    (package / "requirements.txt").write_text("numpy==2.4.6\njoblib==1.6.0\n")
    (package / "tests" / "test_readme_sample.py").write_text(readme_block("def test_predicts(ubiops_emulator)"))
    run([sys.executable, "-c", TRAIN], work)
    commit_all(work, "iris")
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    assert (clone / "deployment_package" / "model1.pkl").read_bytes() == (package / "model1.pkl").read_bytes()

    (clone / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    serve = subprocess.Popen(["make", "serve", "-o", ".venv/.installed", f"ARGS=--port {port} --data-dir {tmp_path / 'data'}"],
                             cwd=clone, stdout=(tmp_path / "serve.log").open("wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    project = load_config(clone).project  # the README's init names the team's own (`--project`)
    assert project != CONFIG.project, "the README's init names a project of the team's own"
    served = Emulator(f"http://127.0.0.1:{port}", project, "iris", serve, tmp_path / "serve.log")
    try:
        wait_until_up(served, seconds=COMMAND_SECONDS)
        local = served.request({"features": [6.5, 3.0]})
        assert local["status"] == "completed" and local["result"]["label"] == "virginica", local

        tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "deployment_package/tests"], clone)
        assert "2 passed" in tests.stdout, tests.stdout
        check = run([sys.executable, "-m", "deployer", "check"], clone)
        assert check.stdout.strip().endswith("check passed: 9 checks"), check.stdout
        assert "emulator tests: 2 passed" in check.stdout, check.stdout

        pushes = readme_block("export UBIOPS_API_TOKEN=")
        push_line = pushes[pushes.index('UBIOPS_API_TOKEN="Token any"'):].replace("http://127.0.0.1:8000", served.url)
        push = run(["bash", "-e", "-c", push_line], clone)
        assert "smoke request completed; output matches the emulator's" in push.stdout + push.stderr, push.stderr
        api = served.sdk()
        versions = sorted(v.version for v in api.deployment_versions_list(project, "iris"))
        assert versions == ["v1", "v2"]
        remote = api.deployment_version_requests_create(project, "iris", "v2", data={"features": [6.5, 3.0]})
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(COMMAND_SECONDS)
    assert (remote.status, remote.result) == ("completed", local["result"])
