"""Load: N concurrent clients for a bounded time against a real emulator, on this machine only.

    python bench/load.py [--clients 8] [--seconds 20] [--instances 2 ...] [--client httpx|hey] [--in-process]

Runs against the default face-profile package (a 512 px portrait, multipart, as curl sends it)
and against a trivial plain package, each after a 2 s warm-up, and prints throughput, p50/p95/p99
latency, errors, and the CPU time per request of the emulator's server process, of its instances
and of the client (from /proc; they share the machine's cores), for each, measured in one run.
The clients are httpx's (what a test suite would use), or `hey` (`bench/hey.py`). `--in-process`
adds what users would run instead, the bound for `--instances`: the face profile's
`Deployment.request` called back to back in as many processes of their own, without a server.
Several instance counts (`--instances 1 2 1 2`) run in turn, and the face profile's throughput at
each is printed as a multiple of the first count's (medians of its runs), beside the same ratio in
process. Results go in BENCHMARKS.md. `tests/test_load.py` runs a short version of each. Where
`deployment_package/` is not the face profile (README, *Your own model*), it exits 2 saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from face_profile_package import ELSEWHERE, FACE_PROFILE, require_face_profile  # noqa: E402
from harness import PACKAGES, Emulator, start_emulator  # noqa: E402
from hey import MISSING, available, hey  # noqa: E402
from procstat import tree_cpu_seconds  # noqa: E402

PORTRAIT = FACE_PROFILE / "tests" / "images" / "astronaut.jpg"
WARMUP_SECONDS = 2
WARMUP_REQUESTS = 20
"""`--in-process`: requests each process makes before the clock starts (MediaPipe's first are slow)."""


@dataclass(frozen=True)
class Workload:
    """A package, and the one request every client sends it again and again (encoded once)."""

    name: str
    package: Path
    body: bytes
    content_type: str


def portrait_workload() -> Workload:
    """The face profile, and the portrait as a multipart file part, as `curl -F img=@…` sends it."""
    request = httpx.Request("POST", "http://emulator", files={"img": ("portrait.jpg", PORTRAIT.read_bytes())})
    return Workload("face profile (512 px portrait)", FACE_PROFILE, request.read(),
                    request.headers["Content-Type"])


TEXT = Workload("trivial (plain text)", PACKAGES / "plain", b"load", "text/plain")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu_seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """CPU time spent meanwhile by the emulator's server process, by its instances (the processes
    under it) and by this client process."""

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def row(self, name: str) -> str:
        server, instances, client = (seconds * 1000 / max(self.requests, 1) for seconds in self.cpu_seconds)
        return (f"| {name} | {self.requests} | {self.throughput:.1f} | {statistics.median(self.latencies_ms):.1f} | "
                f"{self.percentile(95):.1f} | {self.percentile(99):.1f} | {self.errors} | "
                f"{server:.2f} / {instances:.2f} / {client:.2f} |")


async def run_load(emulator: Emulator, workload: Workload, clients: int, seconds: float) -> LoadResult:
    """httpx clients, each sending requests back to back until the time is up; a request counts as
    an error unless it is HTTP 200 with status `completed`."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                response = await client.post(emulator.requests_url(), content=workload.body,
                                             headers={"Content-Type": workload.content_type})
                ok = response.status_code == 200 and response.json().get("status") == "completed"
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            errors += not ok

    began, cpu_before, client_before = time.monotonic(), tree_cpu_seconds(emulator.process.pid), time.process_time()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    cpu_after = tree_cpu_seconds(emulator.process.pid)
    cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1], time.process_time() - client_before)
    return LoadResult(len(latencies), errors, time.monotonic() - began, latencies, cpu)


def run_hey(emulator: Emulator, workload: Workload, clients: int, seconds: float) -> LoadResult:
    """The same load sent by `hey`; as it cannot read the answers, a request counts as an error
    unless the emulator's metrics count one more `completed` request."""
    completed_before = completed(emulator)
    cpu_before = tree_cpu_seconds(emulator.process.pid)
    run = hey(emulator.requests_url(), workload.body, workload.content_type, clients, seconds)
    cpu_after = tree_cpu_seconds(emulator.process.pid)
    cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1], run.cpu_seconds)
    requests = len(run.statuses)
    return LoadResult(requests, requests - (completed(emulator) - completed_before), run.seconds, run.latencies_ms, cpu)


def completed(emulator: Emulator) -> int:
    """Requests the emulator has completed, from its /metrics."""
    exposition = httpx.get(f"{emulator.url}/metrics", timeout=10).raise_for_status().text
    return int(sum(sample.value for family in text_string_to_metric_families(exposition) for sample in family.samples
                   if sample.name == "ubiops_emulator_requests_total" and sample.labels.get("status") == "completed"))


