"""A local UbiOps in its own process, seen from a client: start `python -m emulator` on a package,
serving a socket bound for it on a free port, wait until it answers, call it (the real SDK, or a
curl-like request), stop it.

Used by the pytest plugin (`emulator.testing`), `python -m emulator request`, the deployer's check
and the emulator's own test suite, so there is one way to start and wait for an emulator.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import ubiops

from contract.secrets import MASK, masked
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.runtime.instance import START_TIMEOUT_SECONDS
from emulator.runtime.pool import UNAVAILABLE
from emulator.runtime.python_envs import BUILD_SECONDS

STARTUP_SECONDS = 60
SERVED_SECONDS = STARTUP_SECONDS + BUILD_SECONDS + START_TIMEOUT_SECONDS
"""How long a package may take to be served, as long as the emulator itself lets it: to answer, to build
its environment (a first cold install of OpenCV may take minutes) and to run `Deployment.__init__`. The
emulator's own limits end a start that takes longer, with their reason; this wait only ends one that
hangs (it was 600 s, and ended a cold build the emulator would have let finish)."""
TAIL_LINES = 20
POLL_SECONDS = 0.05
T = TypeVar("T")
REQUEST_SECONDS = 300


class Hidden(str):
    """A header value holding the token, sent as it is but masked in its repr: a failing assertion's
    report, which CI logs keep, shows the arguments of the call in it (`headers={...}`, a copy of the
    headers with others added too) with repr. A value compared as text is shown as it is."""

    def __repr__(self) -> str:
        return repr(MASK)


@dataclass
class Emulator:
    """A local UbiOps serving one package: its address, the names it serves it under, and (when this
    process started it) the process and its log."""

    url: str
    project: str
    deployment: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    data_dir: Path | None = None
    token: str | None = field(default=None, repr=False)  # not in a failing test's report, which CI logs keep
    secrets: Collection[str] = field(default=(), repr=False)
    """Values masked wherever the log or a failure is shown (`contract.secrets`): the configured secrets'."""
    _clients: list[ubiops.ApiClient] = field(default_factory=list)

    @property
    def api(self) -> str:
        """The API's base URL, as `UBIOPS_API_HOST` would name UbiOps'."""
        return f"{self.url}/v2.1"

    @property
    def headers(self) -> dict[str, str]:
        """What an HTTP call to the API sends to be let in; the token's repr masked (`Hidden`)."""
        return {"Authorization": Hidden(f"Token {self.token}")} if self.token else {}

    def requests_url(self, version: str | None = None) -> str:
        base = f"{self.api}/projects/{self.project}/deployments/{self.deployment}"
        return f"{base}/versions/{version}/requests" if version else f"{base}/requests"

    def sdk(self, token: str | None = None, prefix: str = "/v2.1") -> ubiops.CoreApi:
        """The real `ubiops` SDK, configured as against UbiOps, with only the host changed."""
        config = ubiops.Configuration(host=f"{self.url}{prefix}", api_key={"Authorization": token or self.token or "local"})
        client = ubiops.ApiClient(config)
        self._clients.append(client)
        return ubiops.CoreApi(client)

    def request(self, data: Any = None, *, files: dict[str, Any] | None = None, version: str | None = None,
                timeout: float = REQUEST_SECONDS) -> dict[str, Any]:
        """A direct request, answered as UbiOps' `DeploymentRequestCreateResponse` (a dict): JSON
        `data`, or a multipart form of `files` (name: path, bytes or (filename, bytes)) and `data`'s
        other fields, as curl sends it."""
        if files:
            parts = {name: _file_part(value) for name, value in files.items()}
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (data or {}).items()}
            response = httpx.post(self.requests_url(version), files=parts, data=form, headers=self.headers, timeout=timeout)
        else:
            response = httpx.post(self.requests_url(version), json=data, headers=self.headers, timeout=timeout)
        if response.is_error:  # with the emulator's reason: `raise_for_status` alone says "503 Service Unavailable"
            raise httpx.HTTPStatusError(f"{response.status_code} from the emulator: {response.text}",
                                        request=response.request, response=response)
        return response.json()

    def download(self, answer: dict[str, Any], uri: str) -> bytes:
        """The bytes of an output file of `answer`, through the plain URL the emulator adds for it."""
        return httpx.get(answer["emulator_file_urls"][uri], timeout=REQUEST_SECONDS).raise_for_status().content

    def log(self) -> str:
        """The log, with the token and `secrets` masked: a failing test's report, which CI keeps, shows it."""
        return self.masked(self.log_path.read_text(errors="replace") if self.log_path else "")

    def masked(self, text: str) -> str:
        return masked(text, [*self.secrets, self.token or ""])

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket listening on `host`, on a port the system picks, for an emulator to serve (`--fd`). Bound
    here, before the emulator starts, no other process can take its port in the second the emulator spends
    importing: with a port chosen free and let go, a local user who watched the process list for it took
    it, got the token with the first poll and answered for the emulator, and a check passed a package
    that failed every request."""
    return socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)


def start_emulator(package: Path, workdir: Path, *args: str, project: str, deployment: str, token: str | None = None,
                   env: dict[str, str] | None = None, cwd: Path | None = None, wait: bool = True,
                   data_dir: Path | None = None, secrets: Collection[str] = (), host: str = "127.0.0.1") -> Emulator:
    """Start `python -m emulator` serving `package` as `project`/`deployment` on a socket listening on
    `host` (`listening_socket`), with its log and (unless `data_dir` names one) its data in `workdir`, and
    (with `wait`) return once it answers. `secrets`' values are masked in its log and failures as shown
    (`Emulator.log`)."""
    environment = {k: v for k, v in (env if env is not None else os.environ).items() if k != EMULATOR_TOKEN_VARIABLE}
    if token:
        environment[EMULATOR_TOKEN_VARIABLE] = token
    with listening_socket(host) as listener:  # closed here once the emulator has it: its port is free when it ends
        port = listener.getsockname()[1]
        log_path = workdir / f"emulator-{port}.log"
        data_dir = data_dir or workdir / f"data-{port}"
        command = [sys.executable, "-m", "emulator", "--package", str(package), "--fd", str(listener.fileno()),
                   "--data-dir", str(data_dir), "--project", project, "--deployment", deployment, "--exit-with-parent",
                   *args]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, pass_fds=(listener.fileno(),))
    emulator = Emulator(f"http://127.0.0.1:{port}", project, deployment, process, log_path, data_dir, token, secrets)
    if wait:
        try:
            wait_until_up(emulator)
        except BaseException:  # never left running when it did not come up (or the wait was interrupted)
            emulator.stop()
            raise
    return emulator


class EmulatorExited(RuntimeError):
    """The emulator process ended while it was awaited (its log says why)."""


class EmulatorSilent(RuntimeError):
    """The emulator did not give the awaited answer in time."""


class PackageDidNotStart(RuntimeError):
    """The emulator runs, but its package cannot be served (its `__init__` raised, its environment did
    not build…): `reason` says why, in the version's own words; the message adds the log's end."""

    def __init__(self, reason: str, log: str) -> None:
        super().__init__(f"{reason}\n(the end of the emulator's log:)\n{tail(log)}")
        self.reason = reason


def wait_for(emulator: Emulator, answer: Callable[[], T | None], seconds: float = STARTUP_SECONDS) -> T:
    """The first answer `answer()` gives other than None, asked every POLL_SECONDS while the emulator
    runs (a connection refused or an unreadable body counts as none yet)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if emulator.process is not None and emulator.process.poll() is not None:
            raise EmulatorExited(f"the emulator exited with {emulator.process.returncode}:\n{emulator.log()}")
        try:
            found = answer()
        except (httpx.TransportError, ValueError):
            found = None
        if found is not None:
            return found
        time.sleep(POLL_SECONDS)
    raise EmulatorSilent(f"the emulator did not answer within {seconds:g} s:\n{emulator.log()}")


