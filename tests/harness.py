"""The test harness: the real emulator (`python -m emulator` under uvicorn) on a free port, called over
HTTP with the real `ubiops` SDK (and httpx where the SDK has no call)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import ubiops

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = Path(__file__).resolve().parent / "packages"
PROJECT, DEPLOYMENT = "face-profile", "face-profile"
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Emulator:
    """A running `python -m emulator` process."""

    process: subprocess.Popen
    url: str
    log_path: Path
    data_dir: Path
    temp_dir: Path
    token: str | None = None
    _api_clients: list[ubiops.ApiClient] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.url}/v2.1"

    def requests_url(self, version: str | None = None) -> str:
        base = f"{self.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}"
        return f"{base}/versions/{version}/requests" if version else f"{base}/requests"

    def sdk(self, token: str | None = None, prefix: str = "/v2.1") -> ubiops.CoreApi:
        """The real SDK, configured as a user would, with only the host changed."""
        config = ubiops.Configuration(host=f"{self.url}{prefix}", api_key={"Authorization": token or self.token or "anything"})
        client = ubiops.ApiClient(config)
        self._api_clients.append(client)
        return ubiops.CoreApi(client)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for client in self._api_clients:
            client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_emulator(package: Path | str, tmp: Path, *args: str, token: str | None = None, wait: bool = True,
                   data_dir: Path | None = None) -> Emulator:
    """Start the emulator on `package` (a folder under tests/packages, or a path) and wait until it answers.

    Each emulator has its own data folder (unless `data_dir` names one, to restart on it) and its own
    TMPDIR, so tests can see what it leaves behind.
    """
    package = PACKAGES / package if isinstance(package, str) else package
    port = free_port()
    log_path = tmp / f"emulator-{port}.log"
    data_dir, temp_dir = data_dir or tmp / f"data-{port}", tmp / f"tmp-{port}"
    temp_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "EMULATOR_TOKEN"}
    env["TMPDIR"] = str(temp_dir)
    if token:
        env["EMULATOR_TOKEN"] = token
    command = [sys.executable, "-m", "emulator", "--package", str(package), "--port", str(port),
               "--data-dir", str(data_dir), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    emulator = Emulator(process, f"http://127.0.0.1:{port}", log_path, data_dir, temp_dir, token)
    if wait:
        _wait_until_up(emulator)
    return emulator


def _wait_until_up(emulator: Emulator) -> None:
    headers = {"Authorization": f"Token {emulator.token}"} if emulator.token else {}
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {emulator.process.returncode}:\n{emulator.log()}")
        try:
            if httpx.get(f"{emulator.api}/status", headers=headers, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    emulator.stop()
    raise RuntimeError(f"the emulator did not answer within {STARTUP_SECONDS} s:\n{emulator.log()}")


def zip_bytes(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    """A zip of `entries` (name: bytes), plus a symbolic link entry if asked: packages good and bad."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            link = zipfile.ZipInfo(symlink)
            link.external_attr = 0o120777 << 16
            archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def wait_for_log(emulator: Emulator, text: str, seconds: float = 10) -> str:
    """The emulator's log once it holds `text` (its output reaches the log asynchronously)."""
    deadline = time.monotonic() + seconds
    while text not in (log := emulator.log()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the emulator log:\n{log[-3000:]}")
        time.sleep(0.05)
    return log
