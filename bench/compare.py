"""The emulator against the serving tools users would compare it with, on one trivial model.

    python bench/compare.py [--passes 3] [--requests 1000] [--seconds 5]      (make compare)

Each server serves the same model, `{"x": int} -> {"y": 2x}`, in the request format of its own
protocol, and is driven by the same keep-alive httpx client from this process, one server at a
time: a bare uvicorn ASGI app (the floor; asyncio + h11, and uvloop + httptools), MLServer (custom
model, inline: `parallel_workers` 0), BentoML (async API), Cog's Python HTTP server (async predict,
concurrency 16), and the emulator (one instance; retention `full`, and `none`). The peers'
environments are built here with `uv` in a scratch folder (`~/.cache/face-profile-bench/`, or
`--scratch`), outside the project's dependencies, from the pins in PEERS; a peer that cannot be
installed gets a row saying so.

Per server and pass: start-up (process start to the first answered request; for the emulator also
to its first `/livez`, the server alone), then, after a warm-up, `--requests` requests one at a
time (p50 latency) and `--seconds` of 16 concurrent clients (throughput), with the CPU time the
server's process tree spent (utime + stime from /proc, children included) per request, and at c=16
also its own process's alone (the event loop's: without the emulator's instance, or Cog's and
BentoML's workers, which MLServer inline does not have). The 16
clients are httpx's in this process, which one Python process cannot drive past ~600 req/s
whatever the server; `--client hey` has `hey` (`bench/hey.py`) send them instead, the same body
every time, so that throughput is the server's. In each
pass the emulator and the floor run first and again last, so their two readings show the drift of
a shared machine; each figure is the median over every run of that server, with its spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from harness import free_port  # noqa: E402
from hey import MISSING, available, hey  # noqa: E402
from procstat import tree_cpu_seconds  # noqa: E402

SCRATCH = Path.home() / ".cache" / "face-profile-bench"
CONCURRENCY = 16
WARMUP_REQUESTS = 200
STARTUP_SECONDS = 60
PEERS = {
    "floor": ["uvicorn[standard]==0.54.0"],
    "mlserver": ["mlserver==1.7.1"],
    "bentoml": ["bentoml==1.4.40"],
    "cog": ["cog==0.16.12"],
}
"""Each peer's environment: what `uv pip install` puts in it (the floor's uvicorn is the emulator's)."""

FLOOR_APP = '''
import json

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = json.dumps({"y": 2 * json.loads(body)["x"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})
'''

MLSERVER_MODEL = '''
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class Double(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = payload.inputs[0].data.root[0]
        return InferenceResponse(model_name=self.name,
                                 outputs=[ResponseOutput(name="y", shape=[1], datatype="INT64", data=[2 * x])])
'''

BENTOML_SERVICE = '''
import bentoml


@bentoml.service
class Double:
    @bentoml.api
    async def predict(self, x: int) -> dict:
        return {"y": 2 * x}
'''

COG_PREDICTOR = '''
from cog import BaseModel, BasePredictor


class Output(BaseModel):
    y: int


class Predictor(BasePredictor):
    async def predict(self, x: int) -> Output:
        return Output(y=2 * x)
'''

COG_CONFIG = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\nconcurrency:\n  max: 16\n'

EMULATOR_DEPLOYMENT = '''
class Deployment:
    def request(self, data):
        return {"y": 2 * data["x"]}
'''


@dataclass
class Server:
    """How to start one server on a port, and how to ask it for `2x` in its own protocol."""

    name: str
    env: str | None
    """The peer environment it runs in (PEERS), or None: the project's own."""
    command: Callable[[Path, int], list[str]]
    """The command line, given the server's folder and port."""
    path: str
    body: Callable[[int], Any]
    answer: Callable[[Any], Any]
    """The `y` in a response body."""
    files: dict[str, str] = field(default_factory=dict)
    environment: Callable[[Path, int], dict[str, str]] = lambda _folder, _port: {}
    up_path: str | None = None
    """A path that answers once the server is up, before the model is (the emulator's `/livez`)."""
    after_start: Callable[[str], None] | None = None
    checkout: Path = ROOT
    """Where the emulator's command runs (`--baseline`: another checkout of it)."""


def emulator_command(folder: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "emulator", "--package", str(folder / "package"), "--port", str(port),
            "--data-dir", str(folder / f"data-{port}"), "--project", "bench", "--deployment", "double"]


