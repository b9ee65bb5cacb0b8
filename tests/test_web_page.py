"""The web page at `/`, in a real Chromium: a form built from the deployment's input fields, the answer as
a table with its images inline, failures said plainly, the request history followed live, the token
asked for once; all from the emulator alone (nothing else is reached), and shipped with the package."""

from __future__ import annotations

import http.client
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import ubiops
from browser import offline
from harness import DEPLOYMENT, PROJECT, ROOT, Emulator, start_emulator, zip_bytes
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Route

from contract.config import load_config
from emulator import launcher
from emulator.api.auth import TOKEN_RULE

WEB_FILES = ("index.html", "app.js", "style.css")
IMAGE_NAME = re.compile(r"\.(jpe?g|png|gif|webp|bmp|avif)$", re.I)  # the names the page shows as images (app.js)
TOKEN = "web-page-test-token"
GATE = "gate"
GATE_CODE = '''"""Echoes its input, once the file its `gate` field names exists (when it names one)."""
import os
import time


class Deployment:
    def request(self, data):
        deadline = time.monotonic() + 120
        while data["gate"] and not os.path.exists(data["gate"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        return data
'''
GATE_FIELDS = [
    {"name": "gate", "data_type": "string"},
    {"name": "count", "data_type": "int", "widget": {"type": "slider", "configuration": {"min": "0", "max": "10", "default": "3"}}},
    {"name": "ratio", "data_type": "double", "widget": {"type": "numberbox", "configuration": {"default": "0.5"}}},
    {"name": "flag", "data_type": "bool", "widget": {"type": "switch", "configuration": {"default": "false"}}},
    {"name": "choice", "data_type": "string", "widget": {"type": "dropdown", "configuration": {"options": "a,b,c", "default": "b"}}},
    {"name": "tags", "data_type": "array_string"},
    {"name": "meta", "data_type": "dict"},
    {"name": "level", "data_type": "int", "widget": {"type": "slider", "configuration": {"min": "0", "max": "100"}}},
    {"name": "options", "data_type": "dict", "widget": {"type": "textbox", "configuration": {"default": {"k": 1}}}},
]
ODD = "odd"
ODD_CODE = b"class Deployment:\n    def request(self, data):\n        return data\n"
ODD_FIELDS = [{"name": 'say "hi"', "data_type": "string"}, {"name": "two\r\nlines", "data_type": "string"},
              {"name": "100%", "data_type": "string"}, {"name": "upload", "data_type": "file"}]


@pytest.fixture(scope="module")
def portrait(tmp_path_factory) -> Path:
    """A JPEG portrait's stand-in (the stand-in package reads no pixels)."""
    path = tmp_path_factory.mktemp("portrait") / "portrait.jpg"
    Image.new("RGB", (320, 400), (192, 138, 110)).save(path, "JPEG")
    return path


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> Iterator[Emulator]:
    """A stand-in for the face profile, with its input fields, widgets and an annotated image (the
    emulator's tests pass whatever `deployment_package/` holds), plus a second deployment, `gate`,
    whose requests wait for a file the test creates: a batch request caught while it runs; and `odd`,
    an echo whose fields' names a form has to escape."""
    emulator = start_emulator("portrait", tmp_path_factory.mktemp("face"))
    try:
        add_echo(emulator, GATE, GATE_FIELDS, GATE_CODE.encode())
        add_echo(emulator, ODD, ODD_FIELDS, ODD_CODE)
        yield emulator
    finally:
        emulator.stop()


def add_echo(emulator: Emulator, name: str, fields: list[dict], code: bytes) -> None:
    """A deployment `name` whose output fields are its input fields, running `code`."""
    api = emulator.sdk()
    api.deployments_create(PROJECT, {"name": name, "input_type": "structured", "output_type": "structured",
                                     "input_fields": fields, "output_fields": fields})
    add_version(emulator, name, "v1", code)


def add_version(emulator: Emulator, name: str, version: str, code: bytes) -> None:
    """A version of deployment `name` running `code`, built."""
    emulator.sdk().deployment_versions_create(PROJECT, name, {"version": version})
    revision = httpx.post(f"{emulator.api}/projects/{PROJECT}/deployments/{name}/versions/{version}/revisions",
                          files={"file": (f"{name}.zip", zip_bytes({"deployment_package/deployment.py": code}))})
    ubiops.utils.wait_for_deployment_version(emulator.sdk().api_client, PROJECT, name, version,
                                             revision_id=revision.json()["revision"], timeout=60, quiet=True)


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def open_page(context: BrowserContext, emulator: Emulator, deployment: str) -> tuple[Page, list[str]]:
    """The web page, showing `deployment`, with every request to anything but the emulator aborted and
    recorded."""
    elsewhere = offline(context, emulator.url)
    page = context.new_page()
    page.goto(f"{emulator.url}/")
    page.wait_for_selector(f'#deployment option[value="{deployment}"]', state="attached")
    if page.input_value("#deployment") != deployment:
        page.select_option("#deployment", deployment)
    page.wait_for_selector(f'#fields[data-deployment="{deployment}"]')
    return page, elsewhere


def shown(page: Page, field: str) -> str:
    """The value the outcome's table shows for `field`."""
    return page.inner_text(f'#outcome tr[data-field="{field}"] td')


