"""Fixtures for the deployer's end-to-end tests: small projects written into tmp_path, the real
`python -m deployer` run as a subprocess, and real emulators as its UbiOps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from harness import PROJECT, ROOT, Emulator

TOKEN = "deployer-test-token-5f3a9c"
DEPLOYER_SECONDS = 120

DEPLOYMENT_PY = '''
class Deployment:
    def __init__(self, base_directory, context):
        self.factor = 2

    def request(self, data):
        return {"y": data["x"] * self.factor}
'''

EMULATOR_CHECK = '''
import os, sys, httpx
url = os.environ["EMULATOR_URL"] + "/v2.1/projects/{project}/deployments/{deployment}/requests"
token = os.environ["EMULATOR_TOKEN"]  # the check's emulator requires the token it gives its tests
if httpx.post(url, json={{"x": 21}}, timeout=30).status_code != 401:
    sys.exit("the check's emulator answered a call without its token")
answer = httpx.post(url, json={{"x": 21}}, headers={{"Authorization": f"Token {{token}}"}}, timeout=30).json()
print("emulator answered", answer["result"])
sys.exit(0 if answer["result"] == {{"y": {expected}}} else 1)
'''


@dataclass
class Project:
    """A project folder with `pyproject.toml` and a package in `pkg/`."""

    root: Path
    deployment: str

    @property
    def package(self) -> Path:
        return self.root / "pkg"

    def configure(self, **settings: object) -> None:
        table = {"project": PROJECT, "deployment": self.deployment, "package": "pkg",
                 "test_command": "python emulator_check.py", "sample_input": {"x": 3}, **settings}
        lines = ["[tool.deployer]"] + [f"{key} = {_toml(value)}" for key, value in table.items()]
        (self.root / "pyproject.toml").write_text("\n".join(lines) + "\n")

    def expect(self, y_for_21: int) -> None:
        """The project's emulator test passes when the package answers x=21 with this y."""
        (self.root / "emulator_check.py").write_text(EMULATOR_CHECK.format(project=PROJECT, deployment=self.deployment, expected=y_for_21))

    def run(self, *args: str, emulator: Emulator | None = None, token: str = TOKEN,
            env: dict[str, str] | None = None, setup: str = "") -> subprocess.CompletedProcess:
        """`python -m deployer` in the project, with the token, and `env` added to its environment; `setup`,
        Python run in its process first, may change the deployer's constants (a shorter timeout)."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}, **(env or {})}
        env["UBIOPS_API_TOKEN"] = token
        if emulator is not None:
            env["UBIOPS_API_HOST"] = emulator.api
        start = ["-c", f"{setup}\nfrom deployer.__main__ import main\nmain()"] if setup else ["-m", "deployer"]
        return subprocess.run([sys.executable, *start, *args], cwd=self.root, env=env, capture_output=True,
                              text=True, timeout=DEPLOYER_SECONDS, stdin=subprocess.DEVNULL)

    def push_json(self, *args: str, emulator: Emulator, env: dict[str, str] | None = None) -> dict:
        result = self.run("--output", "json", "push", *args, emulator=emulator, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    """A small working project whose deployment is named after the test (so tests share emulators)."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-").lower()
    project = Project(tmp_path / "project", name)
    project.package.mkdir(parents=True)
    (project.package / "deployment.py").write_text(DEPLOYMENT_PY)
    (project.package / "ubiops_input_spec.json").write_text(json.dumps([{"name": "x", "data_type": "int"}]))
    (project.package / "ubiops_output_spec.json").write_text(json.dumps([{"name": "y", "data_type": "int"}]))
    (project.package / "requirements.txt").write_text("# nothing to install\n")
    project.configure()
    project.expect(42)
    return project


@pytest.fixture(scope="session")
def remote_ubiops(emulators) -> Emulator:
    """The UbiOps the deployer pushes to: a real emulator, requiring the token."""
    return emulators(ROOT / "tests" / "packages" / "echo", token=TOKEN)


class Replying(BaseHTTPRequestHandler):
    """A handler for a stand-in UbiOps (`http_server`): `reply` sends an answer whole, and nothing is logged."""

    def reply(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.send_response(status)
        for header, value in {**headers, "Content-Length": str(len(content))}.items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real local HTTP server answering with `handler`, in a thread, until the block ends; its API's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v2.1"
    finally:
        server.shutdown()
        server.server_close()


Answer = Callable[[str, Callable[[], httpx.Response]], httpx.Response | None]
"""How a proxy (`proxied`) answers a call, given as `METHOD path`, and a function that passes it on
and gives the emulator's answer: the answer to send back, or None to close the connection unanswered."""


@contextmanager
def proxied(emulator: Emulator, answer: Answer) -> Iterator[str]:
    """A real HTTP proxy in front of `emulator`, answering each call as `answer` says; its API's URL."""
    upstream = httpx.Client(base_url=emulator.api.removesuffix("/v2.1"), timeout=DEPLOYER_SECONDS)

    class Proxy(Replying):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def forward() -> httpx.Response:
                return upstream.request(self.command, self.path, content=body, headers={
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")})

            response = answer(f"{self.command} {self.path}", forward)
            if response is None:
                self.close_connection = True
                return
            self.reply(response.status_code, {k: v for k, v in response.headers.items() if k.lower() not in (
                "content-length", "transfer-encoding", "connection", "content-encoding")}, response.content)

        do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    try:
        with http_server(Proxy) as url:
            yield url
    finally:
        upstream.close()