def run_in_process(processes: int, seconds: float) -> LoadResult:
    """The face profile's `Deployment.request` on the portrait, back to back in `processes`
    processes (each warmed up first) for `seconds`: the machine's throughput without the emulator.
    Their CPU counts as the instances'."""
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Barrier(processes + 1), spawn.Queue()
    workers = [spawn.Process(target=_request_loop, args=(seconds, ready, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    ready.wait(timeout=120)
    answers = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [ms for worker_latencies, _, _ in answers for ms in worker_latencies]
    return LoadResult(len(latencies), 0, max(elapsed for _, elapsed, _ in answers), latencies,
                      (0.0, sum(cpu for _, _, cpu in answers), 0.0))


def _request_loop(seconds: float, ready: Any, results: Any) -> None:
    """One process of `run_in_process`: load the package as an instance does, warm up, wait for the
    others, then call `request` until the time is up."""
    package = FACE_PROFILE
    sys.path[:0] = [str(package), str(package / "libraries")]
    from deployment import Deployment

    deployment = Deployment(str(package), {})
    data = {"img": str(PORTRAIT)}
    for _ in range(WARMUP_REQUESTS):
        deployment.request(data, {})
    ready.wait()
    latencies: list[float] = []
    began, cpu_before = time.perf_counter(), time.process_time()
    while time.perf_counter() - began < seconds:
        start = time.perf_counter()
        deployment.request(data, {})
        latencies.append((time.perf_counter() - start) * 1000)
    results.put((latencies, time.perf_counter() - began, time.process_time() - cpu_before))


Runner = Callable[[Emulator, Workload, int, float], LoadResult]
RUNNERS: dict[str, Runner] = {
    "httpx": lambda emulator, workload, clients, seconds: asyncio.run(run_load(emulator, workload, clients, seconds)),
    "hey": run_hey,
}


def scaling(face_profile: dict[int, list[LoadResult]], in_process: dict[int, list[LoadResult]]) -> str:
    """The face profile's throughput at each instance count as a multiple of the first count's (medians
    of each count's runs), and the same for processes without the emulator, the bound."""
    def median_throughput(runs: list[LoadResult]) -> float:
        return statistics.median(run.throughput for run in runs)

    def relative(runs: dict[int, list[LoadResult]], count: int) -> float:
        return median_throughput(runs[count]) / median_throughput(runs[first])

    first, *others = face_profile
    ratios = []
    for count in others:
        ratio = f"--instances {count} against {first}: {relative(face_profile, count):.2f} x"
        if in_process:
            ratio += f" (in process: {relative(in_process, count):.2f} x)"
        ratios.append(ratio)
    return "face profile throughput, " + "; ".join(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--instances", type=int, nargs="+", default=[2],
                        help="instances per version; several counts run in turn and are compared")
    parser.add_argument("--client", choices=sorted(RUNNERS), default="httpx")
    parser.add_argument("--in-process", action="store_true",
                        help="also run the face profile in as many processes of its own, without the emulator")
    args = parser.parse_args(argv)
    if args.client == "hey" and not available():
        parser.error(f"--client hey {MISSING}")
    require_face_profile("bench/load.py", "measures the face-profile package under load (its 512 px portrait) beside a trivial one",
                         ELSEWHERE)
    print(f"# {args.clients} {args.client} clients, {args.seconds:g} s each, --instances {' '.join(map(str, args.instances))}")
    print("| package | requests | req/s | p50 ms | p95 ms | p99 ms | errors | CPU ms per request: server / instances / client |")
    print("|---|---|---|---|---|---|---|---|")
    face_profile: dict[int, list[LoadResult]] = {}
    in_process: dict[int, list[LoadResult]] = {}
    portrait = portrait_workload()
    for count in args.instances:
        for workload in (portrait, TEXT):
            with tempfile.TemporaryDirectory() as folder:
                emulator = start_emulator(workload.package, Path(folder), "--instances", str(count))
                try:
                    run = RUNNERS[args.client]
                    run(emulator, workload, args.clients, WARMUP_SECONDS)  # the instances' first requests are slow
                    result = run(emulator, workload, args.clients, args.seconds)
                finally:
                    emulator.stop()
            print(result.row(f"{workload.name}, --instances {count}"), flush=True)
            if workload is portrait:
                face_profile.setdefault(count, []).append(result)
        if args.in_process:
            result = run_in_process(count, args.seconds)
            print(result.row(f"face profile in process, no emulator (processes: {count})"), flush=True)
            in_process.setdefault(count, []).append(result)
    if len(face_profile) > 1:
        print(scaling(face_profile, in_process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