def images_loaded(page: Page, selector: str) -> list[int]:
    """The natural widths of the images `selector` finds, once all have loaded (0: a broken image)."""
    page.wait_for_function("s => { const images = [...document.querySelectorAll(s)];"
                           "       return images.length > 0 && images.every(i => i.complete && i.src); }", arg=selector)
    return page.eval_on_selector_all(selector, "images => images.map(i => i.naturalWidth)")


def annotated_width(emulator: Emulator, answer: dict) -> int:
    """The width of the answer's annotated image, as its file holds it."""
    return Image.open(io.BytesIO(emulator.download(answer, answer["result"]["annotated_img"]))).width


def test_a_portrait_sent_from_the_page_shows_its_profile_and_annotated_image(face, context, portrait, tmp_path):
    page, elsewhere = open_page(context, face, DEPLOYMENT)
    assert page.get_attribute("#in-img", "type") == "file" and page.get_attribute("#in-img", "accept") == "image/*"
    assert page.input_value("#in-sampling_strategy") == "use_all"
    assert page.eval_on_selector_all("#in-sampling_strategy option", "o => o.map(x => x.value)") == ["use_all", "median", "trimmed"]
    assert page.is_checked("#in-align_face")
    assert page.get_attribute("#in-num_attempts", "type") == "number" and page.input_value("#in-num_attempts") == "1"

    page.set_input_files("#in-img", portrait)
    with page.expect_response(face.requests_url("v1")) as posted:
        page.click("#send")
    page.wait_for_selector('#outcome tr[data-field="face_found"]')
    page.screenshot(path=tmp_path / "portrait.png", full_page=True)

    sent = posted.value.request
    assert posted.value.status == 200, posted.value.text()
    assert sent.header_value("origin") == face.url, "a same-origin POST from the page, past the origin guard"
    assert sent.header_value("content-type").startswith("multipart/form-data")
    answer = posted.value.json()
    assert answer["status"] == "completed" and shown(page, "face_found") == "true"
    assert shown(page, "fwhr") == str(answer["result"]["fwhr"])
    assert shown(page, "skin_tone_cheeks") == answer["result"]["skin_tone_cheeks"]
    assert images_loaded(page, '#outcome tr[data-field="annotated_img"] img') == [annotated_width(face, answer)]
    assert page.get_attribute('#outcome tr[data-field="annotated_img"] img', "src") == \
        answer["emulator_file_urls"][answer["result"]["annotated_img"]]

    assert not page.is_visible("#outcome .raw pre")
    page.click("#outcome .raw summary")
    assert json.loads(page.inner_text("#outcome .raw pre")) == answer
    page.wait_for_selector(f'#history tr[data-id="{answer["id"]}"]')
    assert elsewhere == []


def test_an_unreadable_file_shows_the_requests_error_message(face, context, tmp_path):
    page, elsewhere = open_page(context, face, DEPLOYMENT)
    page.set_input_files("#in-img", files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"not an image"}])
    with page.expect_response(face.requests_url("v1")) as posted:
        page.click("#send")
    page.wait_for_selector("#error-message")
    page.screenshot(path=tmp_path / "unreadable.png", full_page=True)

    answer = posted.value.json()
    assert answer["status"] == "failed" and "not a readable image" in answer["error_message"]
    assert page.inner_text("#error-message") == answer["error_message"]
    assert page.inner_text("#outcome .status") == "failed"
    assert elsewhere == []


def test_the_history_opens_a_request_with_its_input_and_output(face, context, portrait):
    answer = face.request({"sampling_strategy": "median"}, files={"img": portrait})
    page, elsewhere = open_page(context, face, DEPLOYMENT)
    page.click(f'#history tr[data-id="{answer["id"]}"] button')
    page.wait_for_selector("#outcome h3:text('Input')")

    input_table, output_table = page.query_selector_all("#outcome table.fields")
    assert input_table.eval_on_selector('tr[data-field="sampling_strategy"] td', "td => td.innerText") == "median"
    assert output_table.eval_on_selector('tr[data-field="face_found"] td', "td => td.innerText") == "true"
    assert images_loaded(page, "#outcome img.output-image") == [Image.open(portrait).width, annotated_width(face, answer)]
    assert page.is_visible(f'#history tr.opened[data-id="{answer["id"]}"]')
    assert elsewhere == []


def test_the_history_shows_and_opens_the_requests_of_every_version(face, context):
    """The deployment-level history is its default version's alone (as on UbiOps), so the page asks each
    version for its own: a request to another version is listed, and opened from that version."""
    add_echo(face, "versioned", [{"name": "text", "data_type": "string"}], ODD_CODE)
    add_version(face, "versioned", "v2", ODD_CODE)
    api = face.sdk()
    first = api.deployment_version_requests_create(PROJECT, "versioned", "v1", {"text": "one"})
    second = api.deployment_version_requests_create(PROJECT, "versioned", "v2", {"text": "two"})
    page, elsewhere = open_page(context, face, "versioned")
    for answer, version in ((first, "v1"), (second, "v2")):
        page.wait_for_selector(f'#history tr[data-id="{answer.id}"]')
        assert page.inner_text(f'#history tr[data-id="{answer.id}"] td:nth-child(3)') == version
    page.click(f'#history tr[data-id="{second.id}"] button')
    page.wait_for_selector("#outcome h3:text('Input')")
    assert page.inner_text("#outcome .summary") == f"completed request {second.id} · version v2"
    assert shown(page, "text") == "two"
    assert elsewhere == []


