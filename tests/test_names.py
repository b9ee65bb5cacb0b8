"""Hostile names in paths: each is an unknown name (404) or a refused one (400), in UbiOps' error shape."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys

import pytest
from harness import DEPLOYMENT, PROJECT, ROOT, free_port

HOSTILE = ["..", "%2e%2e", "%2E%2E%2F..%2Fetc", "%2Fetc%2Fpasswd", "a%00b", "x" * 10_000, "%C3%A9%F0%9F%99%82"]


@pytest.fixture(scope="module")
def plain(emulators):
    return emulators("plain")


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("template", [
    "/projects/{name}/deployments/" + DEPLOYMENT + "/requests",
    "/projects/" + PROJECT + "/deployments/{name}/requests",
    "/projects/" + PROJECT + "/deployments/" + DEPLOYMENT + "/versions/{name}/requests",
    "/projects/" + PROJECT + "/deployments/" + DEPLOYMENT + "/requests/{name}",
])
def test_hostile_names_are_clear_4xx_errors(plain, template, name):
    """Sent verbatim (http.client does not normalise `..` away, as httpx and browsers do)."""
    method = "GET" if template.endswith("{name}") else "POST"
    connection = http.client.HTTPConnection(plain.url.removeprefix("http://"), timeout=10)
    connection.request(method, "/v2.1" + template.format(name=name), body="x", headers={"Content-Type": "text/plain"})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status in (400, 404), body
    assert set(body) == {"error"} and body["error"]
    assert plain.sdk().service_status().status == "ok"


@pytest.mark.parametrize("option, name", [("--project", "My Project"), ("--deployment", "face-"), ("--version", "v\udcff")])
def test_a_name_on_the_command_line_follows_the_apis_rule(tmp_path, option, name):
    """Unchecked, `--version v\\udcff` made `/metrics` and the deployments list answer 500."""
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), option, name], cwd=ROOT,
                         capture_output=True, text=True, errors="backslashreplace", timeout=60)
    assert run.returncode == 2 and f"{option} {name!r} is not a UbiOps name: lowercase letters, digits" in run.stderr


@pytest.mark.parametrize("option", ["--package", "--data-dir", "--environments-dir"])
def test_a_folder_whose_path_is_not_utf8_is_refused_at_start(tmp_path, option):
    """Its path goes to every instance and into messages as UTF-8: `--data-dir` so named failed every
    request, `--package` every start."""
    folder = tmp_path / os.fsdecode(b"folder-\xff")
    shutil.copytree(ROOT / "tests" / "packages" / "plain", folder)
    paths = {"--package": "tests/packages/plain", "--data-dir": str(tmp_path / "data"), option: str(folder)}
    run = subprocess.run([sys.executable, "-m", "emulator", "--port", str(free_port()), *(a for kv in paths.items() for a in kv)],
                         cwd=ROOT, capture_output=True, text=True, errors="backslashreplace", timeout=60)
    assert run.returncode == 2 and f"{option} {str(folder)!r} is a path Python cannot read as UTF-8 text" in run.stderr

