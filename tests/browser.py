"""A real browser for the tests: Debian's Chromium driven by Playwright, and a guard that keeps a page
from reaching anything but the emulator, to prove that the pages the emulator serves work offline."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Route

BROWSER_HOST = "devbox.test"
"""A name the browser resolves to 127.0.0.1 (and nothing else does): the emulator opened by an
`--allow-host` name, as another machine would open it."""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--host-resolver-rules=MAP {BROWSER_HOST} 127.0.0.1"]


def offline(context: BrowserContext, origin: str) -> list[str]:
    """Let the context's pages reach `origin` only (plus `data:` and `blob:` URLs, which go nowhere);
    every other request is aborted and its URL added to the returned list, which a test asserts empty."""
    elsewhere: list[str] = []
    allowed = urlsplit(origin).netloc

    def handle(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == allowed:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", handle)
    return elsewhere
