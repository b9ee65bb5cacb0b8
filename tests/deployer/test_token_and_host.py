"""The token and the host, when they are not what they should be: a token (or a secret variable's value)
never printed nor shipped however it is written, and a host that does not answer ends the command
instead of holding it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote, quote_plus

import pytest
from conftest import TOKEN, Replying, http_server

from contract.config import DeployerConfig
from contract.spec import parse_fields
from deployer import client
from deployer.client import Api, scrubbed
from deployer.errors import DeployerError
from deployer.inputs import upload_inputs
from deployer.variables import configured_variables, ship_variables


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
    assert message.startswith(f"the UbiOps API at {silent_host} did not answer project 'x' in time (") and \
        "timed out" in message and message.endswith("; it may still have done it"), message
    assert TOKEN not in message


@contextmanager
def answering(answer: Callable[[int], tuple[int, dict[str, str], object]]) -> Iterator[tuple[str, list[bytes]]]:
    """A real local HTTP server that answers its n-th call (any method) with `answer(n)`: the status,
    headers and JSON body; its API's URL, and the bodies of the calls it received."""
    received: list[bytes] = []

    class Answering(Replying):
        def do_GET(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            status, headers, body = answer(len(received))
            self.reply(status, {**headers, "Content-Type": "application/json"}, json.dumps(body).encode())

        do_POST = do_GET

    with http_server(Answering) as url:
        yield url, received


@pytest.fixture
def storage_on_silent_host(silent_host) -> Iterator[str]:
    """An API that answers every upload call with a signed URL on the silent host, as UbiOps' point at
    its bucket storage."""
    url = f"{silent_host.removesuffix('/v2.1')}/default/deployer/portrait.jpg?signature=private-signature"
    with answering(lambda _call: (201, {}, {"url": url, "provider": "ubiops"})) as (api, _received):
        yield api


def raised_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """What `call` raised (None when it returned); a call still running after `seconds` fails the test
    rather than holding it (the silent host's teardown then ends the call)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("silent, message", [
    ("api", "the UbiOps API at {silent_host} did not answer "),
    ("storage", "cannot upload portrait.jpg to the bucket's storage at {storage} (timed out)"),
], ids=["api", "storage"])
def test_a_file_upload_to_a_host_that_never_answers_ends_with_one_line(silent, message, silent_host, storage_on_silent_host,
                                                                         tmp_path, monkeypatch):
    """`request --file` and the sample requests upload files: the call for the signed URL and the PUT
    to it are bounded like every other call (the SDK's `upload_file` waited for ever on either)."""
    monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")
    monkeypatch.setenv("UBIOPS_API_HOST", silent_host if silent == "api" else storage_on_silent_host)
    monkeypatch.setattr(client, "REQUEST_TIMEOUT_SECONDS", (1, 1))  # UbiOps' calls get (10, 120)
    (tmp_path / "portrait.jpg").write_bytes(b"\xff\xd8 a portrait")
    spec = parse_fields([{"name": "img", "data_type": "file"}])
    api = Api()
    try:
        error = raised_within(30, lambda: upload_inputs(api, "p", spec, {"img": "portrait.jpg"}, tmp_path))
    finally:
        api.close()
    assert isinstance(error, DeployerError), error
    text = str(error)
    assert text.startswith(message.format(silent_host=silent_host, storage=silent_host.removesuffix("/v2.1"))), text
    assert len(text.splitlines()) == 1 and "timed out" in text
    assert TOKEN not in text and "private-signature" not in text


@pytest.fixture
def rate_limited_host(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[bytes]]]:
    """A host that refuses every call with 429 and the headers the test is parametrized with; its URL
    and the calls it refused."""
    with answering(lambda _call: (429, request.param, {"error": "Too many requests"})) as served:
        yield served


@pytest.mark.parametrize("rate_limited_host, calls, wait, error", [
    ({"Retry-After": "1"}, 4, 1, "429: UbiOps still refused project 'emulator-tests' as rate-limited after 3 retries"),
    ({"x-ratelimit-reset": "0"}, 4, 1, "429: UbiOps still refused project 'emulator-tests' as rate-limited after 3 retries"),
    ({"Retry-After": "3600"}, 1, None, "429: UbiOps refused project 'emulator-tests' as rate-limited and asks to wait 3600 s"),
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 4, 0,
     "429: UbiOps still refused project 'emulator-tests' as rate-limited after 3 retries"),
], ids=["retry-after", "x-ratelimit-reset", "too-long", "retry-after-past-date"], indirect=["rate_limited_host"])
def test_a_rate_limited_call_is_retried_a_few_times_as_asked_then_stops_with_one_line(project, rate_limited_host, calls,
                                                                                       wait, error):
    """The SDK retried a 429 without end, each time after UbiOps' `x-ratelimit-reset` or a minute, so a
    limit that did not lift held a push for ever: a few retries, each after the wait asked for."""
    url, refused = rate_limited_host
    started = time.monotonic()
    result = project.run("status", env={"UBIOPS_API_HOST": url})
    assert result.returncode == 1 and len(refused) == calls
    retries = [line for line in result.stdout.splitlines() if "rate-limited (429)" in line]
    assert retries == [f"  rate-limited (429): deployments_list again in {wait} s (retry {n} of 3)" for n in range(1, calls)]
    assert time.monotonic() - started >= (wait or 0) * (calls - 1), "each wait is slept (never shorter than asked)"
    assert result.stderr.strip().splitlines() == [f"deployer: error: {error}; try again later"]
    assert TOKEN not in result.stdout + result.stderr


