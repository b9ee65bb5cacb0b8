"""The emulators the tools start for themselves (`emulator.launcher`: the `ubiops_emulator` fixture,
`deployer check`, `python -m emulator request`): served on a socket bound before the emulator starts, so
no other process can answer in its place, and a use that ends with the emulator gone fails."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from harness import DEPLOYMENT, PACKAGES, PROJECT, ROOT

from emulator import launcher

TOKEN = "a-token-for-the-launcher-tests"


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_no_other_process_can_take_the_port_before_the_emulator_serves_it(tmp_path, address):
    """The port was chosen free and let go, and the emulator bound it after a second of imports: a local
    user watching the process list (its `--port N`) bound it first, got the token with the first poll,
    answered every call, and `deployer check` passed a package that failed every request."""
    emulator = launcher.start_emulator(PACKAGES / "minimal", tmp_path, project=PROJECT, deployment=DEPLOYMENT,
                                       token=TOKEN, cwd=ROOT, wait=False)
    try:
        port = urlsplit(emulator.url).port
        assert port is not None
        with socket.socket() as hostile, pytest.raises(OSError) as refused:
            hostile.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server binds
            hostile.bind((address, port))
        assert refused.value.errno == errno.EADDRINUSE
        launcher.wait_until_up(emulator)
        assert emulator.sdk().service_status().status == "ok"
        assert emulator.process is not None and "--port" not in emulator.process.args
    finally:
        emulator.stop()


def test_a_block_that_ends_with_its_emulator_gone_raises(tmp_path):
    """Its port is free once it has ended, and what answered there since may have been another server:
    the fixture's tests and `emulator request` used it unwarned."""
    with pytest.raises(launcher.EmulatorExited) as error, launcher.running_emulator(
            PACKAGES / "minimal", project=PROJECT, deployment=DEPLOYMENT, token=TOKEN, cwd=ROOT) as emulator:
        assert emulator.process is not None
        emulator.process.kill()
        emulator.process.wait()
    assert str(error.value).startswith("the emulator exited with -9 while it was in use: what answered on its port "
                                       "since may have been another server\n"), error.value


@pytest.mark.parametrize("args, message", [
    (["--fd", "0"], "--fd 0 is not an open TCP socket listening for connections"),  # stdin, /dev/null here
    (["--fd", "99"], "--fd 99 is not an open TCP socket listening for connections"),
    (["--fd", "0", "--port", "9000"], "--fd serves a socket already bound: leave out --host and --port"),
])
def test_an_fd_that_cannot_be_served_is_refused_at_start(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", str(PACKAGES / "plain"), "--data-dir",
                          str(tmp_path / "data"), *args], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_an_fd_of_a_tcp_socket_not_listening_is_refused_at_start(tmp_path):
    """An unbound socket was served on every interface (its port logged as 0); a connected one on no port at all."""
    with socket.socket() as unbound:
        fd = unbound.fileno()
        run = subprocess.run([sys.executable, "-m", "emulator", "--package", str(PACKAGES / "plain"), "--data-dir",
                              str(tmp_path / "data"), "--fd", str(fd)], cwd=ROOT, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60, pass_fds=(fd,))
    assert run.returncode == 2, run.stderr
    assert f"--fd {fd} is not an open TCP socket listening for connections" in run.stderr, run.stderr