def test_the_form_follows_the_widgets_and_sends_typed_values(face, context):
    page, elsewhere = open_page(context, face, GATE)
    controls = page.eval_on_selector_all("#fields [name]", "cs => cs.map(c => [c.name, c.type, c.value])")
    assert controls == [["gate", "text", ""], ["count", "range", "3"], ["ratio", "number", "0.5"], ["flag", "checkbox", "on"],
                        ["choice", "select-one", "b"], ["tags", "textarea", ""], ["meta", "textarea", ""],
                        ["level", "range", "50"], ["options", "textarea", '{"k":1}']]
    assert (page.get_attribute("#in-count", "min"), page.get_attribute("#in-count", "max")) == ("0", "10")
    assert not page.is_checked("#in-flag")
    assert page.inner_text("#in-level + output") == "not set", "a slider without a default sends nothing until moved"

    page.fill("#in-count", "7")
    page.check("#in-flag")
    page.select_option("#in-choice", "c")
    page.fill("#in-tags", '["x", "y"]')
    page.fill("#in-meta", '{"k": 1}')
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, GATE)) as posted:
        page.click("#send")
    page.wait_for_selector("#error-message")
    assert posted.value.json()["error_message"] == "Missing input field 'level' of type int", \
        "left out, not sent as the range's middle (50)"
    page.fill("#in-level", "40")
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, GATE)) as posted:
        page.click("#send")
    page.wait_for_selector('#outcome tr[data-field="meta"]')

    assert posted.value.json()["result"] == {"gate": "", "count": 7, "ratio": 0.5, "flag": True, "choice": "c",
                                             "tags": ["x", "y"], "meta": {"k": 1}, "level": 40, "options": {"k": 1}}
    assert [shown(page, f) for f in ("count", "ratio", "flag", "choice", "tags", "meta")] == \
        ["7", "0.5", "true", "c", '["x","y"]', '{"k":1}']
    assert elsewhere == []


def test_fields_and_files_named_with_quotes_and_line_breaks_are_sent_as_named(face, context):
    """The form encoding writes `"`, CR and LF in a part's name or file name as %22, %0D and %0A (and
    nothing else: `100%` stays), as curl does; the emulator reads them back."""
    page, elsewhere = open_page(context, face, ODD)
    page.eval_on_selector_all("#fields input[type=text]", "inputs => inputs.forEach(i => { i.value = JSON.stringify(i.name); })")
    page.set_input_files("#in-upload", files=[{"name": 'say "<b>".txt', "mimeType": "text/plain", "buffer": b"text"}])
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, ODD)) as posted:
        page.click("#send")
    answer = posted.value.json()
    assert b"%22" in posted.value.request.post_data_buffer, "sent escaped, as the HTML spec says"
    assert answer.get("status") == "completed", answer
    page.wait_for_selector('#outcome tr[data-field="upload"] a')
    assert [answer["result"][field["name"]] for field in ODD_FIELDS[:3]] == [json.dumps(f["name"]) for f in ODD_FIELDS[:3]]
    assert answer["result"]["upload"].endswith('/say "<b>".txt')
    assert page.inner_text('#outcome tr[data-field="upload"] a') == 'say "<b>".txt'
    assert elsewhere == []


def test_integers_beyond_a_doubles_precision_are_shown_with_their_digits(face, context):
    """An `int` is 64-bit: read by JSON.parse, 2**53 + 1 was shown as 9007199254740992."""
    big = 2**53 + 1
    item = {"gate": "", "count": big, "ratio": 0.5, "flag": True, "choice": "a", "tags": [], "meta": {"n": [-big]}, "level": 1,
            "options": {}}
    answer = httpx.post(f"{face.api}/projects/{PROJECT}/deployments/{GATE}/requests", json=item).json()
    assert answer["result"] == item
    page, elsewhere = open_page(context, face, GATE)
    page.click(f'#history tr[data-id="{answer["id"]}"] button')
    page.wait_for_selector("#outcome h3:text('Output')")

    for table in page.query_selector_all("#outcome table.fields"):
        assert table.eval_on_selector('tr[data-field="count"] td', "td => td.innerText") == str(big)
        assert table.eval_on_selector('tr[data-field="meta"] td', "td => td.innerText") == f'{{"n":[{-big}]}}'
    page.click("#outcome .raw summary")
    raw = json.loads(page.inner_text("#outcome .raw pre"))
    assert (raw["request_data"], raw["result"]) == (item, item)
    assert elsewhere == []


def test_a_deployment_without_a_version_says_so_and_sends_nothing(face, context):
    """Sending posted to `…/versions//requests`, and the page said only "404: Not Found"."""
    face.sdk().deployments_create(PROJECT, {"name": "unversioned", "input_type": "plain", "output_type": "plain"})
    page, elsewhere = open_page(context, face, "unversioned")
    assert page.is_disabled("#send")
    assert page.inner_text("#no-version") == "This deployment has no version yet: create one to send requests."
    page.select_option("#deployment", GATE)
    page.wait_for_selector(f'#fields[data-deployment="{GATE}"]')
    assert page.is_enabled("#send") and page.is_hidden("#no-version")
    assert elsewhere == []


