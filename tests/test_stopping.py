"""How the emulator ends, and that nothing it started outlives it: a hangup stops it as SIGTERM does,
and when it is killed outright (SIGKILL), its instances, what their deployments started and their
temporary folders go with it."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

from harness import DEPLOYMENT, PROJECT, Emulator, eventually, free_port, start_emulator

from emulator.launcher import wait_until_served

GUARD_SECONDS = 30
"""How long a test waits for a step before failing: a guard against hanging, never reached."""


def test_a_hangup_stops_the_emulator_as_sigterm_does(tmp_path):
    """Closing the terminal that runs `make serve` (SIGHUP) ended the emulator at once: no log line, no
    clean-up (its instances' temporary folders stayed)."""
    emulator = start_emulator("minimal", tmp_path)
    try:
        wait_until_served(emulator)
        emulator.process.send_signal(signal.SIGHUP)
        assert emulator.process.wait(GUARD_SECONDS) == -signal.SIGHUP, "it exits by the signal it was stopped with"
    finally:
        kill(emulator)
    log = emulator.log()
    assert "Shutting down" in log and "Application shutdown complete" in log
    assert emulator.temp_dir is not None and list(emulator.temp_dir.iterdir()) == []


def test_nothing_an_instance_started_outlives_an_emulator_killed_outright(tmp_path):
    """The worker ended with its server, but a process its deployment started lived on, holding its port
    (the next start failed on it), and the instance's temporary folder stayed for good."""
    port = free_port()
    emulator = start_emulator("child_server", tmp_path, "--env", f"CHILD_PORT={port}")
    try:
        started = json.loads(emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="who").result)
        eventually(lambda: answers(port), "the deployment's own server listens")
        assert Path(started["scratch"]).is_file()
        emulator.process.kill()
        emulator.process.wait(GUARD_SECONDS)
    finally:
        kill(emulator)
    eventually(lambda: not alive(started["worker"]) and not alive(started["child"]), "the worker and its child end",
               seconds=GUARD_SECONDS)
    assert emulator.temp_dir is not None and list(emulator.temp_dir.iterdir()) == [], "the temporary folder is removed"
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free for the next start


def kill(emulator: Emulator) -> None:
    assert emulator.process is not None
    if emulator.process.poll() is None:
        emulator.process.kill()
        emulator.process.wait()


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended but not yet reaped by whoever adopted it, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
