"""The tests marked face_profile run the README's face-profile samples and benchmarks as written. Here,
where the configured package is the face profile, every one of them is collected; on a repository
whose package was replaced (README, *Your own model*) they are left out, and pytest's summary says how
many and why in one line, where they failed on a missing portrait or field, saying neither."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from face_profile_package import is_face_profile
from harness import ROOT

from contract.config import load_config

MARKED = {
    "tests/test_readme.py::test_the_python_samples_run_in_order",
    "tests/test_readme.py::test_the_request_command_sample_runs",
    "tests/test_cli.py::test_the_readme_cli_sample_runs_as_written",
    "tests/test_workflows.py::test_make_serve_then_the_readme_curl",
    "tests/test_bench_scripts.py::test_app_cpu_measures_an_image_request_on_the_face_profile",
    "tests/test_load.py::test_the_portrait_is_sent_as_curl_sends_it",
    "tests/test_load.py::test_the_face_profile_runs_in_processes_of_its_own_as_the_bound_for_instances",
    "tests/test_face_profile_samples.py::test_every_face_profile_test_is_collected_here",
}


def collect(root, *args: str) -> subprocess.CompletedProcess:
    """`pytest --collect-only -q` in `root`, with this checkout's code importable."""
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args], cwd=root,
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


@pytest.mark.face_profile
def test_every_face_profile_test_is_collected_here():
    """CI skips none of them: this repository's package is the face profile, and the files holding the
    marked tests collect them all, none deselected (itself marked: after *Your own model* it is false)."""
    assert is_face_profile(load_config(ROOT).package_path)
    files = sorted({name.split("::")[0] for name in MARKED})
    marked = collect(ROOT, "-m", "face_profile", *files)
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert {line for line in marked.stdout.splitlines() if "::" in line} == MARKED
    everything = collect(ROOT, *files)
    assert everything.returncode == 0 and "deselected" not in everything.stdout, everything.stdout
    assert "left out" not in everything.stdout


def test_without_the_face_profile_they_are_left_out_saying_why_in_one_line(tmp_path):
    """A copy of the layout after *Your own model*: the configured package (deployment iris) has no
    face_profile library. Collected with the suite's own conftest, test_readme.py keeps its test of
    the README itself and leaves out its two samples, naming them in the summary."""
    (tmp_path / "tests").mkdir()
    for name in ("conftest.py", "harness.py", "browser.py", "face_profile_package.py", "test_readme.py"):
        shutil.copy(ROOT / "tests" / name, tmp_path / "tests")
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config.replace('\ndeployment = "face-profile"\n', '\ndeployment = "iris"\n', 1))
    (tmp_path / "deployment_package").mkdir()
    (tmp_path / "deployment_package" / "deployment.py").write_text("class Deployment:\n    pass\n")
    collected = collect(tmp_path)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    lines = collected.stdout.splitlines()
    assert [line for line in lines if "::" in line] == ["tests/test_readme.py::test_the_readme_has_python_samples"]
    assert [line for line in lines if "left out" in line] == [
        "2 face-profile sample tests left out: the package is iris (deployment_package/), not the face profile: these "
        "tests run the README's face-profile samples and benchmarks (README, Your own model)"]
    assert lines[-1].startswith("1/3 tests collected (2 deselected)")