def retention_none(url: str) -> None:
    """Switch the served version to `request_retention_mode: none`, as the SDK's version update does."""
    httpx.patch(f"{url}/v2.1/projects/bench/deployments/double/versions/v1",
                json={"request_retention_mode": "none"}).raise_for_status()


EMULATOR_FILES = {
    "package/deployment.py": EMULATOR_DEPLOYMENT,
    "package/ubiops_input_spec.json": '[{"name": "x", "data_type": "int"}]',
    "package/ubiops_output_spec.json": '[{"name": "y", "data_type": "int"}]',
}


def emulator(name: str, after_start: Callable[[str], None] | None = None, checkout: Path = ROOT) -> Server:
    return Server(name, None, emulator_command, "/v2.1/projects/bench/deployments/double/requests",
                  lambda x: {"x": x}, lambda body: body["result"]["y"], EMULATOR_FILES, up_path="/livez",
                  after_start=after_start, checkout=checkout)


def floor(name: str, loop: str, http: str) -> Server:
    return Server(name, "floor", lambda _folder, port: ["python", "-m", "uvicorn", "app:app", "--port", str(port),
                                                        "--loop", loop, "--http", http, "--no-access-log"],
                  "/", lambda x: {"x": x}, lambda body: body["y"], {"app.py": FLOOR_APP})


