"""A short load run (the full one is `bench/load.py`): no errors, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import sys

from harness import ROOT, start_emulator

sys.path.insert(0, str(ROOT / "bench"))
from load import run_load, send_text


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_concurrent_clients_get_answers_and_nothing_leaks(tmp_path):
    emulator = start_emulator("plain", tmp_path, "--instances", "2")
    try:
        asyncio.run(run_load(emulator, send_text, clients=4, seconds=0.5))
        fds_before = open_fds(emulator.process.pid)
        result = asyncio.run(run_load(emulator, send_text, clients=8, seconds=3))
        assert result.requests > 50 and result.errors == 0
        assert all(seconds > 0 for seconds in result.cpu_seconds), "server, instances and client each did work"
        assert open_fds(emulator.process.pid) <= fds_before + 2, "file descriptors leaked"
        assert list(emulator.temp_dir.iterdir()) == [], "temporary files leaked"
        assert list((emulator.data_dir / "work").glob("*")) == [], "request work folders leaked"
    finally:
        emulator.stop()
