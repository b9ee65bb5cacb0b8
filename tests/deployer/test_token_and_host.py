"""The token and the host, when they are not what they should be: a token never printed nor shipped
however it is written, and a host that does not answer ends the command instead of holding it."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import TOKEN

from deployer import client
from deployer.client import Api
from deployer.errors import DeployerError


def test_a_token_with_a_line_break_is_refused_without_printing_it(project):
    token = "Token first-half-of-the-key\nsecond-half-of-the-key"
    result = project.run("status", token=token)
    assert result.returncode == 1
    assert result.stderr.strip() == ("deployer: error: UBIOPS_API_TOKEN holds spaces, line breaks or other characters "
                                     "a token has not: export it as UbiOps shows it ('Token <key>')")
    assert "half-of-the-key" not in result.stdout + result.stderr


def test_a_file_holding_the_key_of_a_token_written_with_its_prefix_is_refused(project):
    """UbiOps shows tokens as `Token <key>`; a file holds the key (`API_KEY = "<key>"`)."""
    (project.package / "settings.py").write_text(f"API_KEY = '{TOKEN}'\n")
    result = project.run("package", token=f"Token {TOKEN}")
    assert result.returncode == 1
    assert result.stderr.strip() == ("deployer: error: settings.py contains the value of UBIOPS_API_TOKEN; "
                                     "remove it or list the file in .ubiops-ignore")


@pytest.fixture
def silent_host():
    """A host that takes connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    taken: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                taken.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v2.1"
    stop.set()
    thread.join()
    for connection in [*taken, listener]:
        connection.close()


def test_a_host_that_never_answers_ends_the_call_with_one_line(silent_host, monkeypatch):
    monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")
    monkeypatch.setenv("UBIOPS_API_HOST", silent_host)
    monkeypatch.setattr(client, "REQUEST_TIMEOUT_SECONDS", (1, 1))  # UbiOps' calls get (10, 120)
    api = Api()
    try:
        with pytest.raises(DeployerError) as error:
            api.read("project 'x'", "projects_get", "x")
    finally:
        api.close()
    message = str(error.value)
    assert message.startswith(f"cannot reach the UbiOps API at {silent_host} (") and "timed out" in message, message
    assert TOKEN not in message