def test_a_version_shown_as_building_is_followed_until_it_is_available(face, context, tmp_path):
    """The menu kept the status the page was opened with: beside a completed answer, "v1 (default, building)"."""
    gate = tmp_path / "started"
    face.sdk().deployments_create(PROJECT, {"name": "starting", "input_type": "plain", "output_type": "plain"})
    face.sdk().deployment_versions_create(PROJECT, "starting", {"version": "v1"})
    code = f"import os, time\n\nclass Deployment:\n    def __init__(self):\n        while not os.path.exists({str(gate)!r}):\n" \
           "            time.sleep(0.05)\n\n    def request(self, data):\n        return data\n"
    assert httpx.post(f"{face.api}/projects/{PROJECT}/deployments/starting/versions/v1/revisions",
                      files={"file": ("starting.zip", zip_bytes({"deployment_package/deployment.py": code.encode()}))}).status_code == 200
    page, elsewhere = open_page(context, face, "starting")
    assert page.inner_text("#version option") == "v1 (default, building)"
    gate.touch()
    page.wait_for_selector('#version option:text-is("v1 (default)")', state="attached")
    assert page.input_value("#version") == "v1" and page.is_enabled("#send")
    assert elsewhere == []


class HistoryOutage:
    """The page's history calls refused (connection refused) until `end`. Its route stays and passes them on
    afterwards, rather than being removed: a call in flight as `page.unroute` ran went on to the context's guard
    (`browser.offline`), which continued a route already aborted ("Route is already handled!", at the context's close)."""

    def __init__(self, page: Page) -> None:
        self.down = True
        page.route(re.compile(r"/requests\?status="), self._handle)

    def _handle(self, route: Route) -> None:
        if self.down:
            route.abort("connectionrefused")
        else:
            route.fallback()

    def end(self) -> None:
        self.down = False


def processing_in_the_history(context: BrowserContext, face: Emulator, gate: Path) -> tuple[Page, list[str], str]:
    """The page, showing a batch request that runs until `gate` exists; its history row's selector."""
    page, elsewhere = open_page(context, face, GATE)
    item = {"gate": str(gate), "count": 1, "ratio": 1.5, "flag": True, "choice": "a", "tags": [], "meta": {}, "level": 1,
            "options": {}}
    (created,) = httpx.post(f"{face.api}/projects/{PROJECT}/deployments/{GATE}/requests/batch", json=[item]).json()
    page.click("#refresh")
    row = f'#history tr[data-id="{created["id"]}"]'
    page.wait_for_selector(f'{row}[data-status="processing"]')
    return page, elsewhere, row


def test_a_batch_request_is_followed_live_in_the_history(face, context, tmp_path):
    gate = tmp_path / "open"
    page, elsewhere, row = processing_in_the_history(context, face, gate)
    page.click(f"{row} button")
    page.wait_for_selector("#outcome .status-processing")
    page.screenshot(path=tmp_path / "batch-processing.png")

    gate.touch()
    page.wait_for_selector(f'{row}[data-status="completed"]')
    page.wait_for_selector('#outcome tr[data-field="ratio"]')
    page.screenshot(path=tmp_path / "batch-completed.png")
    assert page.inner_text("#outcome .status") == "completed" and shown(page, "ratio") == "1.5"
    assert elsewhere == []


def test_a_history_refresh_that_fails_says_so_and_is_tried_again_until_it_answers(face, context, tmp_path):
    """The emulator restarting while a request runs: the page says the refresh failed, keeps following
    the request, and drops the problem once the history answers again."""
    gate = tmp_path / "open"
    page, elsewhere, row = processing_in_the_history(context, face, gate)
    outage = HistoryOutage(page)
    page.wait_for_selector("#page-problem:visible")
    gate.touch()
    outage.end()
    page.wait_for_selector(f'{row}[data-status="completed"]')
    assert page.is_hidden("#page-problem")
    assert elsewhere == []


def test_send_waits_for_its_answer_while_the_history_is_refreshed(face, context, tmp_path):
    """Each refresh notes the versions again in the menu, and must not let the request be sent twice."""
    gate = tmp_path / "open"
    page, elsewhere, _ = processing_in_the_history(context, face, gate)
    rows = page.eval_on_selector_all("#history tbody tr", "rows => rows.length")
    for selector, value in (("#in-gate", str(gate)), ("#in-tags", "[]"), ("#in-meta", "{}"), ("#in-level", "1")):
        page.fill(selector, value)
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, GATE)) as posted:
        page.click("#send")
        page.wait_for_function("n => document.querySelectorAll('#history tbody tr').length > n", arg=rows)
        assert page.is_disabled("#send"), "a refresh that listed the request being sent"
        gate.touch()
    assert posted.value.json()["status"] == "completed"
    page.wait_for_selector("#send:enabled")
    assert elsewhere == []


def test_an_answer_that_comes_after_another_deployment_was_picked_is_not_shown_as_its(face, context, tmp_path):
    """The answer belongs to the deployment it was sent to: drawn with the newly picked deployment's
    fields it would read as that one's result, every field null."""
    gate = tmp_path / "open"
    page, elsewhere = open_page(context, face, GATE)
    page.fill("#in-gate", str(gate))
    page.fill("#in-tags", "[]")
    page.fill("#in-meta", "{}")
    page.fill("#in-level", "1")
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, GATE)) as posted:
        page.click("#send")
        page.select_option("#deployment", DEPLOYMENT)
        page.wait_for_selector(f'#fields[data-deployment="{DEPLOYMENT}"]')
        gate.touch()
    assert posted.value.json()["status"] == "completed"
    page.wait_for_selector("#send:enabled")
    assert page.is_hidden("#outcome-card") and page.query_selector('#outcome tr[data-field="gate"]') is None
    assert elsewhere == []


