"""The benchmark scripts that need no network still run (their figures are read in BENCHMARKS.md,
never asserted here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_app_cpu_measures_the_event_loop_of_a_real_app():
    result = subprocess.run([sys.executable, "bench/app_cpu.py", "--requests", "20", "--model-ms", "1"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    match = re.search(r"event loop CPU per request: ([0-9.]+) ms \(user [0-9.]+, system [0-9.]+\); wall ([0-9.]+) ms; "
                      r"20 requests", result.stdout)
    assert match, result.stdout
    assert float(match[2]) > 0


@pytest.mark.face_profile
def test_app_cpu_measures_an_image_request_on_the_face_profile():
    """`--image`: the README's multipart portrait; each answer must be the face profile's completed one."""
    result = subprocess.run([sys.executable, "bench/app_cpu.py", "--requests", "3", "--image"], cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    match = re.search(r"event loop CPU per request: ([0-9.]+) ms .*; wall ([0-9.]+) ms; 3 requests", result.stdout)
    assert match, result.stdout
    assert float(match[2]) > float(match[1]) > 0  # the model's time passes in the instance, not the loop


def test_app_cpu_refuses_a_model_time_for_the_face_profile():
    result = subprocess.run([sys.executable, "bench/app_cpu.py", "--image", "--model-ms", "5"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--model-ms applies to the trivial package" in result.stderr


def test_compare_measures_the_emulator_with_hey_as_the_concurrent_clients(tmp_path):
    """`bench/compare.py --client hey`, on the one server it needs no peer environment for."""
    sys.path.insert(0, str(ROOT / "bench"))
    from compare import run_server

    run = run_server("emulator", tmp_path, tmp_path / "scratch", requests=20, seconds=1, hey=True)
    assert run.throughput > 0 and run.cpu_ms_c16 > 0 and run.p50_ms > 0  # hey's every answer was a 200 (hey_load)
    assert 0 < run.own_cpu_ms_c16 < run.cpu_ms_c16  # the instance's process is the tree's, not the server's own
    assert run.up is not None and 0 < run.up <= run.startup


def test_compare_shows_a_figure_whose_median_is_zero():
    """A server whose own process does no work at c=16 (BentoML's, its workers do it): a figure, not a crash."""
    sys.path.insert(0, str(ROOT / "bench"))
    from compare import Figure

    assert Figure([0.0, 0.0, 0.01]).show() == "0.00 ±0%"
    assert Figure([0.9, 1.0, 1.1]).show() == "1.00 ±10%"


@pytest.mark.parametrize("script, args, measures", [
    ("load.py", [], "measures the face-profile package under load"),
    ("bench_predict.py", [], "measures the face-profile model's predict"),
    ("environments.py", [], "measures building and running the face-profile package's own environment"),
    ("app_cpu.py", ["--image"], "--image measures the face-profile package's portrait request"),
])
def test_a_face_profile_benchmark_without_the_face_profile_says_so_in_one_line(tmp_path, script, args, measures):
    """After *Your own model* (`deployment_package/` without the face_profile library, its portraits and
    tests), the benchmarks of the face profile crashed on a missing portrait or module. In a copy of the
    layout they exit 2 with one line saying what they measure and what to do."""
    for folder, names in {"bench": ("load.py", "bench_predict.py", "environments.py", "app_cpu.py", "hey.py", "procstat.py"),
                          "tests": ("harness.py", "face_profile_package.py")}.items():
        (tmp_path / folder).mkdir()
        for name in names:
            shutil.copy(ROOT / folder / name, tmp_path / folder)
    (tmp_path / "deployment_package").mkdir()
    (tmp_path / "deployment_package" / "deployment.py").write_text("class Deployment:\n    pass\n")
    result = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert (result.returncode, result.stdout, len(result.stderr.splitlines())) == (2, "", 1), result.stderr
    assert result.stderr.startswith(f"bench/{script}: {measures}"), result.stderr
    assert (f", and {tmp_path / 'deployment_package'} is not the face-profile package (it has no libraries/face_profile): "
            in result.stderr), result.stderr
    assert ("--checkout DIR" if script == "app_cpu.py" else "git worktree add") in result.stderr
