"""A web page the developer visits cannot use the emulator: a foreign `Origin`, a cross-site fetch or a
rebound `Host` is refused on every state-changing route before anything is read, in HTTP and in a real
Chromium; curl, the emulator's own page, `--allow-origin` pages and signed file URLs keep working."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, ROOT, Emulator, free_port, start_emulator, wait_for_log, zip_bytes
from PIL import Image

from emulator.app import API_PREFIXES

EVIL = "http://evil.example"
ALLOWED_HOST = "devbox.test"
TOKEN = "origins-test-token"
ORIGIN_REFUSED = "Requests from the web origin"
CROSS_SITE_REFUSED = "Cross-site requests are refused"
HOST_REFUSED = "is refused: the emulator answers only to its own address"


def marker_package(marker: Path) -> bytes:
    """A package zip that writes `marker` when imported and again in `__init__`: proof its code ran."""
    code = (f"MARKER = {str(marker)!r}\nopen(MARKER, 'a').write('imported\\n')\n\n\n"
            "class Deployment:\n    def __init__(self):\n        open(MARKER, 'a').write('started\\n')\n\n"
            "    def request(self, data):\n        return data\n")
    return zip_bytes({"deployment_package/deployment.py": code.encode()})


def state_changing_routes(emulator: Emulator) -> list[tuple[str, str]]:
    """Every route but GET, read from the emulator's own OpenAPI document, under every API prefix (the
    document shows the first), so a route added later is covered without editing this test. Deletions
    come last, so that without the guard every other call would find its target and do its harm."""
    paths = httpx.get(f"{emulator.url}/openapi.json").json()["paths"]
    routes = [(method.upper(), path) for path, operations in paths.items() for method in operations if method != "get"]
    documented, *others = API_PREFIXES
    routes += [(method, prefix + path.removeprefix(documented)) for method, path in routes
               if path.startswith(documented + "/") for prefix in others]
    return sorted(routes, key=lambda route: route[0] == "DELETE")


def snapshot(emulator: Emulator) -> dict:
    """What a request could change: every file of the data folder (SQLite's shared-memory index aside,
    which reads touch) and the deployments, versions, revisions, buckets and requests the API reports."""
    api = emulator.sdk()
    files = {str(p.relative_to(emulator.data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(emulator.data_dir.rglob("*")) if p.is_file() and not p.name.endswith("-shm")}
    deployments = [d.to_dict() for d in api.deployments_list(PROJECT)]
    versions = [v.to_dict() for d in deployments for v in api.deployment_versions_list(PROJECT, d["name"])]
    return {
        "files": files,
        "deployments": deployments,
        "versions": versions,
        "revisions": [r.to_dict() for v in versions for r in api.revisions_list(PROJECT, v["deployment"], v["version"])],
        "buckets": [b.to_dict() for b in api.buckets_list(PROJECT)],
        "requests": [r.to_dict() for r in api.deployment_requests_list(PROJECT, DEPLOYMENT)],
    }


def cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


def new_plain_deployment(emulator: Emulator, name: str) -> str:
    """A deployment with an empty version `v1`, ready for a revision; its revisions URL."""
    api = emulator.sdk()
    api.deployments_create(PROJECT, {"name": name, "input_type": "plain", "output_type": "plain"})
    api.deployment_versions_create(PROJECT, name, {"version": "v1"})
    return f"{emulator.api}/projects/{PROJECT}/deployments/{name}/versions/v1/revisions"


def wait_for_build(emulator: Emulator, deployment: str, revision: str) -> None:
    ubiops.utils.wait_for_deployment_version(emulator.sdk().api_client, PROJECT, deployment, "v1",
                                             revision_id=revision, timeout=60, quiet=True)


class PageServer:
    """A second local web server, on its own port and so its own origin, serving the test pages."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.origin = f"http://127.0.0.1:{self._server.server_port}"

    def serve(self, path: str, html: str) -> str:
        self.pages[path] = html
        return self.origin + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Iterator[Emulator]:
    """The emulator as the README starts it (no token, no allow-lists), with a request and a file to lose."""
    emulator = start_emulator("plain", tmp_path_factory.mktemp("target"))
    assert httpx.post(emulator.requests_url(), content=b"kept", headers={"Content-Type": "text/plain"}).status_code == 200
    upload = httpx.post(f"{emulator.api}/projects/{PROJECT}/buckets/default/files/kept.txt").json()["url"]
    assert httpx.put(upload, content=b"kept").status_code == 201
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def allowing(pages, tmp_path_factory) -> Iterator[Emulator]:
    """An emulator that allows the page server's origin and the host name `devbox.test`."""
    emulator = start_emulator("plain", tmp_path_factory.mktemp("allowing"), "--allow-origin", pages.origin,
                              "--allow-host", ALLOWED_HOST)
    yield emulator
    emulator.stop()