def wait_until_up(emulator: Emulator, seconds: float = STARTUP_SECONDS) -> None:
    """Return once the emulator answers `/status`; stop it and raise (with its log) if it exits or stays silent."""
    try:
        wait_for(emulator, lambda: httpx.get(f"{emulator.api}/status", headers=emulator.headers, timeout=1).status_code == 200
                 or None, seconds)
    except EmulatorSilent:
        emulator.stop()
        raise


def still_running(emulator: Emulator) -> None:
    """Raise EmulatorExited if the emulator this process started has ended: its port was free again from
    then on, and what answered there since need not have been it."""
    if emulator.process is not None and emulator.process.poll() is not None:
        raise EmulatorExited(f"the emulator exited with {emulator.process.returncode} while it was in use: what answered "
                             "on its port since may have been another server\n(the end of the emulator's log:)\n"
                             f"{tail(emulator.log())}")


def wait_until_served(emulator: Emulator, seconds: float = SERVED_SECONDS) -> None:
    """Return once every version the emulator runs is available (`/readyz`); raise PackageDidNotStart,
    with the reason and the end of the log, if one cannot start."""
    def served() -> bool | None:
        answer = httpx.get(f"{emulator.url}/readyz", headers=emulator.headers, timeout=5)
        if answer.status_code == 200:
            return True
        failed = [v for v in answer.json().get("versions", []) if v["status"] == UNAVAILABLE]
        if failed:
            raise PackageDidNotStart(emulator.masked(failed[0]["error"]), emulator.log())
        return None

    wait_for(emulator, served, seconds)


@contextmanager
def running_emulator(package: Path, *args: str, project: str, deployment: str, token: str | None = None,
                     cwd: Path | None = None, secrets: Collection[str] = ()) -> Iterator[Emulator]:
    """An emulator serving `package` until the block ends, with its data in a temporary folder; once its
    package is served, or PackageDidNotStart says why not (the log goes with the folder). A block that ends
    with the emulator gone raises EmulatorExited (`still_running`)."""
    with tempfile.TemporaryDirectory(prefix="ubiops-emulator-") as workdir:
        emulator = start_emulator(package, Path(workdir), *args, project=project, deployment=deployment, token=token,
                                  cwd=cwd, secrets=secrets)
        try:
            wait_until_served(emulator)
            yield emulator
            still_running(emulator)
        finally:
            emulator.stop()


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The end of a log or a command's output: what a failed start or run printed last."""
    return "\n".join(text.splitlines()[-lines:])


def _file_part(value: Any) -> Any:
    if isinstance(value, (str, Path)):
        path = Path(value)
        return (path.name, path.read_bytes())
    return value

