"""The benchmark scripts that need no network still run (their figures are read in BENCHMARKS.md,
never asserted here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_app_cpu_measures_the_event_loop_of_a_real_app():
    result = subprocess.run([sys.executable, "bench/app_cpu.py", "--requests", "20", "--model-ms", "1"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    match = re.search(r"event loop CPU per request: ([0-9.]+) ms \(user [0-9.]+, system [0-9.]+\); wall ([0-9.]+) ms; "
                      r"20 requests", result.stdout)
    assert match, result.stdout
    assert float(match[2]) > 0