def test_with_a_token_the_page_asks_for_it_once_and_keeps_it_in_the_session_only(chromium: Browser, emulators, tmp_path):
    emulator = emulators("plain", token=TOKEN)
    for path in ("/", *(f"/web/{name}" for name in WEB_FILES)):
        assert httpx.get(emulator.url + path).status_code == 200, path
    for path in ("/v2.1/projects", "/docs"):
        assert httpx.get(emulator.url + path).status_code == 401, path

    context = chromium.new_context()
    elsewhere = offline(context, emulator.url)
    page = context.new_page()
    page.goto(f"{emulator.url}/")
    page.wait_for_selector("#token-box:not([hidden])")
    page.screenshot(path=tmp_path / "token-asked.png")
    page.fill("#token", "pasted\u2011token")
    page.press("#token", "Enter")
    page.wait_for_selector("#token-problem:text('printable ASCII')")
    assert page.evaluate("sessionStorage.length") == 0, "a token no header can carry is never kept"
    page.fill("#token", "not-the-token")
    page.press("#token", "Enter")
    page.wait_for_selector("#token-problem:text('That token was refused')")
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("#in-plain")
    assert page.is_hidden("#token-box") and page.input_value("#project") == PROJECT

    page.fill("#in-plain", "from the page")
    with page.expect_response(emulator.requests_url("v1")) as posted:
        page.click("#send")
    page.wait_for_selector("#outcome pre.plain")
    assert posted.value.request.header_value("authorization") == f"Token {TOKEN}"
    assert page.inner_text("#outcome pre.plain") == "FROM THE PAGE"
    page.screenshot(path=tmp_path / "token-used.png")
    assert page.evaluate("[sessionStorage.length, localStorage.length]") == [1, 0] and context.cookies() == []

    request_id = posted.value.json()["id"]
    page.reload()
    page.wait_for_selector(f'#history tr[data-id="{request_id}"]')
    assert page.is_hidden("#token-box")
    context.close()
    assert elsewhere == []

    another = chromium.new_context()
    fresh = another.new_page()
    fresh.goto(f"{emulator.url}/")
    fresh.wait_for_selector("#token-box:not([hidden])")
    another.close()
    assert TOKEN not in emulator.log()


def test_the_page_takes_the_tokens_the_emulator_takes(face, context):
    """One rule: a token the page refused (a space, say) but the emulator started with left the page unusable."""
    page, _ = open_page(context, face, DEPLOYMENT)
    candidates = [chr(code) for code in range(0x180)] + ["\u2011", "\u3000"]
    taken = page.evaluate("async candidates => { const { TOKEN_CHARACTERS } = await import('/web/app.js');"
                          "                      return candidates.map(c => TOKEN_CHARACTERS.test(`a${c}b`)); }", candidates)
    assert taken == [TOKEN_RULE.fullmatch(f"a{c}b") is not None for c in candidates]


@pytest.mark.parametrize("path", ["/web/../v2.1/projects", "/web/%2e%2e/v2.1/projects", "/web/..%2fv2.1/projects",
                                  "/web/", "/web"])
def test_the_open_web_files_open_nothing_else(emulators, path):
    """Without the token, the page's folder answers its files only: no path reaches the API through it
    (sent as written: an HTTP client would resolve the dots first)."""
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(emulators("plain", token=TOKEN).url).port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status in (401, 404) and PROJECT.encode() not in body, (response.status, body[:200])


def test_the_web_files_ship_with_the_package(tmp_path):
    """setuptools' build, as a wheel or an install makes it, from a copy of the project's sources."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    for package in ("emulator", "contract", "deployer"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                            "--build-lib", str(tmp_path / "built")], cwd=source, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    for name in WEB_FILES:
        assert (tmp_path / "built" / "emulator" / "web" / name).read_bytes() == (ROOT / "emulator" / "web" / name).read_bytes()


def opened_while_processing(context: BrowserContext, face: Emulator, name: str, gate: Path) -> tuple[Page, list[str], str]:
    """The page showing deployment `name` (a gate, made here), one of its batch requests that runs until
    `gate` exists opened from the history; the request's id."""
    add_echo(face, name, GATE_FIELDS, GATE_CODE.encode())
    page, elsewhere = open_page(context, face, name)
    (created,) = httpx.post(f"{face.api}/projects/{PROJECT}/deployments/{name}/requests/batch",
                            json=[gate_item(str(gate))]).json()
    page.click("#refresh")
    page.click(f'#history tr[data-id="{created["id"]}"][data-status="processing"] button')
    page.wait_for_selector("#outcome .status-processing")
    return page, elsewhere, created["id"]


def gate_item(gate: str) -> dict:
    return {"gate": gate, "count": 1, "ratio": 1.5, "flag": True, "choice": "a", "tags": [], "meta": {}, "level": 1, "options": {}}


