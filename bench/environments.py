"""Environments: what building the default package's own Python costs, the first time and from the
cache, and what running in it costs per request, against `--own-python` (the emulator's own Python,
where `make package-dev` installed the same requirements).

    python bench/environments.py [--requests 40]

Everything is measured in one run, on this machine; results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from face_profile_package import ELSEWHERE, FACE_PROFILE, require_face_profile  # noqa: E402
from harness import Emulator, start_emulator  # noqa: E402

PACKAGE = FACE_PROFILE
PORTRAIT = PACKAGE / "tests" / "images" / "astronaut.jpg"
BUILT = re.compile(r"environment python3-11 built in ([\d.]+) s")


def serve(workdir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Emulator, float]:
    """The emulator on the default package, and the seconds from its start until its version is available."""
    started = time.monotonic()
    emulator = start_emulator(PACKAGE, workdir, *args, env=env)
    url = emulator.requests_url("v1").removesuffix("/requests")
    while httpx.get(url, timeout=5).json().get("status") != "available":
        if emulator.process.poll() is not None or time.monotonic() - started > 600:
            emulator.stop()
            raise SystemExit(f"the version never became available; see {emulator.log_path}")
        time.sleep(0.05)
    return emulator, time.monotonic() - started


def build_seconds(emulator: Emulator) -> str:
    found = BUILT.search(emulator.log())
    return f"{float(found[1]):.1f} s" if found else "(from the cache)"


def latencies(emulator: Emulator, count: int) -> list[float]:
    image = PORTRAIT.read_bytes()
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count + 3):
            started = time.perf_counter()
            response = client.post(emulator.requests_url(), files={"img": ("portrait.jpg", image)})
            assert response.json()["status"] == "completed", response.text
            times.append((time.perf_counter() - started) * 1000)
    return times[3:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    count = parser.parse_args().requests
    require_face_profile("bench/environments.py", "measures building and running the face-profile package's own environment", ELSEWHERE)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        rows = []
        environments = ["--environments-dir", str(work / "environments")]
        cold = {"UV_CACHE_DIR": str(work / "uv-cache")}
        emulator, seconds = serve(work, *environments, env=cold)
        rows.append(("first build, empty uv cache (a fresh machine)", build_seconds(emulator), seconds))
        emulator.stop()
        emulator, seconds = serve(work, "--environments-dir", str(work / "environments-2"))
        rows.append(("first build, uv's download cache warm", build_seconds(emulator), seconds))
        emulator.stop()
        isolated, seconds = serve(work, *environments)
        rows.append(("start with the environment cached", build_seconds(isolated), seconds))
        own, seconds = serve(work, "--own-python")
        rows.append(("start with --own-python (no environment)", "-", seconds))
        try:
            own_ms, isolated_ms = [], []
            for _ in range(2):  # interleaved, so drift hits both alike
                own_ms += latencies(own, count // 2)
                isolated_ms += latencies(isolated, count // 2)
        finally:
            own.stop()
            isolated.stop()

    print(f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; default package, 512 px portrait\n")
    print("| start | environment build | process start → version available |")
    print("|---|---|---|")
    for name, build, seconds in rows:
        print(f"| {name} | {build} | {seconds:.1f} s |")
    own_median, isolated_median = statistics.median(own_ms), statistics.median(isolated_ms)
    print(f"\n| per request ({len(own_ms)} each, interleaved) | median ms | ratio |")
    print("|---|---|---|")
    print(f"| --own-python | {own_median:.1f} | 1.00 |")
    print(f"| own environment (default) | {isolated_median:.1f} | {isolated_median / own_median:.2f} |")


if __name__ == "__main__":
    main()
