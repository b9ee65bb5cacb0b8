"""Short load runs (the full ones are `bench/load.py`): no errors, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace

import pytest
from harness import ROOT, start_emulator

from emulator.runtime.instance import TEMP_PREFIX

sys.path.insert(0, str(ROOT / "bench"))
from load import TEXT, LoadResult, completed, portrait_workload, run_hey, run_in_process, run_load, scaling


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_concurrent_clients_get_answers_and_nothing_leaks(tmp_path):
    emulator = start_emulator("plain", tmp_path, "--instances", "2")
    try:
        asyncio.run(run_load(emulator, TEXT, clients=4, seconds=0.5))
        fds_before, completed_before = open_fds(emulator.process.pid), completed(emulator)
        result = asyncio.run(run_load(emulator, TEXT, clients=8, seconds=3))
        assert result.requests > 0 and result.errors == 0
        assert completed(emulator) - completed_before == result.requests, "each answer, and no other, counted completed"
        assert all(seconds > 0 for seconds in result.cpu_seconds), "server, instances and client each did work"
        assert open_fds(emulator.process.pid) <= fds_before + 2, "file descriptors leaked"
        left = sorted(emulator.temp_dir.iterdir())
        assert [path.name.startswith(TEMP_PREFIX) for path in left] == [True, True], "temporary files leaked"
        assert [list(path.iterdir()) for path in left] == [[], []], "the running instances' own folders hold nothing"
        assert list((emulator.data_dir / "work").glob("*")) == [], "request work folders leaked"
    finally:
        emulator.stop()


def test_hey_sends_the_same_load_and_its_answers_are_counted(tmp_path):
    """`hey` cannot read the answers: the emulator's metrics tell its completed requests, so a
    request that fails counts as an error."""
    emulator = start_emulator("plain", tmp_path)
    try:
        result = run_hey(emulator, TEXT, clients=2, seconds=1)
        assert result.requests > 0 and result.errors == 0
        assert len(result.latencies_ms) == result.requests
        assert result.seconds * 1000 >= max(result.latencies_ms) > 0, "the run lasts at least as long as its slowest request"
        assert all(seconds > 0 for seconds in result.cpu_seconds), "server, instances and hey each did work"
        failing = replace(TEXT, body=b"", content_type="application/json")  # an empty body: HTTP 400
        assert run_hey(emulator, failing, clients=1, seconds=0.5).errors > 0
    finally:
        emulator.stop()


@pytest.mark.face_profile
def test_the_portrait_is_sent_as_curl_sends_it():
    workload = portrait_workload()
    assert workload.content_type.startswith("multipart/form-data; boundary=")
    assert b'Content-Disposition: form-data; name="img"; filename="portrait.jpg"' in workload.body


@pytest.mark.face_profile
def test_the_face_profile_runs_in_processes_of_its_own_as_the_bound_for_instances():
    """`--in-process`: what users would run instead of the emulator, each process doing real work."""
    result = run_in_process(2, seconds=1)
    assert result.requests >= 2 and result.errors == 0 and len(result.latencies_ms) == result.requests
    assert result.cpu_seconds[1] > 0, "the processes' CPU, counted as the instances'"


def test_instance_counts_are_compared_by_the_medians_of_their_runs():
    """`--instances 1 2 1 2`: each count's runs give one median throughput, compared to the first count's."""
    def runs(*throughputs: float) -> list[LoadResult]:
        return [LoadResult(round(throughput * 10), 0, 10.0, [1.0]) for throughput in throughputs]

    face_profile = {1: runs(50, 40, 60), 2: runs(85, 90)}
    assert scaling(face_profile, {1: runs(55), 2: runs(110)}) == (
        "face profile throughput, --instances 2 against 1: 1.75 x (in process: 2.00 x)")
    assert scaling(face_profile, {}) == "face profile throughput, --instances 2 against 1: 1.75 x"