def test_an_opened_request_is_followed_when_newer_ones_push_it_out_of_the_history(face, context, tmp_path):
    """The opened request was followed only while among the history's 20 newest rows: 25 newer ones
    left it shown as processing, "this view follows it", after it completed."""
    gate = tmp_path / "open"
    page, elsewhere, request_id = opened_while_processing(context, face, "pushed", gate)
    httpx.post(f"{face.api}/projects/{PROJECT}/deployments/pushed/requests/batch", json=[gate_item("")] * 25)
    page.wait_for_function(f"() => document.querySelectorAll('#history tbody tr').length === 20 && "
                           f"!document.querySelector('#history tr[data-id=\"{request_id}\"]')")
    gate.touch()
    page.wait_for_selector("#outcome .status-completed")
    assert page.inner_text("#outcome .summary").startswith(f"completed request {request_id}")
    assert shown(page, "ratio") == "1.5"
    assert elsewhere == []


def test_an_opened_request_whose_version_is_deleted_says_it_is_gone_and_is_not_followed(face, context, tmp_path):
    """It stayed "processing … this view follows it" for ever."""
    page, elsewhere, request_id = opened_while_processing(context, face, "deleted", tmp_path / "never")
    assert httpx.delete(f"{face.api}/projects/{PROJECT}/deployments/deleted/versions/v1").status_code == 204
    page.wait_for_selector("#outcome #error-message")
    assert page.inner_text("#error-message").startswith(f"Request {request_id} (version v1) is gone")
    assert "no longer follows it" in page.inner_text("#error-message")
    assert "follows it." not in page.inner_text("#outcome").replace("no longer follows it", "")
    assert elsewhere == []


@pytest.mark.parametrize("change", ["renamed", "deleted"])
def test_a_shown_deployment_renamed_or_deleted_reloads_the_deployment_list_and_is_not_polled(face, context, tmp_path, change):
    """It was polled by its old name every second under "404: Deployment not found", still in the menu."""
    before = f"{change}-before"
    page, elsewhere, _ = opened_while_processing(context, face, before, tmp_path / "never")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    url = f"{face.api}/projects/{PROJECT}/deployments/{before}"
    if change == "renamed":
        assert httpx.patch(url, json={"name": f"{change}-after"}).status_code == 200
        page.wait_for_selector(f'#deployment option[value="{change}-after"]', state="attached")
    else:
        assert httpx.delete(url).status_code == 204
    page.wait_for_selector(f"#page-problem:text('Deployment {before} is gone')")
    assert page.query_selector(f'#deployment option[value="{before}"]') is None
    polled = len([url for url in asked if f"/deployments/{before}/" in url])
    page.wait_for_timeout(2500)
    assert len([url for url in asked if f"/deployments/{before}/" in url]) == polled, "no longer polled by its old name"
    assert elsewhere == []


VISIBILITY = ("state => { Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });"
              "          document.dispatchEvent(new Event('visibilitychange')); }")


def test_a_hidden_tab_follows_the_history_seldom_and_at_once_when_shown_again(face, context, tmp_path):
    """Every refresh asks each version for 3 lists: a hidden tab did so every second."""
    gate = tmp_path / "open"
    page, elsewhere, row = processing_in_the_history(context, face, gate)
    history = re.compile(r"/requests\?status=")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if history.search(request.url) else None)
    page.evaluate(VISIBILITY, "hidden")
    page.wait_for_timeout(4000)
    assert len(asked) <= 3, f"one refresh at most (the one already under way), not {len(asked) // 3}"
    with page.expect_request(history, timeout=2000):
        page.evaluate(VISIBILITY, "visible")
    gate.touch()
    page.wait_for_selector(f'{row}[data-status="completed"]')
    assert elsewhere == []



