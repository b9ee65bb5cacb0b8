"""The local emulator `check` starts, when the package does not start in time."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from conftest import Replying, http_server

from contract.config import load_config
from deployer import emulated
from deployer.bundle import build_bundle
from deployer.emulated import local_emulator
from deployer.errors import DeployerError
from emulator import launcher
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


class Tokenless(Replying):
    """Another server on the port, as an emulator started without a token answers: 200 to everything."""

    def do_GET(self) -> None:
        self.reply(200, {"Content-Type": "application/json"}, json.dumps({"status": "ready"}).encode())


def test_another_server_on_the_check_emulators_port_is_refused(project, tmp_path, monkeypatch):
    """The port is chosen free, then let go before the emulator binds it: a server that took it meanwhile
    answered `/readyz` with 200, and the check ran the tests against bytes it had never started."""
    config = load_config(project.root)
    with http_server(Tokenless) as url:
        port = urlsplit(url).port
        assert port is not None
        monkeypatch.setattr(launcher, "free_port", lambda: port)
        with pytest.raises(DeployerError) as error, local_emulator(config, build_bundle(config).path, tmp_path, INSTANCE_MEMORY_MB):
            pass
    assert str(error.value) == (f"the server on http://127.0.0.1:{port} is not the emulator started on it (with its token: "
                                "200, without: 200, not 200 and 401): another server took its port; the check cannot "
                                "trust its answers: run it again")


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
