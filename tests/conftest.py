"""Fixtures: emulators started on demand and shared by the session (see `harness`), and a real browser."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM_ARGS
from face_profile_package import is_face_profile
from harness import ROOT, Emulator, start_emulator
from playwright.sync_api import Browser, sync_playwright

from contract.config import ConfigError, load_config

# A suite a script starts in the background (`.ci/run &`, no job control) inherits SIGINT ignored, and
# every process it starts would too: the tests of what Ctrl-C does to the deployer waited out their guard
# (Python turns SIGINT into KeyboardInterrupt only where it was not ignored at start). Caught here, it is
# at its default in each child, as an ignored signal is inherited across exec and a caught one is not.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

LEFT_OUT = pytest.StashKey[str]()
"""The summary line naming the face-profile tests left out, when they are."""


def face_profile_absent() -> str | None:
    """Why the tests marked face_profile cannot pass here, or None when the configured package is the face
    profile. After *Your own model* they failed on a missing portrait or field, saying neither."""
    try:
        config = load_config(ROOT)
    except ConfigError:
        return None  # the tests that read the configuration say what is wrong with it
    if is_face_profile(config.package_path):
        return None
    return (f"the package is {config.deployment} ({config.package}/), not the face profile: these tests run the README's "
            "face-profile samples and benchmarks (README, Your own model)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked face_profile where the configured package is not the face profile."""
    marked = [item for item in items if item.get_closest_marker("face_profile")]
    reason = face_profile_absent() if marked else None
    if reason:
        config.hook.pytest_deselected(items=marked)
        items[:] = [item for item in items if not item.get_closest_marker("face_profile")]
        config.stash[LEFT_OUT] = f"{len(marked)} face-profile sample tests left out: {reason}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if LEFT_OUT in config.stash:
        terminalreporter.write_line(config.stash[LEFT_OUT], yellow=True, bold=True)


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
