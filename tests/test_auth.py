"""The optional token: with one set, every call needs it; signed file URLs do not."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, ROOT, free_port, start_emulator, wait_for_log

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def guarded(emulators):
    """With the access log on: it logs every call, where a token would leak."""
    return emulators("echo", "--access-log", token=TOKEN)


@pytest.mark.parametrize("headers, message", [
    ({}, "Authentication credentials were not provided."),
    ({"Authorization": "Token wrong"}, "Invalid token."),
    ({"Authorization": TOKEN}, "Invalid token."),
    ({"Authorization": f"Basic {TOKEN}"}, "Invalid token."),
])
def test_calls_without_the_right_token_are_401(guarded, headers, message):
    for url in (f"{guarded.api}/status", f"{guarded.api}/projects", f"{guarded.url}/docs", f"{guarded.url}/openapi.json"):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401 and response.json() == {"error": message}


def test_sdk_with_the_token_works_with_either_prefix_style(guarded):
    assert guarded.sdk(token=TOKEN).projects_list()[0].name == PROJECT
    assert guarded.sdk(token=f"Token {TOKEN}").service_status().status == "ok"
    config = ubiops.Configuration(host=guarded.api, api_key={"Authorization": TOKEN}, api_key_prefix={"Authorization": "Bearer"})
    with ubiops.ApiClient(config) as client:
        assert ubiops.CoreApi(client).service_status().status == "ok"


def test_sdk_with_a_wrong_token_raises_401(guarded):
    with pytest.raises(ubiops.ApiException) as error:
        guarded.sdk(token="nope").deployments_get(PROJECT, DEPLOYMENT)
    assert error.value.status == 401 and "Invalid token." in error.value.body


def test_token_never_reaches_the_log(guarded):
    """The access line masked a credential by its parameter's name alone, as written: `?Token=`, `?key=`
    and `?x=` showed the token in clear."""
    httpx.get(f"{guarded.api}/status", headers={"Authorization": f"Token {TOKEN}"})
    httpx.get(f"{guarded.api}/status", headers={"Authorization": "Token wrong-guess"})
    # refused (a token is a header), but logged as sent
    for query in ("token", "access_token", "Token", "key", "x"):
        assert httpx.get(f"{guarded.api}/projects?limit=1&{query}={TOKEN}").status_code == 401
    assert httpx.get(f"{guarded.api}/projects?limit=1&x=%{ord(TOKEN[0]):x}{TOKEN[1:]}").status_code == 401
    assert httpx.get(f"{guarded.api}/projects/{TOKEN}?{TOKEN}").status_code == 401
    assert httpx.get(f"{guarded.api}/projects?limit=1&api_key={TOKEN}").status_code == 401
    wait_for_log(guarded, "api_key=*** HTTP/1.1\" 401")
    log = guarded.log_path.read_text()  # as written: `log()` masks the token too, as a test's failure shows it
    assert "GET /v2.1/status" in log and "GET /v2.1/projects?limit=1&token=*** HTTP/1.1\" 401" in log
    for query in ("Token=***", "key=***", "x=***"):
        assert f"GET /v2.1/projects?limit=1&{query} HTTP/1.1\" 401" in log, query
    assert "GET /v2.1/projects/***?*** HTTP/1.1\" 401" in log
    assert TOKEN not in log and TOKEN[1:] not in log and "wrong-guess" not in log


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_token_is_masked_in_the_lines_of_refused_calls(emulators, log_format):
    """The Host and Origin refusals logged the path and the header as sent, the token in them in clear,
    though the access line of the same call masked it."""
    emulator = emulators("echo", "--access-log", "--log-format", log_format, token=TOKEN)
    path = f"/v2.1/projects/{TOKEN}"
    assert httpx.get(f"{emulator.url}{path}", headers={"Origin": f"http://{TOKEN}.example"}).status_code == 403
    assert httpx.get(f"{emulator.url}{path}", headers={"Host": f"{TOKEN}.example"}).status_code == 403
    log = wait_for_log(emulator, "Host '***.example' is refused")
    assert "refused GET '/v2.1/projects/***': Requests from the web origin 'http://***.example' are refused" in log
    assert "refused GET '/v2.1/projects/***': Host '***.example' is refused" in log
    assert TOKEN not in emulator.log_path.read_text(), "as written: `log()` masks the token too, as a test's failure shows it"


def test_token_is_masked_in_an_error_line_and_its_traceback(tmp_path):
    """An internal error's line names the path (`InternalErrors`), and its traceback may hold it, in either
    format: masked in one place, the formatter, so that no line can show it."""
    script = f"""
import logging, sys
from emulator import console_log
console_log.configure(sys.argv[1], {TOKEN!r})
try:
    raise KeyError({TOKEN!r})
except KeyError:
    logging.getLogger("emulator.api").exception("internal error on %s %r", "GET", "/v2.1/projects/{TOKEN}")
