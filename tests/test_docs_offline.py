"""`/docs` works on a machine without internet: Swagger UI comes from the emulator itself (the pinned
`fastapi-offline` package), not from a CDN, whether opened by a loopback address or by another name.
It can send requests from the page."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from browser import BROWSER_HOST, offline
from harness import DEPLOYMENT, PROJECT, Emulator
from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def plain(emulators) -> Emulator:
    return emulators("plain", "--allow-host", BROWSER_HOST)


def opened_as(emulator: Emulator, host: str) -> str:
    """The emulator's address, by `host` instead of 127.0.0.1."""
    return f"http://{host}:{urlsplit(emulator.url).port}"


@pytest.mark.parametrize("host", ["127.0.0.1", BROWSER_HOST])
def test_swagger_ui_renders_from_the_emulator_alone_and_sends_a_request(chromium: Browser, plain, tmp_path, host):
    origin = opened_as(plain, host)
    context = chromium.new_context()
    elsewhere = offline(context, origin)
    page = context.new_page()
    page.goto(f"{origin}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "UbiOps emulator" in page.inner_text(".swagger-ui .info .title")

    status = page.locator(".opblock-get").filter(has=page.locator('.opblock-summary-path[data-path="/v2.1/status"]'))
    status.locator(".opblock-summary").click()
    status.get_by_role("button", name="Try it out").click()
    with page.expect_response(f"{origin}/v2.1/status") as answer:
        status.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    assert '"status": "ok"' in status.locator(".live-responses-table tbody .response-col_description").inner_text()
    status.locator(".live-responses-table").scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "docs.png")

    assert not page.query_selector(".swagger-ui .errors-wrapper")
    assert elsewhere == []
    context.close()


def test_try_it_out_sends_a_deployment_request_with_a_body_of_its_content_type(chromium: Browser, plain, tmp_path):
    page = chromium.new_page()
    page.goto(f"{plain.url}/docs")
    path = "/v2.1/projects/{project_name}/deployments/{deployment_name}/requests"
    create = page.locator(".opblock-post").filter(has=page.locator(f'.opblock-summary-path[data-path="{path}"]'))
    create.locator(".opblock-summary").click()
    create.get_by_role("button", name="Try it out").click()
    create.locator('tr[data-param-name="project_name"] input').fill(PROJECT)
    create.locator('tr[data-param-name="deployment_name"] input').fill(DEPLOYMENT)
    create.locator(".body-param-content-type select").select_option("text/plain")
    create.locator("textarea.body-param__text").fill("try it")
    with page.expect_response(lambda response: response.url.startswith(f"{plain.url}/v2.1/projects/")) as answer:
        create.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    assert answer.value.json()["result"] == "TRY IT"
    create.locator(".live-responses-table").scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "try-it-out.png")
    page.close()


def test_swagger_ui_posts_from_its_own_origin_past_the_origin_guard(chromium: Browser, plain):
    """A POST carries the page's `Origin`: the emulator's own, which the guard lets through."""
    context = chromium.new_context()
    elsewhere = offline(context, plain.url)
    page = context.new_page()
    page.goto(f"{plain.url}/docs")
    create = page.locator(".opblock-post").filter(
        has=page.locator('.opblock-summary-path[data-path="/v2.1/projects/{project_name}/buckets"]'))
    create.locator(".opblock-summary").click()
    create.get_by_role("button", name="Try it out").click()
    create.locator('input[placeholder="project_name"]').fill(PROJECT)
    create.locator("textarea.body-param__text").fill('{"name": "from-the-docs"}')
    with page.expect_response(f"{plain.api}/projects/{PROJECT}/buckets") as answer:
        create.get_by_role("button", name="Execute").click()
    assert answer.value.request.header_value("origin") == plain.url
    assert answer.value.status == 201, answer.value.text()
    assert "from-the-docs" in [b.name for b in plain.sdk().buckets_list(PROJECT)]
    assert elsewhere == []
    context.close()


def test_redoc_is_not_served(plain):
    """ReDoc's page fetches its logo from the web, so the emulator leaves it out: `/docs` is its API page."""
    response = httpx.get(f"{plain.url}/redoc")
    assert response.status_code == 404 and "error" in response.json()
