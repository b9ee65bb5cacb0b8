"""Fixtures: emulators started on demand and shared by the session (see `harness`), and a real browser."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM_ARGS
from harness import Emulator, start_emulator
from playwright.sync_api import Browser, sync_playwright

# A suite a script starts in the background (`.ci/run &`, no job control) inherits SIGINT ignored, and
# every process it starts would too: the tests of what Ctrl-C does to the deployer waited out their guard
# (Python turns SIGINT into KeyboardInterrupt only where it was not ignored at start). Caught here, it is
# at its default in each child, as an ignored signal is inherited across exec and a caught one is not.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Emulator]]:
    """Start emulators on demand, one per distinct (package, arguments), shared by the whole session."""
    running: dict[tuple, Emulator] = {}

    def get(package: Path | str, *args: str, token: str | None = None) -> Emulator:
        key = (str(package), args, token)
        if key not in running:
            running[key] = start_emulator(package, tmp_path_factory.mktemp("emulator"), *args, token=token)
        return running[key]

    yield get
    for emulator in running.values():
        emulator.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (`make test` installs it when missing)."""
    executable = shutil.which("chromium")
    assert executable, "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
