"""Hostile names in paths: each is an unknown name (404) or a refused one (400), in UbiOps' error shape."""

from __future__ import annotations

import http.client
import json

import pytest
from harness import DEPLOYMENT, PROJECT

HOSTILE = ["..", "%2e%2e", "%2E%2E%2F..%2Fetc", "%2Fetc%2Fpasswd", "a%00b", "x" * 10_000, "%C3%A9%F0%9F%99%82"]


@pytest.fixture(scope="module")
def plain(emulators):
    return emulators("plain")


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("template", [
    "/projects/{name}/deployments/" + DEPLOYMENT + "/requests",
    "/projects/" + PROJECT + "/deployments/{name}/requests",
    "/projects/" + PROJECT + "/deployments/" + DEPLOYMENT + "/versions/{name}/requests",
    "/projects/" + PROJECT + "/deployments/" + DEPLOYMENT + "/requests/{name}",
])
def test_hostile_names_are_clear_4xx_errors(plain, template, name):
    """Sent verbatim (http.client does not normalise `..` away, as httpx and browsers do)."""
    method = "GET" if template.endswith("{name}") else "POST"
    connection = http.client.HTTPConnection(plain.url.removeprefix("http://"), timeout=10)
    connection.request(method, "/v2.1" + template.format(name=name), body="x", headers={"Content-Type": "text/plain"})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status in (400, 404), body
    assert set(body) == {"error"} and body["error"]
    assert plain.sdk().service_status().status == "ok"
