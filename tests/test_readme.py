"""Every Python sample in the README runs, as a user pastes it, against `make serve`'s emulator (the
configured package on the README's address, here on a free port), warnings as errors: a sample can
never again be a syntax error or lean on a deprecated call (the fixture sample, which this script
only defines, runs as the iris package's test in `test_workflows`). The shell samples run in
`test_workflows` (curl, `make serve`, the deployer) and `test_cli` (the CLI)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT

from contract.config import load_config
from contract.package import read_package
from emulator.launcher import start_emulator

README_ADDRESS = "http://127.0.0.1:8000"
CONFIG = load_config(ROOT)


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_samples():
    assert len(readme_blocks("python")) >= 2


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    emulator = start_emulator(CONFIG.package_path, tmp_path_factory.mktemp("readme"), project=CONFIG.project,
                              deployment=CONFIG.deployment, cwd=ROOT)
    yield emulator
    emulator.stop()


@pytest.mark.face_profile
def test_the_python_samples_run_in_order(served, tmp_path):
    """The samples build on each other ("continuing the Python above"), so they run as one script,
    from a folder that has the repository's package (and so its sample images) but is the test's own."""
    (tmp_path / CONFIG.package).symlink_to(CONFIG.package_path)
    script = "\n".join(readme_blocks("python")).replace(README_ADDRESS, served.url)
    run = subprocess.run([sys.executable, "-W", "error", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("completed "), run.stdout
    first_request = re.search(r"/deployment_requests/([0-9a-f-]{36})/", run.stdout)[1]
    logged = re.findall(rf"^info system {CONFIG.deployment}/\S+ request ([0-9a-f-]{{36}}) completed in ", run.stdout, re.M)
    assert logged and first_request not in logged, f"the logs sample prints the batch request's lines:\n{run.stdout}"


@pytest.mark.face_profile
def test_the_request_command_sample_runs(tmp_path):
    """Run where its output files can land: a copy of the project's config and package. Each output
    file is saved beside the input, its path shown in the table, as the README says."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(CONFIG.package_path, tmp_path / CONFIG.package)
    (block,) = [b for b in readme_blocks("sh") if "-m emulator request" in b]
    run = subprocess.run(["bash", "-e", "-c", block.replace(".venv/bin/python", sys.executable)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("status") and "completed" in run.stdout.splitlines()[0]
    words = block.split()
    input_folder = (tmp_path / words[words.index("request") + 1]).parent
    rows = dict(line.split(None, 1) for line in run.stdout.splitlines())
    file_fields = [f.name for f in read_package(CONFIG.package_path).output_spec.fields if f.data_type == "file"]
    assert file_fields, "the sample shows an output file saved"
    for name in file_fields:
        saved = Path(rows[name])
        assert saved.parent == input_folder and saved.stat().st_size > 0, (name, rows[name])
