"""The requests backend over a real SQLite history and bucket folder, in process (no server, no instances)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.metrics import Metrics
from emulator.request_runner import RequestRunner
from emulator.request_store import RequestStore
from emulator.runtime.manager import Runtime
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.storage import Storage


@pytest.fixture
def database(tmp_path) -> Path:
    return tmp_path / "requests.sqlite3"


@pytest.fixture
def store(database) -> Iterator[RequestStore]:
    store = RequestStore(database)
    yield store
    store.close()


@pytest.fixture
def runner(tmp_path, store) -> RequestRunner:
    return RequestRunner(Storage(tmp_path / "data"), store, Runtime(EnvironmentBuilder()), Metrics())