ATTACKS: dict[str, tuple[Callable[[int], dict[str, str]], str]] = {
    "foreign Origin": (lambda port: {"Origin": EVIL}, ORIGIN_REFUSED),
    "Origin null": (lambda port: {"Origin": "null"}, ORIGIN_REFUSED),
    "Sec-Fetch-Site cross-site": (lambda port: {"Sec-Fetch-Site": "cross-site"}, CROSS_SITE_REFUSED),
    "DNS rebinding": (lambda port: {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}, HOST_REFUSED),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_state_changing_route_refuses_a_foreign_page_and_changes_nothing(target, tmp_path, attack):
    make_headers, refusal = ATTACKS[attack]
    port = urlsplit(target.url).port
    marker = tmp_path / "marker"
    signed_put = urlsplit(httpx.post(f"{target.api}/projects/{PROJECT}/buckets/default/files/planted.txt").json()["url"]).query
    values = {"project_name": PROJECT, "deployment_name": DEPLOYMENT, "version": "v1", "bucket_name": "default",
              "bucket": "default", "file": "kept.txt", "name": "planted.txt",
              "request_id": target.sdk().deployment_requests_list(PROJECT, DEPLOYMENT)[0].id}
    routes = state_changing_routes(target)
    assert ("POST", "/v2/projects/{project_name}/deployments/{deployment_name}/versions/{version}/revisions") in routes
    assert ("PUT", "/storage/{bucket}/{name}") in routes
    before, builds = snapshot(target), target.log().count("building ")

    wrong = []
    for method, path in routes:
        url = target.url + re.sub(r"\{(\w+)\}", lambda m: quote(values.get(m[1], "any"), safe=""), path) + "?" + signed_put
        response = httpx.request(method, url, headers=make_headers(port),
                                 files={"file": ("package.zip", marker_package(marker))})
        if response.status_code != 403 or refusal not in response.json()["error"] or cors_headers(response):
            wrong.append((method, path, response.status_code, response.text[:200], cors_headers(response)))

    assert not wrong, wrong
    assert snapshot(target) == before
    assert not marker.exists() and target.log().count("building ") == builds


@pytest.mark.parametrize("name, headers", [
    ("curl", {}),
    ("own-origin", {"Origin": "{url}"}),
    ("own-origin-localhost", {"Origin": "http://localhost:{port}", "Host": "localhost:{port}"}),
    ("allowed-host", {"Origin": f"http://{ALLOWED_HOST}:{{port}}", "Host": f"{ALLOWED_HOST}:{{port}}"}),
    ("allowed-origin", {"Origin": "{page}", "Sec-Fetch-Site": "cross-site"}),
])
def test_curl_the_emulators_own_origin_and_an_allowed_origin_upload_a_revision_that_builds(allowing, pages, tmp_path, name, headers):
    fill = {"url": allowing.url, "port": urlsplit(allowing.url).port, "page": pages.origin}
    marker = tmp_path / "marker"
    revisions = new_plain_deployment(allowing, name)
    response = httpx.post(revisions, headers={k: v.format(**fill) for k, v in headers.items()},
                          files={"file": ("package.zip", marker_package(marker))})
    assert response.status_code == 200, response.text
    wait_for_build(allowing, name, response.json()["revision"])
    assert marker.read_text().splitlines()[-1] == "started"


def test_cors_headers_go_only_to_an_allowed_origin(allowing, pages):
    url = allowing.requests_url()
    text = {"Content-Type": "text/plain"}
    preflight = httpx.options(url, headers={"Origin": pages.origin, "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == pages.origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization,content-type"

    allowed = httpx.post(url, content=b"hi", headers={"Origin": pages.origin, **text})
    assert allowed.json()["result"] == "HI" and allowed.headers["access-control-allow-origin"] == pages.origin

    foreign = httpx.options(url, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert foreign.status_code == 403 and ORIGIN_REFUSED in foreign.json()["error"] and not cors_headers(foreign)
    for headers in ({"Origin": allowing.url}, {}):
        answer = httpx.post(url, content=b"hi", headers={**headers, **text})
        assert answer.json()["result"] == "HI" and not cors_headers(answer)


def test_a_preflight_is_answered_before_the_token_is_asked_for(tmp_path):
    app = "http://app.test:3000"
    emulator = start_emulator("plain", tmp_path, "--allow-origin", app, token=TOKEN)
    try:
        preflight = httpx.options(f"{emulator.api}/status", headers={
            "Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == app
        refused = httpx.get(f"{emulator.api}/status", headers={"Origin": app})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == app
        answer = httpx.get(f"{emulator.api}/status", headers={"Origin": app, "Authorization": f"Token {TOKEN}"})
        assert answer.json() == {"status": "ok"} and answer.headers["access-control-allow-origin"] == app
    finally:
        emulator.stop()


@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:{port}", True), ("localhost:{port}", True), ("localhost", True), ("LOCALHOST.:{port}", True),
    ("127.0.0.2:{port}", True), ("[::1]:{port}", True), (f"{ALLOWED_HOST}:{{port}}", True),
    ("evil.example:{port}", False), ("127.0.0.1.evil.example", False), ("localhost.evil.example:{port}", False),
    (f"{ALLOWED_HOST}.evil.example", False), ("evil.example@127.0.0.1", False), ("[::2]:{port}", False),
])
def test_only_the_emulators_own_loopback_and_allowed_hosts_are_answered(allowing, host, allowed):
    """Reads too: a page on a rebound name could read whatever the emulator answers."""
    response = httpx.get(f"{allowing.api}/projects", headers={"Host": host.format(port=urlsplit(allowing.url).port)})
    if allowed:
        assert response.status_code == 200 and response.json()[0]["name"] == PROJECT
    else:
        assert response.status_code == 403 and HOST_REFUSED in response.json()["error"]


def test_listening_on_all_interfaces_answers_only_to_the_hosts_the_flags_name(tmp_path):
    emulator = start_emulator("plain", tmp_path, "--allow-host", ALLOWED_HOST, host="0.0.0.0")
    try:
        log = wait_for_log(emulator, "answering requests whose Host is")
        assert "listening on 0.0.0.0 without a token" in log
        assert f"answering requests whose Host is 0.0.0.0, {ALLOWED_HOST}, localhost or a loopback address" in log
        port = urlsplit(emulator.url).port
        for host, status in ((f"0.0.0.0:{port}", 200), (f"{ALLOWED_HOST}:{port}", 200), (f"localhost:{port}", 200),
                             (f"192.168.1.20:{port}", 403), (f"evil.example:{port}", 403)):
            assert httpx.get(f"{emulator.api}/status", headers={"Host": host}).status_code == status, host
    finally:
        emulator.stop()


def test_signed_downloads_are_exempt_from_the_origin_rule_but_not_from_the_host_rule(target):
    url = target.sdk().files_download(PROJECT, "default", "kept.txt").url
    from_a_page = httpx.get(url, headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    assert from_a_page.content == b"kept" and not cors_headers(from_a_page)
    rebound = httpx.get(url, headers={"Host": f"evil.example:{urlsplit(target.url).port}"})
    assert rebound.status_code == 403 and HOST_REFUSED in rebound.json()["error"]


@pytest.mark.parametrize("headers, status", [
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 200),
    ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, 200),
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, 403),
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}, 403),
    ({"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, 403),
])
def test_a_link_to_the_docs_from_another_site_opens_but_frames_and_reads_are_refused(target, headers, status):
    assert httpx.get(f"{target.url}/docs", headers=headers).status_code == status


@pytest.mark.parametrize("flag, value, message", [
    ("--allow-origin", "*", "'*' is not an origin such as http://localhost:3000"),
    ("--allow-origin", "null", "'null' is not an origin"),
    ("--allow-origin", "http://app.test/path", "'http://app.test/path' is not an origin"),
    ("--allow-origin", "app.test:3000", "'app.test:3000' is not an origin"),
    ("--allow-host", "*", "'*' is not a host name"),
    ("--allow-host", "evil.example/x", "'evil.example/x' is not a host name"),
])
def test_a_malformed_allow_flag_is_refused_at_start(tmp_path, flag, value, message):
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", "tests/packages/plain", "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data"), flag, value], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and f"{flag}: {message}" in run.stderr and "Traceback" not in run.stderr


ATTACK_PAGE = """<!doctype html><title>cute cats</title>
<form id="upload" method="post" enctype="multipart/form-data" action="{revisions}">
  <input type="file" name="file" id="file">
</form>
<script>
const bytes = Uint8Array.from(atob("{package}"), c => c.charCodeAt(0));
const chosen = new DataTransfer();
chosen.items.add(new File([bytes], "package.zip", {{type: "application/zip"}}));
document.getElementById("file").files = chosen.files;
fetch("{requests}", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body: "pwned"}})
  .finally(() => document.getElementById("upload").submit());
</script>"""

UPLOAD_SCRIPT = """async ({url, zip}) => {
  const body = new FormData();
  body.append("file", new File([Uint8Array.from(atob(zip), c => c.charCodeAt(0))], "package.zip"));
  const response = await fetch(url, {method: "POST", body});
  return {status: response.status, body: await response.json()};
}"""

REQUEST_SCRIPT = """async ({url, token}) => {
  const response = await fetch(url, {method: "POST", body: "from the app",
                                     headers: {"Content-Type": "text/plain", "Authorization": token}});
  return {status: response.status, result: (await response.json()).result};
}"""


def test_a_foreign_page_in_chromium_can_neither_upload_a_revision_nor_post_a_request(chromium, pages, target, tmp_path):
    marker = tmp_path / "marker"
    revisions = f"{target.api}/projects/{PROJECT}/deployments/{DEPLOYMENT}/versions/v1/revisions"
    attack = pages.serve("/cats.html", ATTACK_PAGE.format(
        revisions=revisions, requests=target.requests_url(),
        package=base64.b64encode(marker_package(marker)).decode()))
    before = snapshot(target)
    page = chromium.new_page()
    with page.expect_response(lambda r: r.url == revisions) as upload, \
            page.expect_response(lambda r: r.url == target.requests_url()) as posted:
        page.goto(attack)
    page.wait_for_url(revisions)
    page.screenshot(path=tmp_path / "refused-upload.png")

    assert upload.value.status == 403 and posted.value.status == 403
    assert upload.value.request.header_value("origin") == pages.origin
    assert ORIGIN_REFUSED in page.inner_text("body")
    log = target.log()
    assert f"refused POST {urlsplit(revisions).path!r}" in log and f"refused POST {urlsplit(target.requests_url()).path!r}" in log
    assert snapshot(target) == before and not marker.exists()
    page.close()


def test_the_emulators_own_page_in_chromium_uploads_a_revision_that_builds(chromium, allowing, tmp_path):
    marker = tmp_path / "marker"
    revisions = new_plain_deployment(allowing, "from-its-own-page")
    page = chromium.new_page()
    page.goto(f"{allowing.api}/status")
    with page.expect_request(lambda r: r.url == revisions) as sent:
        answer = page.evaluate(UPLOAD_SCRIPT, {"url": revisions, "zip": base64.b64encode(marker_package(marker)).decode()})
    assert sent.value.header_value("origin") == allowing.url
    assert answer["status"] == 200, answer
    wait_for_build(allowing, "from-its-own-page", answer["body"]["revision"])
    assert marker.read_text().splitlines()[-1] == "started"
    page.close()


def test_a_page_of_an_allowed_origin_in_chromium_reads_the_answer_through_cors(chromium, pages, allowing):
    page = chromium.new_page()
    page.goto(pages.serve("/app.html", "<!doctype html><title>my app</title>"))
    answer = page.evaluate(REQUEST_SCRIPT, {"url": allowing.requests_url(), "token": "Token any"})
    assert answer == {"status": 200, "result": "FROM THE APP"}
    page.close()


def test_a_foreign_page_in_chromium_shows_an_image_by_its_signed_url(chromium, pages, target, tmp_path):
    image = tmp_path / "shown.png"
    Image.new("RGB", (64, 48), "teal").save(image)
    api = target.sdk()
    ubiops.utils.upload_file(api.api_client, PROJECT, str(image), bucket_name="default", file_name="shown.png")
    url = api.files_download(PROJECT, "default", "shown.png").url
    page = chromium.new_page()
    page.goto(pages.serve("/gallery.html", f'<!doctype html><img id="shown" src="{url}">'))
    page.screenshot(path=tmp_path / "signed-image.png")
    assert page.evaluate("document.getElementById('shown').naturalWidth") == 64
    page.close()



def test_a_refused_path_cannot_forge_log_lines_or_reach_the_terminal(target):
    """The refused call's path is logged escaped: decoded as it came, a page's `%0d%0a` forged a log line of
    its own and `%1b]52;…` set the clipboard of the terminal showing the log."""
    response = httpx.post(f"{target.url}/x%1b]52;c;cHduZWQ=%07%0d%0a2026-11-30 INFO emulator: FORGED",
                          headers={"Origin": "http://evil.test"})
    assert response.status_code == 403
    log = wait_for_log(target, "refused POST '/x")
    assert "\\x1b]52" in log, "escaped"
    assert "\x1b" not in log and "\x07" not in log, "no terminal escape reaches the log"
    assert "\n2026-11-30 INFO emulator: FORGED" not in log and "\r" not in log


def test_the_web_page_is_checked_again_at_each_load_and_framed_by_no_page(target):
    """Cached, an upgraded emulator's page ran its older script (which asked the API as it used to); framed
    by a page on another port of this host, its user could be made to press Send."""
    for path in ("/", "/web/app.js"):
        response = httpx.get(f"{target.url}{path}")
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-cache" and response.headers["x-frame-options"] == "DENY", path
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'", path
    for path in ("/docs", "/docs/oauth2-redirect"):  # any HTML page: Swagger UI's Execute buttons change things
        response = httpx.get(f"{target.url}{path}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), path
        assert response.headers.get_list("x-frame-options") == ["DENY"], path
        assert response.headers.get_list("content-security-policy") == ["frame-ancestors 'none'"], path


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_a_page_on_another_port_in_chromium_cannot_frame_the_emulators_pages(chromium, pages, target, path, tmp_path):
    """Another port of this host is the same site, which the origin rule lets through: framed there,
    `/docs`, without the frame headers the web page has, could have its user press its Execute buttons."""
    page = chromium.new_page()
    with page.expect_response(target.url + path) as framed:
        page.goto(pages.serve(f"/framing{path}", f'<!doctype html><title>prizes</title><iframe src="{target.url}{path}"></iframe>'))
    page.screenshot(path=tmp_path / "framed.png")
    assert framed.value.status == 200 and [frame.url for frame in page.frames[1:]] == ["chrome-error://chromewebdata/"]
    page.close()
