"""Retention: how the data folder grows under many small requests, with requests kept a week (the
default) and with a short `request_retention_time`, and whether deleting expired ones costs
throughput. On this machine only.

    python bench/retention.py [--requests 20000] [--clients 8] [--retention 5]

Each run starts its own emulator on the trivial plain package with a fresh data folder (the sweep
every second), sends `--requests` plain-text requests from `--clients` concurrent clients, and
prints the data folder's size every tenth of the way, then the throughput. Results go in
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from harness import DEPLOYMENT, PROJECT, Emulator, start_emulator  # noqa: E402

SWEEP_SECONDS = "1"


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def send(emulator: Emulator, requests: int, clients: int, checkpoints: int) -> tuple[float, list[tuple[int, int]]]:
    """Send `requests` requests; the seconds it took and (requests answered, data folder bytes) along the way."""
    assert emulator.data_dir is not None, "started by this process"
    started_count, done, sizes = 0, 0, []
    step = requests // checkpoints

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal started_count, done
        while started_count < requests:
            started_count += 1
            response = await http.post(emulator.requests_url(), content="retention", headers={"Content-Type": "text/plain"})
            assert response.status_code == 200 and response.json()["status"] == "completed", response.text
            done += 1
            if done % step == 0:
                sizes.append((done, folder_size(emulator.data_dir)))

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return time.monotonic() - started, sizes


def run(requests: int, clients: int, retention: int | None) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        emulator = start_emulator("plain", Path(workdir), "--retention-sweep-seconds", SWEEP_SECONDS)
        try:
            if retention is not None:
                emulator.sdk().deployment_versions_update(PROJECT, DEPLOYMENT, "v1", {"request_retention_time": retention})
            assert emulator.data_dir is not None, "started by this process"
            before = folder_size(emulator.data_dir)
            seconds, sizes = asyncio.run(send(emulator, requests, clients, 10))
            name = "kept a week (default)" if retention is None else f"request_retention_time {retention} s"
            print(f"\n{name}: {requests} requests in {seconds:.1f} s, {requests / seconds:.0f} req/s; "
                  f"data folder {before / 1e6:.2f} MB at start")
            print("| requests answered | data folder MB |\n|---|---|")
            for count, size in sizes:
                print(f"| {count} | {size / 1e6:.2f} |")
        finally:
            emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--retention", type=int, default=5, help="the short retention time, in seconds")
    args = parser.parse_args()
    run(args.requests, args.clients, None)
    run(args.requests, args.clients, args.retention)


if __name__ == "__main__":
    main()
