"""The local emulator `check` starts, when the package does not start in time."""

from __future__ import annotations

import pytest

from contract.config import load_config
from deployer import emulated
from deployer.bundle import build_bundle
from deployer.emulated import local_emulator
from deployer.errors import DeployerError
from emulator.runtime.instance import START_TIMEOUT_SECONDS
from emulator.runtime.python_envs import BUILD_SECONDS
from emulator.settings import INSTANCE_MEMORY_MB


def test_check_waits_as_long_as_the_emulator_lets_a_package_start():
    """The emulator builds the environment (up to BUILD_SECONDS) and then gives `__init__` its
    `--start-timeout`: `check` gave up after 120 s, failing a first cold start the emulator would serve."""
    assert emulated.START_SECONDS >= BUILD_SECONDS + START_TIMEOUT_SECONDS


def test_a_package_that_does_not_start_in_time_is_reported_with_its_log(project, tmp_path, monkeypatch):
    """The message holds the log's last lines: the folder it was in goes with the check (it once
    named that file, already removed)."""
    (project.package / "deployment.py").write_text(
        "import time\n\nclass Deployment:\n    def __init__(self):\n        time.sleep(60)\n\n"
        "    def request(self, data):\n        return data\n")
    monkeypatch.setattr(emulated, "START_SECONDS", 8)  # 8 s: time to log its start on a busy machine
    config = load_config(project.root)
    with pytest.raises(DeployerError) as error, local_emulator(config, build_bundle(config).path, tmp_path, INSTANCE_MEMORY_MB):
        pass
    message = str(error.value)
    assert message.startswith("the emulator did not start the package within 8 s (the time it may take to answer, build "
                              "the package's environment and run Deployment.__init__); its log ended:\n"), message
    assert "starting (pid" in message and ".log" not in message
