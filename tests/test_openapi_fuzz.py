"""Requests generated from the emulator's own OpenAPI document by schemathesis (a bounded run):
none may be answered with a server error or with a body that breaks the documented schema.

Schemathesis keeps its run state (`.schemathesis/`: cache, recorded crashes) and Hypothesis' examples
in the working directory, so it runs in the test's tmp_path: the checkout stays clean, and a failing
run's replay files are in that folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import start_emulator

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_generated_requests_get_no_server_error(tmp_path):
    emulator = start_emulator("echo", tmp_path)
    try:
        run = subprocess.run(
            [Path(sys.executable).with_name("schemathesis"), "--config-file", CONFIG, "run", f"{emulator.url}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "10",
             "--phases", "examples,coverage,fuzzing", "--workers", "1", "--seed", "1", "--no-color"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
    finally:
        emulator.stop()
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    assert run.returncode == 0, run.stdout[-6000:]
    assert "passed" in summary and "Server error" not in run.stdout
