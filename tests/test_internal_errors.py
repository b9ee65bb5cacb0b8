"""A bug in the emulator, as a client meets it. The emulator's app is served by uvicorn in this process,
the one place where a route that fails can be added: the emulator has none, on purpose."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from harness import PACKAGES, eventually, free_port

from emulator.__main__ import parse_args
from emulator.app import create_app


@pytest.fixture
def failing_emulator(tmp_path) -> Iterator[str]:
    """The URL of a served emulator that has a route that fails, `/v2.1/fail`, beside its own."""
    port = free_port()
    app = create_app(parse_args(["--package", str(PACKAGES / "minimal"), "--data-dir", str(tmp_path / "data"),
                                 "--port", str(port), "--own-python"]))

    async def fail() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v2.1/fail", fail)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = threading.Thread(target=server.run)
    serving.start()
    try:
        eventually(lambda: server.started or not serving.is_alive(), "uvicorn started")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        serving.join()


def client_address(response: httpx.Response) -> tuple[str, int]:
    """The client's end of the connection that carried `response`."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_a_bug_is_a_500_logged_once_and_the_connection_stays_open(failing_emulator, caplog):
    """Starlette's catch-all raised the error again once it had answered: uvicorn logged its traceback a
    second time and closed the connection, which the client's next call found closed."""
    with caplog.at_level(logging.INFO), httpx.Client() as client:
        failed = client.get(f"{failing_emulator}/v2.1/fail")
        failed_on = client_address(failed)
        live = client.get(f"{failing_emulator}/livez")
        assert client_address(live) == failed_on, "the next call went on the same connection"
    assert (failed.status_code, failed.json()) == (500, {"error": "Internal error in the emulator; see its log"})
    assert live.status_code == 200
    tracebacks = [record.getMessage() for record in caplog.records if record.exc_info]
    assert tracebacks == ["internal error on GET '/v2.1/fail'"]
