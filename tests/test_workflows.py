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
from PIL import Image
from ubiops.utils import upload_file

from contract.config import load_config
from emulator.testing import Emulator, free_port, start_emulator, wait_until_up
from harness import ROOT

CONFIG = load_config(ROOT)
TOKEN = "workflow-token-8c1d2e"
COMMAND_SECONDS = 600
PORTRAIT = ROOT / CONFIG.sample_input["img"]


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


def test_make_serve_then_the_readme_curl(tmp_path):
    port = free_port()
    serve = subprocess.Popen(["make", "serve", f"ARGS=--port {port} --data-dir {tmp_path / 'data'}"], cwd=ROOT,
                             stdout=(tmp_path / "serve.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    served = Emulator(f"http://127.0.0.1:{port}", CONFIG.project, CONFIG.deployment, serve, tmp_path / "serve.log")
    try:
        wait_until_up(served, seconds=COMMAND_SECONDS)
        curl = readme_block("curl -F img=@").replace("http://127.0.0.1:8000", served.url)
        answer = json.loads(subprocess.run(["bash", "-c", curl], cwd=ROOT, check=True, capture_output=True, text=True,
                                           timeout=COMMAND_SECONDS).stdout)
        assert answer["status"] == "completed", answer
        assert answer["result"]["face_found"] is True and 1.4 <= answer["result"]["fwhr"] <= 2.4
        annotated = tmp_path / "annotated.jpg"
        download = answer["emulator_file_urls"][answer["result"]["annotated_img"]]
        subprocess.run(["curl", "-sf", "-o", str(annotated), download], check=True, timeout=COMMAND_SECONDS)
        with Image.open(annotated) as image:
            assert image.format == "JPEG" and image.width >= answer["result"]["image_width"]
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(COMMAND_SECONDS)
    assert f"deployment {CONFIG.deployment}" in served.log(), "make serve names the configured deployment"


def test_deployer_check_then_push_on_this_repository(tmp_path, ubiops):
    copy = repository_copy(tmp_path / "repo")
    check = deployer(copy, "check", ubiops=ubiops)
    assert check.returncode == 0, check.stdout + check.stderr
    assert re.search(r"ok   emulator tests: \d+ passed", check.stdout), check.stdout

    push = deployer(copy, "push", "--promote", "--output", "json", ubiops=ubiops)
    assert push.returncode == 0, push.stdout + push.stderr
    summary = json.loads(push.stdout)
    assert (summary["build_status"], summary["promoted"], summary["smoke"]["status"]) == ("success", True, "completed")
    assert summary["smoke"]["differences"] == [], summary["smoke"]
    assert TOKEN not in push.stdout + push.stderr

    api = ubiops.sdk()
    detail = api.deployments_get(CONFIG.project, CONFIG.deployment)
    assert detail.default_version == summary["version"]
    uri = upload_file(api.api_client, CONFIG.project, str(PORTRAIT), _progress_bar=False)
    remote = api.deployment_version_requests_create(CONFIG.project, CONFIG.deployment, summary["version"],
                                                    data={**CONFIG.sample_input, "img": uri})
    local = start_emulator(ROOT / CONFIG.package, tmp_path, project=CONFIG.project, deployment=CONFIG.deployment,
                           cwd=ROOT)
    try:
        direct = local.request({k: v for k, v in CONFIG.sample_input.items() if k != "img"}, files={"img": PORTRAIT})
    finally:
        local.stop()
    assert remote.status == direct["status"] == "completed"
    assert {k: v for k, v in remote.result.items() if k != "annotated_img"} == \
           {k: v for k, v in direct["result"].items() if k != "annotated_img"}