"""
    for log_format in ("text", "json"):
        run = subprocess.run([sys.executable, "-c", script, log_format], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, check=True)
        assert "internal error on GET '/v2.1/projects/***'" in run.stderr and "KeyError: '***'" in run.stderr, run.stderr
        assert TOKEN not in run.stderr


def test_signed_download_needs_no_token_and_its_signature_is_not_logged(guarded):
    form = {"int_in": "1", "double_in": "1", "string_in": "s", "bool_in": "true", "dict_in": "{}",
            "array_int_in": "[]", "array_double_in": "[]", "array_string_in": "[]"}
    body = httpx.post(guarded.requests_url(), files={"file_in": ("p.bin", b"bytes")}, data=form,
                      headers={"Authorization": f"Token {TOKEN}"}).json()
    assert body["status"] == "completed", body
    (url,) = body["emulator_file_urls"].values()
    assert httpx.get(url).content == b"bytes"
    assert httpx.head(url).status_code == 405, "signed for GET alone"
    assert httpx.get(url.replace("signature=", "%73ignature=")).content == b"bytes", "the server decodes the name"
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    assert f"GET {urlsplit(url).path}?expires=" in wait_for_log(guarded, "&%73ignature=*** HTTP/1.1\" 200")
    assert signature not in guarded.log(), "the access line would open the file without the token"


def test_forwarded_headers_change_neither_the_signed_urls_nor_the_logged_client(guarded):
    """The emulator is served directly (README, Security): a caller's `X-Forwarded-Proto` made the file URLs it
    signs `https://` ones that nothing answers, and its `X-Forwarded-For` the address the access log names."""
    form = {"int_in": "1", "double_in": "1", "string_in": "forwarded", "bool_in": "true", "dict_in": "{}",
            "array_int_in": "[]", "array_double_in": "[]", "array_string_in": "[]"}
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    versioned = guarded.requests_url("v1")  # a path no other test of this emulator posts to: its access line is this call's
    body = httpx.post(versioned, files={"file_in": ("p.bin", b"bytes")}, data=form,
                      headers={"Authorization": f"Token {TOKEN}", **forwarded}).json()
    assert body["status"] == "completed", body
    (url,) = body["emulator_file_urls"].values()
    assert url.startswith(f"{guarded.url}/"), url
    assert httpx.get(url, headers=forwarded).content == b"bytes"
    access = f'"POST {urlsplit(versioned).path} HTTP/1.1" 200'
    (line,) = [line for line in wait_for_log(guarded, access).splitlines() if access in line]
    assert " 127.0.0.1:" in line, line
    assert "203.0.113.9" not in guarded.log()


@pytest.mark.parametrize("args, variable, message", [
    (["--token", ""], None, "--token is empty: give the token every call must carry, or leave it out for none"),
    (["--token", "two words"], None, "--token holds a space, a control character or a non-ASCII one"),
    (["--token", "padded "], None, "--token holds a space"),
    (["--token", "tab\tbed"], None, "--token holds a space, a control character"),
    ([], "s3cr\u00e9t", "EMULATOR_TOKEN holds a space, a control character or a non-ASCII one, which the SDK"),
])
def test_a_token_the_sdk_or_the_page_cannot_send_is_refused_at_start(tmp_path, args, variable, message):
    """Taken, an empty --token turned auth off; a token with a space, padded or not ASCII was one that
    curl, the SDK (latin-1 headers) or the page could not send, or that never matched."""
    environment = {k: v for k, v in os.environ.items() if k != "EMULATOR_TOKEN"} | ({"EMULATOR_TOKEN": variable} if variable else {})
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), *args], cwd=ROOT, env=environment, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
    token = args[1] if args else variable
    assert not token or token not in run.stderr, "the token is never echoed"


def test_listening_beyond_loopback_without_a_token_warns(tmp_path):
    emulator = start_emulator("plain", tmp_path, host="0.0.0.0")
    try:
        log = wait_for_log(emulator, "without a token")
        assert "listening on 0.0.0.0 without a token: anyone who can reach this port can call the API" in log
    finally:
        emulator.stop()


@pytest.mark.parametrize("host", ["--host=", "--host= "])
def test_an_empty_host_is_refused_at_start(tmp_path, host):
    """`make serve ARGS="--host=$HOST"` with HOST unset bound every interface (0.0.0.0 and ::), its
    warning reading "listening on  without a token"."""
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), host], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--host is empty: give the address to listen on, e.g. 127.0.0.1" in run.stderr, run.stderr
    assert not (tmp_path / "data").exists(), "refused before anything is made"


def test_a_token_on_the_command_line_warns_that_others_can_read_it(tmp_path, guarded):
    emulator = start_emulator("plain", tmp_path, "--token", TOKEN, token=TOKEN)
    try:
        log = wait_for_log(emulator, "--token is on the command line")
        assert "where anyone on this machine can read it (ps); set EMULATOR_TOKEN instead" in log
        assert TOKEN not in log
    finally:
        emulator.stop()
    assert "--token is on the command line" not in guarded.log(), "EMULATOR_TOKEN is the safe way"


def test_loopback_is_the_default_and_without_a_token_warns_of_the_machine_s_other_users(emulators, guarded):
    plain = emulators("plain")
    log = wait_for_log(plain, "Uvicorn running on")
    assert "Uvicorn running on http://127.0.0.1:" in log and "without a token" not in log
    assert "no token: every user of this machine can call the API, and run code as you by uploading a package" in log
    assert "no token" not in wait_for_log(guarded, "Uvicorn running on"), "a token silences it"
