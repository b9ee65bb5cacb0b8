"""The local emulator `check` starts: how long it waits for the package, and what fails the check (a
package that does not start in time, an emulator that ended while in use)."""

from __future__ import annotations

import json

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


def test_a_check_whose_emulator_ended_while_in_use_fails(project, tmp_path):
    """Its port is free once it has ended, and the tests and the sample request that followed may have
    been answered by another server that took it: the check passed on what answered."""
    config = load_config(project.root)
    with pytest.raises(DeployerError) as error, local_emulator(config, build_bundle(config).path, tmp_path,
                                                               INSTANCE_MEMORY_MB) as emulator:
        process = emulator.process.process
        assert process is not None and emulator.failure is None
        process.kill()
        process.wait()
    assert str(error.value).startswith("the check cannot trust its answers (run it again): the emulator exited with -9 "
                                       "while it was in use: what answered on its port since may have been another "
                                       "server\n(the end of the emulator's log:)\n"), error.value


def test_a_sample_input_file_over_the_emulators_default_upload_cap_passes_the_check(project):
    """The check's emulator kept the default `--max-upload-mb 100`: a larger sample file, which UbiOps
    takes, failed the check with a 413."""
    (project.package / "deployment.py").write_text(
        "import os\n\nclass Deployment:\n    def request(self, data):\n        return {'y': os.path.getsize(data['doc'])}\n")
    (project.package / "ubiops_input_spec.json").write_text(json.dumps([{"name": "doc", "data_type": "file"}]))
    size = 101 * 1024**2
    with (project.root / "large.bin").open("wb") as large:
        large.truncate(size)
    project.configure(sample_input={"doc": "large.bin"}, test_command='python -c "pass"')
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   sample request: completed in the emulator" in result.stdout
