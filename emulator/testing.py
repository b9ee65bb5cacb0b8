"""Test a deployment package against a real local UbiOps, in three lines (a pytest plugin, loaded
by the `pytest11` entry point, so any test in the project can use its fixture):

    def test_predicts(ubiops_emulator):
        answer = ubiops_emulator.request({"features": [5.1, 3.5, 1.4, 0.2]})
        assert answer["status"] == "completed" and answer["result"]["label"] == "setosa"

`ubiops_emulator` serves the package `[tool.deployer]` names (or `$EMULATOR_PACKAGE`, a folder or
zip) in a real `python -m emulator` process on a free port, under the configured names. Under
`python -m deployer check`, `$EMULATOR_URL` is set and the fixture uses the emulator the check
started on the built zip instead, so the same tests run against exactly the bytes to be uploaded.
Outside pytest, `emulator.launcher.running_emulator` is the same as a context manager.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.config import load_config, secret_values
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.launcher import Emulator, running_emulator

URL_VARIABLE = "EMULATOR_URL"
PACKAGE_VARIABLE = "EMULATOR_PACKAGE"


@pytest.fixture(scope="session")
def ubiops_emulator() -> Iterator[Emulator]:
    """The project's package served by a local UbiOps (see the module's docstring)."""
    config = load_config()
    token = os.environ.get(EMULATOR_TOKEN_VARIABLE) or None
    if os.environ.get(URL_VARIABLE):
        emulator = Emulator(os.environ[URL_VARIABLE], config.project, config.deployment, token=token)
        yield emulator
        emulator.stop()
        return
    package = Path(os.environ.get(PACKAGE_VARIABLE) or config.package_path)
    # Its own emulator always requires a token (a fresh one, unless $EMULATOR_TOKEN names one): without
    # one, any user of this machine could upload a package to it while the tests run, and run code as you.
    with running_emulator(package, "--version", config.emulator_version, project=config.project,
                          deployment=config.deployment, token=token or secrets.token_urlsafe(32), cwd=config.root,
                          secrets=secret_values(config).values()) as emulator:
        yield emulator

