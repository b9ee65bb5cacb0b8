"""How the emulator ends, and that nothing it started outlives it: a hangup stops it as SIGTERM does,
and when it is killed outright (SIGKILL), its instances, what their deployments started, their
temporary folders and an environment's install in progress go with it."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import ubiops
from harness import (
    DEPLOYMENT,
    PACKAGES,
    PROJECT,
    Emulator,
    eventually,
    free_port,
    hangups,
    ignored_signals,
    start_emulator,
    wait_for_log,
)

from emulator.launcher import wait_until_served

GUARD_SECONDS = 30
"""How long a test waits for a step before failing: a guard against hanging, never reached."""


def test_a_hangup_stops_the_emulator_as_sigterm_does(tmp_path):
    """Closing the terminal that runs `make serve` (SIGHUP) ended the emulator at once: no log line, no
    clean-up (its instances' temporary folders stayed)."""
    with hangups(signal.SIG_DFL):
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


def test_an_emulator_started_with_hangups_ignored_keeps_serving_after_one(tmp_path):
    """`nohup make serve &` asks for hangups to be ignored: the emulator handled SIGHUP as SIGTERM all the
    same, and ended with the terminal it was started from."""
    with hangups(signal.SIG_IGN):
        emulator = start_emulator("minimal", tmp_path)
    try:
        assert "SIGHUP" in ignored_signals(emulator.process.pid), "still ignored once it serves"
        emulator.process.send_signal(signal.SIGHUP)
        assert emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="after").status == "completed"
        emulator.process.send_signal(signal.SIGTERM)
        assert emulator.process.wait(GUARD_SECONDS) == -signal.SIGTERM
    finally:
        kill(emulator)


def test_a_second_ctrl_c_stops_at_once_saying_so_in_one_line(tmp_path):
    """A second Ctrl-C while uvicorn waited for an open connection (its forced exit) left the app's lifespan to
    be cancelled as the event loop closed: an ERROR traceback (CancelledError) in the log, the app's own
    clean-up skipped, and a KeyboardInterrupt's traceback after it (after a single Ctrl-C too)."""
    emulator = start_emulator("minimal", tmp_path)
    try:
        wait_until_served(emulator)
        path = urlsplit(emulator.requests_url()).path
        with socket.create_connection(("127.0.0.1", urlsplit(emulator.url).port), timeout=GUARD_SECONDS) as sending:
            # A request whose body is still arriving: uvicorn waits for its connection once stopped. `100 Continue`
            # comes once the app reads the body, so the request is under way before the first Ctrl-C.
            sending.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Content-Length: 100\r\nExpect: 100-continue\r\n\r\n".encode())
            assert b"100 Continue" in sending.recv(1024)
            emulator.process.send_signal(signal.SIGINT)
            wait_for_log(emulator, "Waiting for connections to close", seconds=GUARD_SECONDS)
            emulator.process.send_signal(signal.SIGINT)
            assert emulator.process.wait(GUARD_SECONDS) == -signal.SIGINT, "it exits by the signal it was stopped with"
    finally:
        kill(emulator)
    log = emulator.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    assert log.count("Interrupted again: stopping now, without waiting for open connections; requests cut off: 1") == 1, log
    assert "Application shutdown complete" in log, "the app's own clean-up ran"


def test_nothing_an_instance_started_outlives_an_emulator_killed_outright(tmp_path):
    """The worker ended with its server, but a process its deployment started lived on, holding its port
    (the next start failed on it), and the instance's temporary folder stayed for good."""
    port = free_port()
    emulator = start_emulator("child_server", tmp_path, "--env", f"CHILD_PORT={port}")
    started: dict[str, int] = {}
    try:
        started = json.loads(emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="who").result)
        eventually(lambda: answers(port), "the deployment's own server listens")
        assert Path(started["scratch"]).is_file()
        emulator.process.kill()
        emulator.process.wait(GUARD_SECONDS)
        eventually(lambda: not alive(started["worker"]) and not alive(started["child"]), "the worker and its child end",
                   seconds=GUARD_SECONDS)
    finally:
        kill(emulator)
        end([started.get("worker", 0), started.get("child", 0)])
    assert emulator.temp_dir is not None and list(emulator.temp_dir.iterdir()) == [], "the temporary folder is removed"
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free for the next start