def fill_in(page: Page, name: str, value: object) -> None:
    """Set the form's control for input field `name` to a `sample_input` value (a file's path is the
    repository's), as a user would."""
    control = f"#in-{name}"
    kind = page.eval_on_selector(control, "e => e.type")
    if kind == "file":
        page.set_input_files(control, [ROOT / path for path in (value if isinstance(value, list) else [value])])
    elif kind == "checkbox":
        page.set_checked(control, bool(value))
    elif kind == "select-one":
        page.select_option(control, str(value))
    elif kind == "range":
        page.eval_on_selector(control, "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(value))
    else:
        page.fill(control, json.dumps(value) if isinstance(value, dict | list) else str(value))


def test_the_served_package_s_whole_answer_is_shown_readably(context, tmp_path):
    """The other tests' stand-in has four output fields. The package `make serve` serves (the face
    profile: 47, with ints, a dict, arrays of doubles and an annotated image), sent its `sample_input`
    from the form: every output field is shown, numbers and text as sent, dicts and arrays as JSON,
    images loaded; and the version menu no longer says "building" once it answered."""
    config = load_config(ROOT)
    emulator = launcher.start_emulator(config.package_path, tmp_path, project=config.project,
                                       deployment=config.deployment, cwd=ROOT)
    try:
        problems: list[str] = []
        context.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        context.on("weberror", lambda error: problems.append(str(error.error)))
        page, elsewhere = open_page(context, emulator, config.deployment)
        assert isinstance(config.sample_input, dict), "a structured deployment's sample_input"
        for name, value in config.sample_input.items():
            fill_in(page, name, value)
        with page.expect_response(lambda r: r.url.startswith(emulator.api) and r.request.method == "POST",
                                  timeout=launcher.SERVED_SECONDS * 1000) as posted:
            page.click("#send")
        answer = posted.value.json()
        assert answer["status"] == "completed", answer
        page.wait_for_selector("#outcome table.fields")
        page.screenshot(path=tmp_path / "package.png", full_page=True)

        fields = {f.name: f.data_type for f in emulator.sdk().deployments_get(config.project, config.deployment).output_fields}
        assert page.eval_on_selector_all("#outcome table.fields tr", "rows => rows.map(r => r.dataset.field)") == list(fields)
        assert page.eval_on_selector_all("#outcome table.fields th", "cells => cells.map(c => c.innerText)") == list(fields)
        assert "[object Object]" not in page.inner_text("#outcome")
        for name, data_type in fields.items():
            value, text, cell = answer["result"][name], shown(page, name), f'#outcome tr[data-field="{name}"]'
            if value is None:
                assert text == "null", name
            elif data_type in ("dict", "array_int", "array_double", "array_string"):
                assert json.loads(text) == value, name
            elif data_type in ("file", "array_file"):
                uris = value if isinstance(value, list) else [value]
                images = [Image.open(io.BytesIO(emulator.download(answer, uri))).width for uri in uris if IMAGE_NAME.search(uri)]
                assert page.eval_on_selector_all(f"{cell} figcaption a", "links => links.length") == len(uris), name
                assert (images_loaded(page, f"{cell} img") if images else []) == images, name
            elif data_type == "bool":
                assert text == str(value).lower(), name
            elif data_type == "double":
                assert float(text) == value, name
            else:
                assert text == str(value), name
        page.wait_for_selector(f'#version option:text-is("{answer["version"]} (default)")', state="attached")
        assert problems == [] and elsewhere == []
    finally:
        emulator.stop()


def outcome_in_view(page: Page) -> bool:
    """Whether the outcome card's top is in the window."""
    return page.evaluate("() => { const top = document.getElementById('outcome-card').getBoundingClientRect().top;"
                         "       return top >= 0 && top < window.innerHeight; }")


def test_a_result_shown_below_the_form_is_brought_into_view(face, chromium, portrait):
    """Below 900 px wide the page is one column, the outcome under the form and the history: a result (at
    880 x 900 the face profile's started at 1457 px; the stand-in's form is shorter, so 880 x 700 here)
    or a request opened from the history appeared below the window, the user seeing a new history row."""
    narrow = chromium.new_context(viewport={"width": 880, "height": 700})
    try:
        page, elsewhere = open_page(narrow, face, DEPLOYMENT)
        page.set_input_files("#in-img", portrait)
        with page.expect_response(face.requests_url("v1")) as posted:
            page.click("#send")
        page.wait_for_selector('#outcome tr[data-field="face_found"]')
        assert outcome_in_view(page)

        page.evaluate("window.scrollTo(0, 0)")
        assert not outcome_in_view(page), "the card is below the window, or this test proves nothing"
        page.click(f'#history tr[data-id="{posted.value.json()["id"]}"] button')
        page.wait_for_selector("#outcome h3:text('Input')")
        assert outcome_in_view(page)
        assert elsewhere == []
    finally:
        narrow.close()


FAILING = "failing"
FAILING_CODE = b'''class Deployment:
    def request(self, data):
        for n in range(60):
            print(f"line {n}")
        print("<b>bold</b>", data["text"])
        raise ValueError("boom")
'''


def test_a_failed_request_shows_its_newest_log_lines_and_the_cli_command_that_finds_them(face, context):
    """UbiOps' error says "See the logs for details", and the page showed none."""
    add_echo(face, FAILING, [{"name": "text", "data_type": "string"}], FAILING_CODE)
    page, elsewhere = open_page(context, face, FAILING)
    page.fill("#in-text", "<img src=x onerror=alert(1)>")
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, FAILING)) as posted:
        page.click("#send")
    answer = posted.value.json()
    assert answer["status"] == "failed" and "See the logs" in answer["error_message"]

    def logs_shown(with_end: bool) -> list[str]:
        """The log lines the page shows, once complete, checked against what the command it shows finds."""
        page.locator("#outcome .log-text", has_text="ValueError: boom").wait_for()
        page.locator("#outcome .log-text", has_text=f"request {answer['id']} failed").wait_for()
        shown = page.eval_on_selector_all("#outcome .log-text", "lines => lines.map(l => l.textContent)")
        command = shlex.split(page.inner_text("#outcome .logs .cli"))
        assert command[:2] == ["ubiops", "logs"] and command[-1] == "--no_pager"
        options = dict(zip(command[2:-1:2], command[3:-1:2], strict=True))
        assert options.keys() == ({"--query", "--limit", "--end"} if with_end else {"--query", "--limit"})
        assert options["--query"] == f'| deployment_request_id="{answer["id"]}"' and options["--limit"] == "50"
        found = face.sdk().logs_list(PROJECT, query=options["--query"], limit=50,
                                     **({"end": options["--end"]} if with_end else {}))
        assert shown == [line.log for line in reversed(found)], "oldest first"
        return shown

    shown = logs_shown(with_end=False)
    assert len(shown) == 50 and "line 59" in shown and "line 0" not in shown, "the newest 50"
    assert "<b>bold</b> <img src=x onerror=alert(1)>" in shown
    assert page.query_selector("#outcome .logs b, #outcome .logs img") is None, "shown as text"

    page.click(f'#history tr[data-id="{answer["id"]}"] button')
    page.wait_for_selector("#outcome h3:text('Input')")
    assert logs_shown(with_end=True) == shown, "opened from the history, found back from its creation"
    assert elsewhere == []


