"""Benchmark FaceProfileModel.predict on one CPU core.

    python bench/bench_predict.py [--repeats N]

Prints the median wall time of `predict` (default options: use_all, align_face, 1 attempt) for a
512 px and a 2000 px JPEG portrait, for a 1280 x 886 portrait (found by the whole-frame pass) and
a 1280 x 886 group photo of four faces 60-150 px wide (searched in tiles), a 4000 x 3000 group
photo of five faces 60-150 px wide (searched again in tiles of a finer copy), and of the portrait
request end to end through the emulator (multipart POST to a real `python -m emulator`, on the same
core), measured in one run so their ratios are meaningful; then `predict` against the same request
end to end (multipart, and by `ubiops-file://` URI; each sent by httpx and as curl sends it), their
calls alternated (`interleaved`). Results go in BENCHMARKS.md. Each measurement is one function
listed in MEASUREMENTS.
"""

from __future__ import annotations

import os

# One core, one thread: set before numpy / OpenCV / MediaPipe are imported.
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in ONE_THREAD:
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import http.client  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from face_profile_package import ELSEWHERE, FACE_PROFILE, require_face_profile  # noqa: E402

# Asked before the imports that only the face profile's requirements and tests provide (OpenCV, test_small_faces).
require_face_profile("bench/bench_predict.py", "measures the face-profile model's predict and its portrait requests", ELSEWHERE)

import cv2  # noqa: E402
import httpx  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(FACE_PROFILE / "tests"))
sys.path.insert(0, str(FACE_PROFILE / "libraries"))  # test_small_faces imports face_profile first
from harness import Emulator, start_emulator  # noqa: E402
from test_small_faces import CANVAS, LARGE_CANVAS, LARGE_LAYOUT, LAYOUTS, group_photo  # noqa: E402

from emulator.launcher import wait_for  # noqa: E402

PORTRAITS_DIR = FACE_PROFILE / "tests" / "images"
PORTRAIT = PORTRAITS_DIR / "astronaut.jpg"
LAYOUT_PORTRAITS = ("grace_hopper.jpg", "astronaut.jpg")
WARMUP = 3


@dataclass(frozen=True)
class Context:
    """What the measurements share: the model and the prepared input files."""

    model: object
    portraits: dict[int, Path]
    photos: dict[str, Path]
    repeats: int
    emulator: Emulator


def pin_to_one_core() -> int:
    """Restrict this process (and MediaPipe's threads) to a single CPU core."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    return core


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    return f"nproc={os.cpu_count()}, CPU: {cpu}, Python {platform.python_version()}"


def build_model(directory: Path) -> object:
    """Build model1.pkl exactly as the Makefile does and unpickle it as the deployment does, in a process
    set up as its `Deployment.__init__` sets up an instance's (`keep_freed_memory`)."""
    from face_profile.memory import keep_freed_memory

    keep_freed_memory()
    spec = importlib.util.spec_from_file_location("build_model", ROOT / "scripts" / "build_model.py")
    build_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_script)
    path = directory / "model1.pkl"
    build_script.build(path)
    import joblib

    return joblib.load(path)


def write_portraits(directory: Path) -> dict[int, Path]:
    """The committed 512 px portrait and a 2000 px upscale of it, both as JPEG files."""
    with Image.open(PORTRAIT) as image:
        portrait = image.convert("RGB")
    paths = {}
    for side in (512, 2000):
        path = directory / f"portrait_{side}.jpg"
        portrait.resize((side, side), Image.Resampling.LANCZOS).save(path, quality=92)
        paths[side] = path
    return paths


