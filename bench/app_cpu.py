"""The event loop's CPU per request: the real app, driven by direct ASGI calls, in this process.

    python bench/app_cpu.py [--requests 3000] [--checkout DIR] [--profile FILE] [--model-ms 0] [--image]

Builds the emulator's app (`create_app`, its lifespan, a real instance process) on a trivial typed
package (`{"x": int} -> {"y": 2x}`, bench/compare.py's), sends it direct requests without HTTP and
prints the CPU time of the thread running the event loop per request, with its user and system
parts. Without a socket, a client or a second process on the loop's core, this is the steadiest
measure of what the emulator itself does per request (±5 % between runs, where bench/compare.py's
figures move by 10-15 %): the number to watch when changing the request path. `--checkout` measures
another checkout of this project (e.g. main before a change) with this script; `--profile` writes a
cProfile (thread CPU clock) of the timed requests, for `python -m pstats`; `--model-ms` makes the
deployment take that long per request, as a model would, which costs the event loop more per
request (its code and data leave the caches meanwhile). `--image` measures an image request
instead: the face-profile package and the 512 px portrait as a multipart file part, as the README's
curl sends it (its figures move more: most of its system time is creating files and folders, which
this machine's file system makes slow or fast from run to run; where the checkout's
`deployment_package/` is not the face profile, it exits 2 saying so). Results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from face_profile_package import require_face_profile  # noqa: E402

DEPLOYMENT = """import time


class Deployment:
    def __init__(self, base_directory, context):
        pass

    def request(self, data):
        time.sleep({seconds})  # the model's work, if any: the event loop waits meanwhile
        return {{"y": 2 * data["x"]}}
"""
SPECS = {
    "ubiops_input_spec.json": '[{"name": "x", "data_type": "int"}]',
    "ubiops_output_spec.json": '[{"name": "y", "data_type": "int"}]',
}
WARMUP = 300


@dataclass(frozen=True)
class Case:
    """The request sent again and again, to which deployment, and what each answer must hold."""

    deployment: str
    body: bytes
    content_type: str
    expected: bytes
    warmup: int = WARMUP

    @property
    def path(self) -> str:
        return f"/v2.1/projects/bench/deployments/{self.deployment}/requests"


TRIVIAL = Case("double", b'{"x": 2}', "application/json", b'"y":4')


def image_case() -> Case:
    """The face profile's portrait as bench/load.py sends it (`curl -F img=@…`); fewer warm-ups, each ~20 ms."""
    from load import portrait_workload  # bench/load.py: imports httpx, so only when asked for

    workload = portrait_workload()
    return Case("face", workload.body, workload.content_type, b'"completed"', warmup=30)


def thread_ticks() -> tuple[int, int]:
    """This thread's user and system CPU time in clock ticks, from /proc."""
    fields = Path(f"/proc/self/task/{threading.get_native_id()}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


async def measure(app: Any, case: Case, requests: int, profile: str | None) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": case.path, "raw_path": case.path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", case.content_type.encode()),
                         (b"content-length", str(len(case.body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": case.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        sent.clear()
        await app(dict(scope, state={}), receive, send)
        if case.expected not in sent[-1].get("body", b""):
            raise SystemExit(f"unexpected answer: {sent}")

    async with app.router.lifespan_context(app):
        for _ in range(600):  # the instance starts in the lifespan's background: wait until it answers
            await app(dict(scope, state={}), receive, send)
            if b'"completed"' in sent[-1].get("body", b""):
                break
            await asyncio.sleep(0.1)
        for _ in range(case.warmup):
            await call()
        profiler = cProfile.Profile(time.thread_time) if profile else None
        ticks, cpu, wall = thread_ticks(), time.thread_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for _ in range(requests):
            await call()
        if profiler:
            profiler.disable()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        user, system = (after - before for after, before in zip(thread_ticks(), ticks, strict=True))
    per_tick = 1000 / os.sysconf("SC_CLK_TCK")
    print(f"event loop CPU per request: {cpu / requests * 1000:.3f} ms (user {user * per_tick / requests:.3f}, "
          f"system {system * per_tick / requests:.3f}); wall {wall / requests * 1000:.3f} ms; {requests} requests")
    if profiler and profile:
        profiler.dump_stats(profile)
        print(f"profile: {profile} (python -m pstats {profile})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help=f"timed requests (after {WARMUP} warm-up ones)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the checkout of this project to measure")
    parser.add_argument("--profile", help="write a cProfile of the timed requests here")
    parser.add_argument("--model-ms", type=float, default=0,
                        help="the deployment sleeps this long per request, as a model would work (default: 0)")
    parser.add_argument("--image", action="store_true",
                        help="send the face profile the 512 px portrait as a multipart file part instead")
    args = parser.parse_args(argv)
    if args.image and args.model_ms:
        parser.error("--model-ms applies to the trivial package; the face profile takes its own time")
    if args.image:
        require_face_profile("bench/app_cpu.py", "--image measures the face-profile package's portrait request",
                             "leave out --image to measure the trivial package, or give --checkout DIR, a checkout that "
                             "still has the face profile", args.checkout / "deployment_package")
    sys.path.insert(0, str(args.checkout.resolve()))
    emulator_main = importlib.import_module("emulator.__main__")
    create_app = importlib.import_module("emulator.app").create_app
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="app-cpu-"))
        case = image_case() if args.image else TRIVIAL
        package = args.checkout / "deployment_package" if args.image else Path(scratch) / "package"
        if not args.image:
            package.mkdir()
            for name, text in {**SPECS, "deployment.py": DEPLOYMENT.format(seconds=args.model_ms / 1000)}.items():
                (package / name).write_text(text)
        settings = emulator_main.parse_args(["--package", str(package), "--data-dir", str(Path(scratch) / "data"),
                                             "--project", "bench", "--deployment", case.deployment])
        # As the server logs, to nowhere (the module was `emulator.logs` in checkouts before 2026-11-30).
        (getattr(emulator_main, "console_log", None) or emulator_main.logs).configure("text")
        devnull = stack.enter_context(open(os.devnull, "w"))
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        app = create_app(settings)
        uvloop.run(measure(app, case, args.requests, args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
