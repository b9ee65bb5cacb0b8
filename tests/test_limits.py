"""Limits that keep one request from hurting the server: body size, JSON nesting, huge values."""

from __future__ import annotations

import functools
import json
import socket
from pathlib import Path

import httpx
import pytest
from harness import DEPLOYMENT, PROJECT, eventually, wait_for_log


@pytest.fixture(scope="module")
def small_limit(emulators):
    return emulators("plain", "--max-upload-mb", "1")


def test_declared_body_over_the_limit_is_413_before_it_is_sent(small_limit):
    host, port = small_limit.url.removeprefix("http://").split(":")
    path = f"/v2.1/projects/{PROJECT}/deployments/{DEPLOYMENT}/requests"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\nContent-Length: 2147483648\r\n\r\n".encode())
        answer = ""
        while "}" not in answer and (chunk := sock.recv(65536)):
            answer += chunk.decode()
    assert answer.startswith("HTTP/1.1 413")
    assert '{"error":"The request body is larger than the limit of 1 MB (--max-upload-mb)"}' in answer


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "multipart/form-data; boundary=b"])
def test_a_client_gone_before_its_body_ends_is_no_internal_error(small_limit, content_type):
    host, port = small_limit.url.removeprefix("http://").split(":")
    path = f"/v2.1/projects/{PROJECT}/deployments/{DEPLOYMENT}/requests"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: 1000\r\n\r\n--b\r\n".encode())
    log = wait_for_log(small_limit, f"the client went away before sending all of its POST {path!r}")
    assert "internal error" not in log and "Exception in ASGI application" not in log
    assert small_limit.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="still here").result == "STILL HERE"


def test_streamed_body_over_the_limit_is_413(small_limit):
    def chunks():
        for _ in range(3):
            yield b"x" * 512 * 1024

    response = httpx.post(small_limit.requests_url(), content=chunks(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 413 and "larger than the limit of 1 MB" in response.json()["error"]


@pytest.mark.parametrize("method, path, content_type", [
    ("POST", "/deployments", "application/json"),
    ("PATCH", f"/deployments/{DEPLOYMENT}/versions/v1", "application/json"),
    ("POST", "/buckets", "application/json"),
    ("POST", "/environment-variables", "application/json"),
    ("POST", f"/deployments/{DEPLOYMENT}/versions/v1/revisions", "multipart/form-data; boundary=b"),
])
def test_a_streamed_body_over_the_limit_to_a_management_call_is_413(small_limit, method, path, content_type):
    """Before, FastAPI read these bodies itself and made the limit its 400 "There was an error parsing the body"."""
    def chunks():
        if content_type.startswith("multipart"):
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.zip"\r\n\r\n'
        for _ in range(3):
            yield b" " * 512 * 1024

    response = httpx.request(method, f"{small_limit.api}/projects/{PROJECT}{path}", content=chunks(),
                             headers={"Content-Type": content_type})
    assert (response.status_code, response.json()) == (
        413, {"error": "The request body is larger than the limit of 1 MB (--max-upload-mb)"})


def test_upload_over_the_limit_is_413_and_the_server_keeps_serving(small_limit):
    response = httpx.post(small_limit.requests_url(), files={"f": ("big.bin", b"x" * (2 * 1024 * 1024))})
    assert response.status_code == 413
    assert small_limit.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="still here").result == "STILL HERE"


def test_body_under_the_limit_is_served(small_limit):
    text = "é" * 200_000
    assert small_limit.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data=text).result == text.upper()


def nested(depth: int) -> object:
    value: object = {}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


def test_nesting_deeper_than_100_levels_is_refused(emulators):
    echo = emulators("echo")
    response = httpx.post(echo.requests_url(), content=json.dumps({"dict_in": nested(101)}),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "The request body nests objects and arrays deeper than 100 levels"}


def test_nesting_of_100_levels_reaches_the_spec_check(emulators):
    echo = emulators("echo")
    body = httpx.post(echo.requests_url(), json={"dict_in": nested(99)}).json()
    assert body["status"] == "failed" and body["error_message"] == "Missing input field 'int_in' of type int"


@pytest.mark.parametrize("text", ["a" * 1024 * 1024, "null \x00 byte", "ünïcödé ✓ 🙂", "\ud7ff"])
def test_large_and_unusual_strings_travel_intact(emulators, text):
    plain = emulators("plain")
    assert plain.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data=text).result == text.upper()


def test_unicode_and_nul_in_field_names_are_dropped_as_extra_keys(emulators):
    minimal_types = emulators("batch")
    body = httpx.post(minimal_types.requests_url(), json={"x": 1, "ünï\x00": 2, "\x00": 3}).json()
    assert body["status"] == "completed" and body["result"] == {"y": 10.01}


def unread(server_port: int, client_port: int) -> int:
    """The bytes a client sent on its connection that the server has not read yet, from the kernel's
    table of TCP sockets: those the server's kernel has not acknowledged, and those waiting in its socket."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        sent, received = (int(queue, 16) for queue in fields[4].split(":"))
        total += sent if (local, remote) == (client_port, server_port) else 0
        total += received if (local, remote) == (server_port, client_port) else 0
    return total


def test_other_calls_are_answered_while_a_large_body_is_parsed_and_checked(emulators):
    """A large body is parsed and checked in a thread: on the event loop, 20 MB held every call for
    seconds. This one is refused for its last item, so once its last byte has been read the emulator's
    only work on it is reading it: /livez, asked only then, must be answered before it is. (Of strings:
    checking them is most of that work, which other calls interleave with in a thread, where json's C
    parser holds Python's lock throughout.)"""
    echo = emulators("echo")
    body = json.dumps(["é"] * 4_000_000, ensure_ascii=False).removesuffix("]").encode() + b', "\\ud800"]'
    host, port = echo.url.removeprefix("http://").split(":")
    path = f"/v2.1/projects/{PROJECT}/deployments/{DEPLOYMENT}/requests"
    with httpx.Client(timeout=120) as client, socket.create_connection((host, int(port)), timeout=120) as sock:
        assert client.get(f"{echo.url}/livez").status_code == 200  # connected before: a new client takes ~50 ms
        read_all = functools.partial(unread, int(port), sock.getsockname()[1])
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:-1])
        eventually(lambda: read_all() == 0, "the server read the body but its last byte")
        sock.sendall(body[-1:])
        eventually(lambda: read_all() == 0, "the server read the body's last byte")  # and then reads it
        assert client.get(f"{echo.url}/livez").status_code == 200
        sock.settimeout(0)  # a socket with a timeout waits for data even when told not to
        with pytest.raises(BlockingIOError):  # not answered yet
            sock.recv(1, socket.MSG_PEEK)
        sock.settimeout(120)
        answer = b""
        while b"}" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.endswith(b'{"error":"The request body holds a string with a lone UTF-16 surrogate, which is not Unicode text"}')
