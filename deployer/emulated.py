"""The local emulator, started on the built zip: the package exactly as it will be uploaded.

It runs without the UbiOps token or host in its environment (nor do the tests run against it), so
nothing it does can reach UbiOps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import ubiops

from contract.config import DeployerConfig
from deployer.client import HOST_VARIABLE, TOKEN_VARIABLE
from deployer.errors import DeployerError

START_SECONDS = 120
POLL_SECONDS = 0.1
LOG_TAIL_LINES = 20
PRIVATE_VARIABLES = (TOKEN_VARIABLE, HOST_VARIABLE, "EMULATOR_TOKEN")


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the UbiOps token and host, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if k not in PRIVATE_VARIABLES}, **extra}


@dataclass
class LocalEmulator:
    url: str
    log_path: Path
    status: str
    client: ubiops.ApiClient

    @property
    def api(self) -> ubiops.CoreApi:
        return ubiops.CoreApi(self.client)

    def startup_error(self) -> str:
        """Why the version did not start, from the emulator's log."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return next((l.split(": ", 1)[-1] for l in reversed(lines) if "failed to start" in l), tail(lines))


def tail(lines: list[str], count: int = LOG_TAIL_LINES) -> str:
    return "\n".join(lines[-count:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_emulator(config: DeployerConfig, zip_path: Path, workdir: Path) -> Iterator[LocalEmulator]:
    """Serve `zip_path` under the configured names until the block ends; waits until its version started."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "emulator.log"
    command = [sys.executable, "-m", "emulator", "--package", str(zip_path), "--port", str(port),
               "--data-dir", str(workdir / "emulator-data"), "--project", config.project,
               "--deployment", config.deployment, "--version", config.emulator_version]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=config.root, env=clean_environment(), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = ubiops.ApiClient(ubiops.Configuration(host=f"{url}/v2.1", api_key={"Authorization": "emulator"}))
    try:
        status = _wait_until_started(process, f"{url}/v2.1/projects/{config.project}/deployments/"
                                              f"{config.deployment}/versions/{config.emulator_version}", log_path)
        yield LocalEmulator(url, log_path, status, client)
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_started(process: subprocess.Popen, version_url: str, log_path: Path) -> str:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeployerError(f"the emulator refused the zip:\n{tail(log_path.read_text(errors='replace').splitlines())}")
        try:
            status = httpx.get(version_url, timeout=2).json().get("status")
        except (httpx.TransportError, ValueError):
            status = None
        if status in ("available", "unavailable"):
            return status
        time.sleep(POLL_SECONDS)
    raise DeployerError(f"the emulator did not start the package within {START_SECONDS} s; see {log_path}")