SERVERS = {
    "emulator": emulator("this emulator (1 instance, retention full)"),
    "emulator-none": emulator("this emulator (retention none)", retention_none),
    "floor": floor("bare uvicorn ASGI app (floor: asyncio + h11)", "asyncio", "h11"),
    "floor-fast": floor("bare uvicorn ASGI app (uvloop + httptools)", "uvloop", "httptools"),
    "mlserver": Server(
        "MLServer 1.7.1 (custom model, inline)", "mlserver", lambda folder, _port: ["mlserver", "start", str(folder)],
        "/v2/models/double/infer", lambda x: {"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [x]}]},
        lambda body: body["outputs"][0]["data"][0],
        {"models.py": MLSERVER_MODEL, "model-settings.json": '{"name": "double", "implementation": "models.Double"}'},
        lambda _folder, port: {"MLSERVER_HTTP_PORT": str(port), "MLSERVER_GRPC_PORT": str(free_port()),
                               "MLSERVER_METRICS_PORT": str(free_port()), "MLSERVER_PARALLEL_WORKERS": "0"}),
    "bentoml": Server(
        "BentoML 1.4.40 (async API)", "bentoml", lambda _folder, port: ["bentoml", "serve", "service:Double", "--port", str(port)],
        "/predict", lambda x: {"x": x}, lambda body: body["y"], {"service.py": BENTOML_SERVICE},
        lambda folder, _port: {"BENTOML_HOME": str(folder / "home"), "BENTOML_DO_NOT_TRACK": "true"}),
    "cog": Server(
        "Cog 0.16.12 Python server (async predict, concurrency 16)", "cog",
        lambda _folder, _port: ["python", "-m", "cog.server.http"],
        "/predictions", lambda x: {"input": {"x": x}}, lambda body: body["output"]["y"],
        {"predict.py": COG_PREDICTOR, "cog.yaml": COG_CONFIG}, lambda _folder, port: {"PORT": str(port)}),
}


def build_environment(scratch: Path, env: str) -> str | None:
    """Make `scratch/env` hold PEERS[env] (once: a marker names what it holds); None, or why not."""
    venv, wanted = scratch / env, " ".join(PEERS[env])
    marker = venv / "installed.txt"
    if marker.is_file() and marker.read_text() == wanted:
        return None
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        return "uv not found (a dependency of this project: make setup installs it)"
    shutil.rmtree(venv, ignore_errors=True)
    for command in ([uv, "venv", "-q", "--python", sys.executable, str(venv)],
                    [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *PEERS[env]]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return f"not installed here: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    marker.write_text(wanted)
    return None


@dataclass
class Run:
    """One server's figures from one start."""

    startup: float
    up: float | None
    p50_ms: float
    cpu_ms_c1: float
    throughput: float
    cpu_ms_c16: float
    own_cpu_ms_c16: float


class Running:
    """A started server process (in its own process group) and the client that calls it."""

    def __init__(self, server: Server, folder: Path, scratch: Path) -> None:
        self.server = server
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        if server.env is not None:
            env["PATH"] = f"{scratch / server.env / 'bin'}{os.pathsep}{env['PATH']}"
            env["VIRTUAL_ENV"] = str(scratch / server.env)
        env.update(server.environment(folder, port))
        self.log = (folder / f"server-{port}.log").open("wb")
        self.began = time.perf_counter()
        command = server.command(folder, port)
        if server.env is not None:
            command[0] = str(scratch / server.env / "bin" / command[0])
        self.process = subprocess.Popen(command, cwd=server.checkout if server.env is None else folder, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self.log.close()


async def call(client: httpx.AsyncClient, server: Server, url: str, x: int) -> None:
    response = await client.post(url + server.path, json=server.body(x))
    if response.status_code != 200 or server.answer(response.json()) != 2 * x:
        raise RuntimeError(f"{server.name}: unexpected answer {response.status_code} {response.text[:300]}")


async def wait_until(running: Running, ready: Callable[[httpx.AsyncClient], Any]) -> float:
    """Seconds from the process's start until `ready` succeeds."""
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if running.process.poll() is not None:
                raise RuntimeError(f"{running.server.name} exited with {running.process.returncode}")
            if time.perf_counter() - running.began > STARTUP_SECONDS:
                raise RuntimeError(f"{running.server.name} did not answer within {STARTUP_SECONDS} s")
            try:
                await ready(client)
                return time.perf_counter() - running.began
            except (httpx.TransportError, RuntimeError, KeyError, ValueError):
                await asyncio.sleep(0.01)


def hey_load(running: Running, seconds: float) -> tuple[int, float]:
    """`hey` sends one request, again and again, from CONCURRENCY connections for `seconds`: the
    requests answered (each must be HTTP 200) and the seconds they took."""
    server = running.server
    run = hey(running.url + server.path, json.dumps(server.body(7)).encode(), "application/json", CONCURRENCY, seconds)
    refused = [status for status in run.statuses if status != "200"]
    if not run.statuses or refused:
        raise RuntimeError(f"{server.name}: {len(run.statuses)} answers from hey, {len(refused)} not 200 ({refused[:3]})")
    return len(run.statuses), run.seconds


async def measure(running: Running, requests: int, seconds: float, hey: bool) -> Run:
    server, url = running.server, running.url
    up = None
    if server.up_path:
        async def answers(client: httpx.AsyncClient) -> None:
            (await client.get(url + server.up_path)).raise_for_status()
        up = await wait_until(running, answers)
    startup = await wait_until(running, lambda client: call(client, server, url, 1))
    if server.after_start:
        server.after_start(url)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for x in range(WARMUP_REQUESTS):
            await call(client, server, url, x)
        latencies = []
        cpu = sum(tree_cpu_seconds(running.process.pid))
        for x in range(requests):
            start = time.perf_counter()
            await call(client, server, url, x)
            latencies.append(time.perf_counter() - start)
        cpu_c1 = (sum(tree_cpu_seconds(running.process.pid)) - cpu) / requests
        done = 0
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await call(client, server, url, done)
                done += 1

        (own, children), began = tree_cpu_seconds(running.process.pid), time.perf_counter()
        if hey:
            done, elapsed = await asyncio.to_thread(hey_load, running, seconds)
        else:
            await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
            elapsed = time.perf_counter() - began
        own_after, children_after = tree_cpu_seconds(running.process.pid)
        cpu_c16 = (own_after + children_after - own - children) / done
        own_c16 = (own_after - own) / done
        await call(client, server, url, 21)  # still answering, and rightly
    return Run(startup, up, statistics.median(latencies) * 1000, cpu_c1 * 1000, done / elapsed, cpu_c16 * 1000,
               own_c16 * 1000)


def run_server(key: str, folder: Path, scratch: Path, requests: int, seconds: float, hey: bool) -> Run:
    server = SERVERS[key]
    folder = folder / key
    for name, text in server.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    running = Running(server, folder, scratch)
    try:
        return asyncio.run(measure(running, requests, seconds, hey))
    finally:
        running.stop()


@dataclass
class Figure:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """Half the range, as a share of the median (none around a median of 0: BentoML's own process
        at c=16, whose workers do the work)."""
        return (max(self.values) - min(self.values)) / 2 / self.median if len(self.values) > 1 and self.median else 0.0

    def show(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ±{self.spread * 100:.0f}%"


def table(results: dict[str, list[Run]], missing: dict[str, str]) -> str:
    def figure(key: str, pick: Callable[[Run], float | None]) -> Figure:
        return Figure([v for run in results[key] if (v := pick(run)) is not None])

    base = {name: figure(name, lambda r: r.p50_ms).median for name in ("floor", "emulator")}
    rate = {name: figure(name, lambda r: r.throughput).median for name in ("floor", "emulator")}
    cpu = figure("emulator", lambda r: r.cpu_ms_c16).median
    lines = ["| server | c=1 p50 ms | p50 / floor | p50 / emulator | c=16 req/s | req/s / floor | req/s / emulator | "
             "server CPU ms per request, c=1 | c=16 | c=16 CPU / emulator | c=16, server's own process | start-up s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, server in SERVERS.items():
        if key in missing:
            lines.append(f"| {server.name} | {missing[key]} |  |  |  |  |  |  |  |  |  |  |")
            continue
        if key not in results:
            continue
        p50, throughput = figure(key, lambda r: r.p50_ms), figure(key, lambda r: r.throughput)
        c16, own = figure(key, lambda r: r.cpu_ms_c16), figure(key, lambda r: r.own_cpu_ms_c16)
        startup = figure(key, lambda r: r.startup).show()
        up = figure(key, lambda r: r.up)
        if up.values:
            startup += f" (server {up.show()})"
        lines.append(
            f"| {server.name} | {p50.show()} | {p50.median / base['floor']:.2f} | {p50.median / base['emulator']:.2f} | "
            f"{throughput.show(0)} | {throughput.median / rate['floor']:.2f} | {throughput.median / rate['emulator']:.2f} | "
            f"{figure(key, lambda r: r.cpu_ms_c1).show()} | {c16.show()} | {c16.median / cpu:.2f} | {own.show()} | {startup} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return f"nproc={os.cpu_count()}, CPU: {cpu}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000, help="c=1 requests per run (after a warm-up of 200)")
    parser.add_argument("--seconds", type=float, default=5, help="c=16 load per run")
    parser.add_argument("--scratch", type=Path, default=SCRATCH, help="where the peers' environments are built")
    parser.add_argument("--client", choices=["httpx", "hey"], default="httpx", help="who sends the c=16 load")
    parser.add_argument("--only", nargs="+", choices=list(SERVERS), help="run these servers only (floor and emulator always)")
    parser.add_argument("--baseline", type=Path, help="another checkout of this project (e.g. main before a change): its "
                        "emulator runs beside this one's, retention full")
    args = parser.parse_args(argv)
    if args.client == "hey" and not available():
        parser.error(f"--client hey {MISSING}")
    if args.baseline:
        SERVERS["baseline"] = emulator(f"the emulator at {args.baseline}", checkout=args.baseline.resolve())
    args.scratch.mkdir(parents=True, exist_ok=True)
    keys = [k for k in SERVERS if not args.only or k in (*args.only, "floor", "emulator", "baseline")]
    missing: dict[str, str] = {}
    for env in dict.fromkeys(SERVERS[k].env for k in keys if SERVERS[k].env):
        problem = build_environment(args.scratch, env)
        if problem:
            print(f"# {env}: {problem}", file=sys.stderr)
            missing.update({k: problem for k in keys if SERVERS[k].env == env})
    middle = [k for k in keys if k not in missing and k not in ("floor", "emulator")]
    order = ["emulator", "floor", *middle, "floor", "emulator"]
    print(f"# {machine()}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"# command: python bench/compare.py --passes {args.passes} --requests {args.requests} --seconds {args.seconds:g} "
          f"--client {args.client}")
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="compare-") as folder:
        for number in range(1, args.passes + 1):
            for key in order:
                run = run_server(key, Path(folder), args.scratch, args.requests, args.seconds, args.client == "hey")
                results.setdefault(key, []).append(run)
                print(f"# pass {number}, {key}: p50 {run.p50_ms:.2f} ms, {run.throughput:.0f} req/s, CPU/request "
                      f"{run.cpu_ms_c1:.2f} / {run.cpu_ms_c16:.2f} ms, start-up {run.startup:.2f} s", file=sys.stderr)
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    print(table(results, missing))
    for key in ("emulator", "floor"):
        first, last = results[key][0::2], results[key][1::2]
        print(f"# drift, {key}: p50 at the start of each pass {[round(r.p50_ms, 2) for r in first]} ms, at the end "
              f"{[round(r.p50_ms, 2) for r in last]} ms; c=16 {[round(r.throughput) for r in first]} / "
              f"{[round(r.throughput) for r in last]} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