@pytest.mark.parametrize("detach, stop", [("session", signal.SIGKILL), ("group", signal.SIGTERM), ("daemon", signal.SIGKILL)])
def test_a_server_the_deployment_started_out_of_the_worker_s_group_ends_with_its_instance(tmp_path, detach, stop):
    """A model server started with `start_new_session=True`, `os.setpgrp` or a daemon's double fork, out of the worker's
    process group, outlived its instance, holding its port: after a crash or a cancelled request, the new instance's
    `__init__` failed on it and the version stayed unavailable; it outlived the emulator stopped (SIGTERM) or killed
    outright (SIGKILL) too, and the next emulator's instance failed as well."""
    port = free_port()
    emulator = start_emulator("detached_server", tmp_path, "--env", f"CHILD_PORT={port}", "--env", f"CHILD_DETACH={detach}")
    api = emulator.sdk()
    seen: list[int] = []
    try:
        first = serving(api, seen)
        crashed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="crash")
        assert crashed.error_message == "The instance stopped (exit code 3) while handling the request; it is being restarted"
        second = serving(api, seen)  # the restarted instance's own server, on the same port
        assert not alive(first["server"])
        (hanging,) = api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=["hang"])
        eventually(lambda: api.deployment_requests_get(PROJECT, DEPLOYMENT, hanging.id, metadata_only=True).status
                   == "processing", "the request runs")
        api.deployment_requests_update(PROJECT, DEPLOYMENT, hanging.id, {"status": "cancelled"})  # the instance is killed
        serving(api, seen)
        assert not alive(second["server"])
        emulator.process.send_signal(stop)
        assert emulator.process.wait(GUARD_SECONDS) == -stop
        eventually(lambda: not any(alive(pid) for pid in seen), "the instance's processes end", seconds=GUARD_SECONDS)
    finally:
        kill(emulator)
        end(seen)
    assert emulator.temp_dir is not None and list(emulator.temp_dir.iterdir()) == [], "the temporary folder is removed"
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free for the next start


def test_a_worker_holding_the_gil_ends_with_the_emulator_killed_outright(tmp_path):
    """The worker's thread that watched for its server's end could not run while the deployment held the GIL in a C
    call: the worker ran on, orphaned, until the call returned (here never), and then saved the request's output
    files in a data folder a new emulator may own."""
    gate = tmp_path / "in-the-call"
    emulator = start_emulator("detached_server", tmp_path, "--env", f"CHILD_PORT={free_port()}", "--env",
                              "CHILD_DETACH=session")
    api = emulator.sdk()
    seen: list[int] = []
    try:
        started = serving(api, seen)
        api.batch_deployment_requests_create(PROJECT, DEPLOYMENT, data=[f"gil {gate}"])
        eventually(gate.exists, "the worker is in the C call, which has started a shell")
        seen += descendants(started["worker"])  # the shell, which becomes its sleep
        emulator.process.kill()
        emulator.process.wait(GUARD_SECONDS)
        eventually(lambda: not any(alive(pid) for pid in seen), "the instance's processes end", seconds=GUARD_SECONDS)
    finally:
        kill(emulator)
        end(seen)
    assert emulator.temp_dir is not None and list(emulator.temp_dir.iterdir()) == [], "the temporary folder is removed"


def serving(api: ubiops.CoreApi, seen: list[int]) -> dict[str, int]:
    """The process ids of the worker and of the model server its deployment started (added to `seen`)."""
    request = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="who")
    assert request.status == "completed", request.error_message
    started = json.loads(request.result)
    seen += started.values()
    return started


def test_an_install_in_progress_ends_with_an_emulator_killed_outright(tmp_path):
    """uv ran in a session of its own, so it could be stopped with what it started: killed outright, the
    emulator left it installing (here for 600 s, waiting for a package index that never answers)."""
    silent = socket.create_server(("127.0.0.1", 0))  # a package index that accepts the connection and never answers
    package = tmp_path / "package"
    package.mkdir()
    (package / "deployment.py").write_bytes((PACKAGES / "minimal" / "deployment.py").read_bytes())
    (package / "requirements.txt").write_text(f"--index-url http://127.0.0.1:{silent.getsockname()[1]}/simple/\n"
                                              "humanize==4.12.1\n")
    emulator = start_emulator(package, tmp_path, "--environments-dir", str(tmp_path / "environments"),
                              env={"UV_HTTP_TIMEOUT": "600"})
    installing: list[int] = []
    try:
        silent.settimeout(GUARD_SECONDS)
        connection, _ = silent.accept()  # uv asks the index: the install is under way
        installing = descendants(emulator.process.pid)
        assert any("install" in command_line(pid) for pid in installing), installing
        emulator.process.kill()
        emulator.process.wait(GUARD_SECONDS)
        eventually(lambda: not any(alive(pid) for pid in installing), "the installer ends with the emulator",
                   seconds=GUARD_SECONDS)
        connection.close()
    finally:
        kill(emulator)
        end(installing)
        silent.close()


def kill(emulator: Emulator) -> None:
    assert emulator.process is not None
    if emulator.process.poll() is None:
        emulator.process.kill()
        emulator.process.wait()


def end(pids: list[int]) -> None:
    """Kill what a failed test left running."""
    for pid in pids:
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


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


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs, now."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found
