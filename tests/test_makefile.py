"""The Makefile's set-up: it installs again when the packages pyproject.toml asks for change, not when
only `[tool.deployer]` does (`deployer init` and `secrets = [...]` edit it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from harness import ROOT

INSTALL = "pip install --quiet -e '.[test]'"


def would_run(folder: Path) -> str:
    """What `make -n` would run to set up the virtual environment `venv` in `folder`."""
    return subprocess.run(["make", "-n", "VENV=venv", "venv/.installed"], cwd=folder, capture_output=True, text=True,
                          check=True).stdout


def edit(path: Path, old: str, new: str, later: int) -> None:
    path.write_text(path.read_text().replace(old, new, 1))
    stamp = time.time() + later  # newer than the stamps, whatever the file system's time resolution
    os.utime(path, (stamp, stamp))


def test_setup_installs_again_for_new_packages_not_for_deployer_settings(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(["make", "VENV=venv", "venv/.wanted"], cwd=tmp_path, capture_output=True, check=True)
    (tmp_path / "venv" / ".installed").touch()
    assert INSTALL not in would_run(tmp_path)

    edit(tmp_path / "pyproject.toml", "[tool.deployer]\n", '[tool.deployer]\nsecrets = ["API_KEY"]\n', 10)
    assert INSTALL not in would_run(tmp_path)

    edit(tmp_path / "pyproject.toml", 'requires-python = ">=3.11"', 'requires-python = ">=3.11.1"', 20)
    assert INSTALL in would_run(tmp_path)


def test_the_package_dev_set_up_installs_the_configured_packages_requirements(tmp_path):
    """`deployer init --package iris_pkg` names another folder: `make test` installs its requirements
    for its tests, not the face profile's."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(["make", "VENV=venv", "venv/.wanted"], cwd=tmp_path, capture_output=True, check=True)
    (tmp_path / "venv" / ".installed").touch()
    (tmp_path / "iris_pkg").mkdir()
    (tmp_path / "iris_pkg" / "requirements.txt").write_text("scikit-learn==1.7.2\n")
    edit(tmp_path / "pyproject.toml", 'package = "deployment_package"', 'package = "iris_pkg"', 10)
    planned = subprocess.run(["make", "-n", "VENV=venv", "package-dev"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
    assert "pip install --quiet -r iris_pkg/requirements.txt" in planned and "deployment_package" not in planned