def test_a_retry_after_date_is_the_wait_until_then():
    """RFC 9110 lets `Retry-After` be an HTTP date; it was taken for no answer, so the SDK's minute (a
    date past asks for no wait: the test above)."""
    then = datetime.now(UTC) + timedelta(hours=1)
    assert 3590 < client._rate_limit_wait({"Retry-After": format_datetime(then, usegmt=True)}) <= 3600


def test_an_upload_refused_as_rate_limited_is_sent_again_whole(tmp_path, monkeypatch):
    """The SDK's own retry of a multipart upload failed ("Cannot prepare a request message": the
    first attempt had changed its headers); the deployer's sends the file again."""
    zip_path = tmp_path / "package.zip"
    zip_path.write_bytes(b"the package's bytes")
    created = {"success": True, "revision": "r1", "build": "b1"}
    with answering(lambda call: (429, {"Retry-After": "0"}, {}) if call == 1 else (201, {}, created)) as (url, received):
        monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")
        monkeypatch.setenv("UBIOPS_API_HOST", url)
        api = Api(say=lambda _line: None)
        try:
            revision = api.write("version 'v1'", "revisions_file_upload", "p", "d", "v1", file=str(zip_path))
        finally:
            api.close()
    assert revision.revision == "r1"
    assert len(received) == 2 and all(b"the package's bytes" in body for body in received)


@pytest.mark.parametrize("secret", ["deployer-secret-value-3c9d1e", 'a "quoted" sécret\\value'], ids=["plain", "json-escaped"])
def test_an_error_quoting_the_request_never_shows_a_secret_value(secret, monkeypatch):
    """A server's error may quote the body it refused: the secret's value in it is masked as the
    token's key is, also as JSON spells it (it was printed, only the token was masked)."""
    monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")
    monkeypatch.setenv("API_KEY", secret)
    config = DeployerConfig(secrets=("API_KEY",))
    with answering(lambda call: (500, {}, {"error": f"invalid body {received[call - 1].decode()}"})) as (url, received):
        monkeypatch.setenv("UBIOPS_API_HOST", url)
        api = Api()
        try:
            with pytest.raises(DeployerError) as error:
                ship_variables(api, config, "v1", configured_variables(config), exists=False, say=lambda _line: None)
        finally:
            api.close()
    assert len(received) == 1 and b"API_KEY" in received[0]
    message = str(error.value)
    assert message.startswith("500: version 'v1': invalid body {") and '"value": "***"' in message, message
    assert secret not in message and json.dumps(secret)[1:-1] not in message, message


@pytest.mark.parametrize("host", ["", "  "])
def test_an_empty_host_is_the_default_one(host, monkeypatch):
    """`UBIOPS_API_HOST=""` (a CI variable left unset) was taken as the host: "cannot reach the UbiOps
    API at  (MissingSchema…)"."""
    monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")
    monkeypatch.setenv("UBIOPS_API_HOST", host)
    api = Api()
    try:
        assert api.host == "https://api.ubiops.com/v2"  # the SDK's own default
    finally:
        api.close()


def test_each_line_of_a_multi_line_secret_is_masked():
    """A PEM key is logged line by line: each of its lines (of at least MIN_SECRET_LENGTH) was shown."""
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
    log = "\n".join(f"2024-01-01 INFO [v1] {line}" for line in pem.splitlines())
    shown = scrubbed(log, [pem])
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in shown and "BKcwggSjAgEAAoIBAQC7" not in shown, shown
    assert shown.count("***") == 4, shown


@pytest.mark.parametrize("spell", [lambda s: quote(s, safe=""), quote, quote_plus, lambda s: ascii(s)[1:-1],
                                   lambda s: s.encode("unicode_escape").decode()],
                         ids=["quote-all", "quote", "quote_plus", "ascii", "unicode_escape"])
def test_a_url_encoded_or_python_escaped_secret_is_masked(spell):
    """A requests HTTPError quotes the URL, whose query may hold the key URL-encoded; Python's `ascii()`
    escapes what is not ASCII: both were shown in clear."""
    secret = "k3y/with spaces+plus&é\\"
    text = f"404 Client Error: Not Found for url: https://api.example.com/v1?key={spell(secret)}&x=1"
    shown = scrubbed(text, [secret])
    assert shown == "404 Client Error: Not Found for url: https://api.example.com/v1?key=***&x=1", shown
