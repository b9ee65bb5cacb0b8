"""Fixtures: emulators started on demand and shared by the session (see `harness`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from harness import Emulator, start_emulator


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