def write_photos(directory: Path, model: object) -> dict[str, Path]:
    """A 1280 x 886 portrait (Grace Hopper, face ~270 px wide), a group photo of the same size
    (the package tests' four-face layout) and a 4000 x 3000 one (their five-face layout), as JPEG
    files."""
    profiles = {name: model.predict(str(PORTRAITS_DIR / name)).fields for name in LAYOUT_PORTRAITS}
    group, _ = group_photo(profiles, "plain", LAYOUTS["four"])
    large_group, _ = group_photo(profiles, "plain", LARGE_LAYOUT, LARGE_CANVAS)
    with Image.open(PORTRAITS_DIR / "grace_hopper.jpg") as image:
        grace = image.convert("RGB")
    portrait = Image.new("RGB", CANVAS, (150, 140, 130))
    grace = grace.resize((round(grace.width * CANVAS[1] / grace.height), CANVAS[1]), Image.Resampling.LANCZOS)
    portrait.paste(grace, ((CANVAS[0] - grace.width) // 2, 0))
    paths = {
        "portrait": directory / "portrait_1280.jpg", "group": directory / "group_1280.jpg",
        "large group": directory / "group_4000.jpg",
    }
    portrait.save(paths["portrait"], quality=92)
    group.save(paths["group"], quality=92)
    large_group.save(paths["large group"], quality=92)
    return paths


@dataclass(frozen=True)
class Timing:
    """Median wall time, and median CPU time of this process (all its threads): on a shared
    machine the CPU time barely moves with the load, the wall time does."""

    wall_ms: float
    cpu_ms: float | None  # None when the work runs in other processes (the emulator's)


def median_ms(call: Callable[[], object], repeats: int) -> Timing:
    for _ in range(WARMUP):
        call()
    walls, cpus = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return Timing(statistics.median(walls) * 1000, statistics.median(cpus) * 1000)


def predict_512(context: Context) -> Timing:
    return median_ms(lambda: context.model.predict(str(context.portraits[512])), context.repeats)


def predict_2000(context: Context) -> Timing:
    return median_ms(lambda: context.model.predict(str(context.portraits[2000])), context.repeats)


def predict_512_without_alignment(context: Context) -> Timing:
    path = str(context.portraits[512])
    return median_ms(lambda: context.model.predict(path, align_face=False), context.repeats)


def predict_1280_portrait(context: Context) -> Timing:
    return median_ms(lambda: context.model.predict(str(context.photos["portrait"])), context.repeats)


def predict_1280_group(context: Context) -> Timing:
    return median_ms(lambda: context.model.predict(str(context.photos["group"])), context.repeats)


def predict_4000_group(context: Context) -> Timing:
    return median_ms(lambda: context.model.predict(str(context.photos["large group"])), context.repeats)


def emulator_request(context: Context, side: int) -> Timing:
    """A curl-style request: the portrait as a multipart file part, options left to their defaults."""
    portrait = context.portraits[side].read_bytes()
    with httpx.Client(timeout=60) as client:
        def call() -> None:
            response = client.post(context.emulator.requests_url(), files={"img": ("portrait.jpg", portrait)})
            assert response.json()["status"] == "completed", response.text

        return Timing(median_ms(call, context.repeats).wall_ms, None)


def emulator_512(context: Context) -> Timing:
    return emulator_request(context, 512)


def emulator_2000(context: Context) -> Timing:
    return emulator_request(context, 2000)


def interleaved(context: Context, side: int) -> dict[str, float]:
    """Median wall ms of `predict` in this process and of the same portrait end to end, as a
    multipart file part and by a `ubiops-file://` URI (uploaded once), their calls alternated so
    that the machine's load, and the core's caches, weigh on each alike: the ratios of this run
    are comparable. Each request is sent twice over: by httpx, as a Python test would (~0.9 ms of
    the core per image request), and as curl or hey send it (`lean`: the bytes encoded once, over one
    keep-alive `http.client` connection), which leaves what the emulator itself adds."""
    path, emulator = context.portraits[side], context.emulator
    portrait = path.read_bytes()
    options = {"sampling_strategy": "use_all", "align_face": True, "num_attempts": 1}
    by_uri = {"img": f"ubiops-file://default/{path.name}", **options}
    address = urlsplit(emulator.url)
    lean = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    target = urlsplit(emulator.requests_url()).path
    with httpx.Client(timeout=60) as client:
        upload = client.post(f"{emulator.api}/projects/{emulator.project}/buckets/default/files/{path.name}", json={})
        client.put(upload.raise_for_status().json()["url"], content=portrait).raise_for_status()
        multipart = httpx.Request("POST", emulator.requests_url(), files={"img": (path.name, portrait)})
        encoded = {"multipart": (multipart.read(), multipart.headers["Content-Type"]),
                   "uri": (json.dumps(by_uri).encode(), "application/json")}

        def completed(response: httpx.Response) -> None:
            assert response.json()["status"] == "completed", response.text

        def sent_lean(kind: str) -> None:
            body, content_type = encoded[kind]
            lean.request("POST", target, body=body, headers={"Content-Type": content_type})
            answer = lean.getresponse().read()
            assert json.loads(answer)["status"] == "completed", answer[:500]

        calls = {
            "predict": lambda: context.model.predict(str(path)),
            "multipart": lambda: completed(client.post(emulator.requests_url(), files={"img": (path.name, portrait)})),
            "uri": lambda: completed(client.post(emulator.requests_url(), json=by_uri)),
            "multipart, lean": lambda: sent_lean("multipart"),
            "uri, lean": lambda: sent_lean("uri"),
        }
        walls: dict[str, list[float]] = {name: [] for name in calls}
        names = list(calls)
        for round_number in range(WARMUP + context.repeats):
            # Each round starts with the next call: the one after `predict` finds the emulator's
            # processes out of the core's caches (~1.5 ms at 512 px), so that cost goes round too.
            for name in names[round_number % len(names):] + names[:round_number % len(names)]:
                start = time.perf_counter()
                calls[name]()
                if round_number >= WARMUP:
                    walls[name].append(time.perf_counter() - start)
    lean.close()
    return {name: statistics.median(values) * 1000 for name, values in walls.items()}


PORTRAIT_1280 = "predict, 1280 x 886 portrait (whole frame)"
GROUP = "predict, 1280 x 886 group photo, 4 faces 60-150 px (tiles)"
MEASUREMENTS: dict[str, Callable[[Context], Timing]] = {
    "predict, 512 px portrait": predict_512,
    "predict, 2000 px portrait": predict_2000,
    "predict, 512 px portrait, align_face=false": predict_512_without_alignment,
    PORTRAIT_1280: predict_1280_portrait,
    GROUP: predict_1280_group,
    "predict, 4000 x 3000 group photo, 5 faces 60-150 px (finer tiles)": predict_4000_group,
    "emulator end to end, 512 px portrait": emulator_512,
    "emulator end to end, 2000 px portrait": emulator_2000,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per measurement")
    args = parser.parse_args(argv)
    core = pin_to_one_core()
    print(f"# {machine()}; pinned to core {core}, OMP_NUM_THREADS=1")
    print(f"# command: {Path(sys.executable).name} bench/bench_predict.py --repeats {args.repeats}")
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        # The instance gets this process's one thread per library too (it sees only what `--env` passes on).
        threads = [argument for name in ONE_THREAD for argument in ("--env", name)]
        emulator = start_emulator(FACE_PROFILE, directory, *threads)
        try:  # the instance loads on this same core: measure once it is ready
            wait_for(emulator, lambda: httpx.get(f"{emulator.url}/readyz", timeout=5).status_code == 200 or None)
            model = build_model(directory)
            photos = write_photos(directory, model)
            context = Context(model, write_portraits(directory), photos, args.repeats, emulator)
            results = {name: measure(context) for name, measure in MEASUREMENTS.items()}
            alternated = {side: interleaved(context, side) for side in (512, 2000)}
        finally:
            emulator.stop()
    print("| measurement | median ms | median CPU ms (this process) |")
    print("|---|---|---|")
    for name, timing in results.items():
        cpu = "-" if timing.cpu_ms is None else f"{timing.cpu_ms:.1f}"
        print(f"| {name} | {timing.wall_ms:.1f} | {cpu} |")

    def ratio(numerator: str, denominator: str) -> str:
        wall = results[numerator].wall_ms / results[denominator].wall_ms
        return f"{wall:.2f} (CPU {results[numerator].cpu_ms / results[denominator].cpu_ms:.2f})"

    for side, medians in alternated.items():
        print(f"\n{side} px, calls alternated: predict {medians['predict']:.1f} ms; end to end, "
              + ", ".join(f"{name} {medians[name]:.1f} ms ({medians[name] / medians['predict']:.2f} x predict)"
                          for name in medians if name != "predict"))
    print(f"\nratio 2000 px / 512 px: {ratio('predict, 2000 px portrait', 'predict, 512 px portrait')}")
    print(f"ratio group photo (tiles) / portrait (whole frame), 1280 px: {ratio(GROUP, PORTRAIT_1280)}")
    for side in (512, 2000):
        end_to_end = results[f"emulator end to end, {side} px portrait"].wall_ms
        print(f"ratio emulator end to end / predict, {side} px: "
              f"{end_to_end / results[f'predict, {side} px portrait'].wall_ms:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
