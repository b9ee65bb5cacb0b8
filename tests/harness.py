"""The test harness: the real emulator (`python -m emulator` under uvicorn) on a free port, called over
HTTP with the real `ubiops` SDK (and httpx where the SDK has no call).

The emulator's own tests serve the small packages of `tests/packages/` under names of their own,
whatever `deployment_package/` and `[tool.deployer]` hold: replacing the deployment never breaks them.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from emulator import launcher

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = Path(__file__).resolve().parent / "packages"
PROJECT, DEPLOYMENT = "emulator-tests", "under-test"

__all__ = ["DEPLOYMENT", "PACKAGES", "PROJECT", "ROOT", "Emulator", "eventually", "free_port", "metric_values",
           "package_folder", "start_emulator", "wait_for_log", "zip_bytes"]


@dataclass
class Emulator(launcher.Emulator):
    """A running `python -m emulator` process with a TMPDIR of its own, to see what it leaves behind."""

    temp_dir: Path | None = None


def start_emulator(package: Path | str, tmp: Path, *args: str, token: str | None = None, wait: bool = True,
                   data_dir: Path | None = None, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Emulator:
    """Start the emulator on `package` (a folder under tests/packages, or a path) as PROJECT/DEPLOYMENT,
    with its own data folder (unless `data_dir` names one, to restart on it) and TMPDIR, and `env`
    added to its environment, listening on `host`, and wait until it answers."""
    package = PACKAGES / package if isinstance(package, str) else package
    temp_dir = Path(tempfile.mkdtemp(prefix="tmp-", dir=tmp))
    started = launcher.start_emulator(package, tmp, *args, project=PROJECT, deployment=DEPLOYMENT, token=token,
                                     env={**os.environ, **(env or {}), "TMPDIR": str(temp_dir)}, cwd=ROOT, wait=wait, data_dir=data_dir,
                                     host=host)
    return Emulator(**{f.name: getattr(started, f.name) for f in fields(launcher.Emulator)}, temp_dir=temp_dir)


def free_port() -> int:
    """A port free now, let go at once: for a server of a test or a benchmark that binds its own. Another
    process may take it before that server binds it; the emulators started here get a socket bound for
    them instead (`launcher.listening_socket`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def package_folder(folder: Path, code: str, inputs: str, outputs: str) -> Path:
    """A package written for one test: `deployment.py` holding `code`, and its input and output specs
    (JSON text)."""
    folder.mkdir(parents=True)
    (folder / "deployment.py").write_text(code)
    (folder / "ubiops_input_spec.json").write_text(inputs)
    (folder / "ubiops_output_spec.json").write_text(outputs)
    return folder


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


def eventually(probe: Callable[[], T], what: str, seconds: float = 30) -> T:
    """The first truthy answer of `probe`, polled until `seconds` have passed (then the test fails, saying `what`)."""
    deadline = time.monotonic() + seconds
    while not (answer := probe()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)
    return answer


def wait_for_log(emulator: launcher.Emulator, text: str, seconds: float = 10) -> str:
    """The emulator's log once it holds `text` (its output reaches the log asynchronously)."""
    deadline = time.monotonic() + seconds
    while text not in (log := emulator.log()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the emulator log:\n{log[-3000:]}")
        time.sleep(0.05)
    return log


def metric_values(exposition: str) -> Callable[..., float]:
    """A Prometheus text exposition, read by prometheus_client's own parser: `values(name, **labels)` is
    the sample of that name with exactly those labels, 0 when there is none (a counter never counted)."""
    samples = {(sample.name, frozenset(sample.labels.items())): sample.value
               for family in text_string_to_metric_families(exposition) for sample in family.samples}
    return lambda name, **labels: samples.get((name, frozenset(labels.items())), 0.0)


@contextlib.contextmanager
def hangups(disposition: signal.Handlers) -> Iterator[None]:
    """SIGHUP's disposition in this process, which a process started meanwhile inherits (`nohup` starts
    one with SIG_IGN; a test run under nohup would otherwise start every emulator so)."""
    previous = signal.signal(signal.SIGHUP, disposition)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def ignored_signals(pid: int) -> set[str]:
    """The signals process `pid` ignores, from the kernel's own mask (/proc: `SigIgn`)."""
    mask = next(int(line.split()[1], 16) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("SigIgn:"))
    return {signal.Signals(number).name for number in range(1, 32) if mask & (1 << (number - 1))}


def ended(process: subprocess.Popen[str], seconds: float = 30) -> tuple[str, str]:
    """`process.communicate()` within `seconds`; past them the process is killed, rather than left
    running after its test failed (a deployer a test had interrupted in vain kept pushing), and
    TimeoutExpired raised."""
    try:
        return process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