def test_a_send_to_a_deleted_version_names_it_and_says_the_default_is_now_selected(face, context):
    """The refresh after the failure moved the menu to the default version: "404: Version not found"
    beside a menu showing a version that exists."""
    add_echo(face, "shifting", [{"name": "text", "data_type": "string"}], ODD_CODE)
    add_version(face, "shifting", "v2", ODD_CODE)
    page, elsewhere = open_page(context, face, "shifting")
    page.select_option("#version", "v2")
    assert httpx.delete(f"{face.api}/projects/{PROJECT}/deployments/shifting/versions/v2").status_code == 204
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.click("#send")
    assert posted.value.status == 404
    page.wait_for_selector("#version-gone:visible")
    assert page.inner_text("#error-message") == f"Request to version v2: 404: {posted.value.json()['error']}"
    assert page.inner_text("#version-gone") == "Version v2 is gone (deleted or renamed); the default version, v1, is now selected."
    assert page.input_value("#version") == "v1"
    page.select_option("#version", "v1")
    assert page.is_hidden("#version-gone")
    assert elsewhere == []


DROP_TWO = """zone => {
    const files = new DataTransfer();
    files.items.add(new File(["first"], "first.txt", { type: "text/plain" }));
    files.items.add(new File(["second"], "second.txt", { type: "text/plain" }));
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
}"""


def test_files_dropped_on_a_single_file_field_keep_the_first_and_say_so(face, context):
    """All were kept, and the request was refused (400) for a `file` field given two."""
    page, elsewhere = open_page(context, face, ODD)
    page.eval_on_selector("#in-upload >> xpath=ancestor::label[contains(@class, 'dropzone')]", DROP_TWO)
    assert page.eval_on_selector("#in-upload", "input => [...input.files].map(f => f.name)") == ["first.txt"]
    assert page.inner_text("#fields .dropped") == "This field takes one file: of the 2 dropped, only the first (first.txt) is kept."
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, ODD)) as posted:
        page.click("#send")
    answer = posted.value.json()
    assert answer.get("status") == "completed", answer
    assert answer["result"]["upload"].endswith("/first.txt")
    page.set_input_files("#in-upload", files=[{"name": "picked.txt", "mimeType": "text/plain", "buffer": b"x"}])
    assert page.is_hidden("#fields .dropped")
    assert elsewhere == []


LONG = "long"
LONG_FIELDS = [{"name": "text", "data_type": "string"}]
LONG_CODE = b"class Deployment:\n    def request(self, data):\n        return {'text': 'x' * 300000 + 'END'}\n"


def test_long_text_is_cut_with_a_control_that_shows_it_all(face, context):
    """A 20 MB string output made the page ~1.1 million px tall, and its raw JSON took ~2 s to open."""
    add_echo(face, LONG, LONG_FIELDS, LONG_CODE)
    page, elsewhere = open_page(context, face, LONG)
    with page.expect_response(face.requests_url("v1").replace(DEPLOYMENT, LONG)) as posted:
        page.click("#send")
    answer = posted.value.json()
    assert answer["result"] == {"text": "x" * 300000 + "END"}
    page.wait_for_selector('#outcome tr[data-field="text"]')
    assert shown(page, "text") == "x" * 10000 + "\n… cut: the first 10,000 of 300,003 characters shown. Show all"
    page.click('#outcome tr[data-field="text"] .cut button')
    assert shown(page, "text") == answer["result"]["text"]

    page.click("#outcome .raw summary")
    assert page.inner_text("#outcome .raw pre") == json.dumps(answer, indent=2)[:10000]
    page.click("#outcome .raw .cut button")
    assert json.loads(page.inner_text("#outcome .raw pre")) == answer
    assert elsewhere == []


def test_the_history_s_rows_are_updated_in_place_while_it_is_followed(face, context, tmp_path):
    """Each second's refresh rebuilt the table while a request ran: a click on a row as it was replaced
    was lost (1 in 20), and a selection in it reset."""
    gate = tmp_path / "open"
    page, elsewhere, row = processing_in_the_history(context, face, gate)
    page.eval_on_selector_all("#history tbody tr", "rows => rows.forEach(r => { r.kept = true; })")
    for _ in range(2):  # a refresh starts once the one before has drawn its rows
        with page.expect_request(lambda request: request.url.endswith(f"/deployments/{GATE}/versions")):
            pass
    assert page.eval_on_selector_all("#history tbody tr", "rows => rows.every(r => r.kept === true)")
    gate.touch()
    page.wait_for_selector(f'{row}[data-status="completed"]')
    assert page.eval_on_selector(row, "r => r.kept === true && r.cells[3].innerText === 'completed'"), "updated in place"
    assert elsewhere == []


def test_a_refresh_clicked_that_fails_is_tried_again(face, context):
    """It only said so: the history was not asked again, and a poll it had replaced (a request running)
    was not resumed, so the history was followed no more."""
    page, elsewhere = open_page(context, face, ODD)
    outage = HistoryOutage(page)
    page.click("#refresh")
    page.wait_for_selector("#page-problem:visible")
    outage.end()
    page.wait_for_selector("#page-problem", state="hidden")
    assert elsewhere == []
