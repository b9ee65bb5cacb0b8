"""The local emulator, started on the built zip: the package exactly as it will be uploaded.

It runs without the UbiOps token or host in its environment (nor do the tests run against it), so
nothing it does can reach UbiOps.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ubiops
from ubiops.utils.file_operations import MULTIPART_MIN_SIZE

from contract.config import DeployerConfig
from deployer.client import HOST_VARIABLE, UBIOPS_TOKEN_VARIABLE
from deployer.errors import DeployerError
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.launcher import (
    SERVED_SECONDS,
    Emulator,
    EmulatorExited,
    EmulatorSilent,
    PackageDidNotStart,
    start_emulator,
    still_running,
    tail,
    wait_until_served,
)

LOG_LINES = 30
"""How much of the emulator's log a failed start or sample request shows: a traceback's worth."""
START_SECONDS = SERVED_SECONDS
"""As long as the emulator itself may take to serve the zip (`emulator.launcher.SERVED_SECONDS`)."""
PRIVATE_VARIABLES = (UBIOPS_TOKEN_VARIABLE, HOST_VARIABLE, EMULATOR_TOKEN_VARIABLE)
MAX_UPLOAD_MB = MULTIPART_MIN_SIZE // 1024**2
"""The check's emulator takes bodies up to 4 GB (`--max-upload-mb`), the largest file UbiOps takes in one
upload, as the deployer does: with the emulator's default of 100 MB a larger sample input file failed the
check with a 413 that UbiOps would not give."""


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the UbiOps token and host, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if k not in PRIVATE_VARIABLES}, **extra}


@dataclass
class LocalEmulator:
    """The emulator serving the zip, and why its package does not start (None: it does)."""

    process: Emulator
    failure: str | None
    memory_mb: int
    """The memory each instance may use (`--instance-memory-mb`)."""

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def token(self) -> str:
        assert self.process.token, "a check's emulator requires one"
        return self.process.token

    @property
    def api(self) -> ubiops.CoreApi:
        return self.process.sdk()

    def log_end(self) -> str:
        """The last LOG_LINES lines of the emulator's log (a failed start's or request's traceback), to be
        shown before the check's scratch folder, the log's, goes."""
        return tail(self.process.log(), LOG_LINES)

    def restarted(self) -> None:
        """Wait until the version, restarted by a change, is served or cannot start."""
        self.failure = _wait_until_started(self.process)


@contextmanager
def local_emulator(config: DeployerConfig, zip_path: Path, workdir: Path, memory_mb: int) -> Iterator[LocalEmulator]:
    """Serve `zip_path` under the configured names, each instance limited to `memory_mb` of memory, until
    the block ends; waits until its version started. A block that ends with the emulator gone raises
    DeployerError: its port was free from then on, and another server may have answered the tests."""
    # A fresh token (the tests get it as $EMULATOR_TOKEN): without one, any user of this machine could
    # upload a package to it during the check, and run code as you.
    emulator = start_emulator(zip_path, workdir, "--version", config.emulator_version, "--environment", config.environment,
                              "--instance-memory-mb", str(memory_mb), "--max-upload-mb", str(MAX_UPLOAD_MB),
                              project=config.project, deployment=config.deployment, token=secrets.token_urlsafe(32),
                              env=clean_environment(), cwd=config.root, wait=False)
    try:
        yield LocalEmulator(emulator, _wait_until_started(emulator), memory_mb)
        try:
            still_running(emulator)
        except EmulatorExited as exc:
            raise DeployerError(f"the check cannot trust its answers (run it again): {exc}") from None
    finally:
        emulator.stop()


def _wait_until_started(emulator: Emulator) -> str | None:
    """None once the package is served; why not (its environment could not be built, or the deployment
    could not start), as the emulator says it, once it cannot start."""
    try:
        wait_until_served(emulator, START_SECONDS)
    except PackageDidNotStart as exc:
        return exc.reason
    except EmulatorExited:
        raise DeployerError(f"the emulator refused the zip:\n{tail(emulator.log(), LOG_LINES)}") from None
    except EmulatorSilent:
        raise DeployerError(f"the emulator did not start the package within {START_SECONDS:g} s (the time it may take "
                            "to answer, build the package's environment and run Deployment.__init__); its log ended:\n"
                            f"{tail(emulator.log(), LOG_LINES)}") from None  # the log's folder goes with the check
    return None
