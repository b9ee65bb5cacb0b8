"""Fixtures for the model-level tests: model1.pkl is built into a temporary folder and unpickled,
exactly as the deployment loads it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import pytest
from profile_helpers import IMAGES, PORTRAITS, ROOT


@pytest.fixture(scope="session")
def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_model", ROOT / "scripts" / "build_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def model_path(build_script: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model1.pkl"
    build_script.build(path)
    return path


@pytest.fixture(scope="session")
def model(model_path: Path) -> Iterator[Any]:
    model = joblib.load(model_path)
    yield model
    # Now, while pytest still captures output: MediaPipe's face detector logs when it is destroyed,
    # which at exit would follow pytest's summary line.
    model.close()


@pytest.fixture(scope="session")
def profiles(model: Any) -> dict[str, dict[str, Any]]:
    """Default-option profile of each committed portrait, computed once."""
    return {name: model.predict(str(IMAGES / name)).fields for name in PORTRAITS}
