"""`hey` (Go; Debian's `hey` package) as the benchmarks' load generator: one request, the same bytes
every time, from N connections for a while. Its own CPU per request is a fraction of httpx's, so on
a machine whose cores it shares with the server it does not bound what it measures."""

from __future__ import annotations

import csv
import io
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

MISSING = "needs `hey` on the PATH (Debian: apt-get install hey; `make test` installs it)"


@dataclass(frozen=True)
class HeyRun:
    statuses: list[str]
    """Each answered request's HTTP status."""
    latencies_ms: list[float]
    seconds: float
    """From the first request's start to the last one's answer."""
    cpu_seconds: float
    """The CPU time `hey` spent."""


def available() -> bool:
    return shutil.which("hey") is not None


def hey(url: str, body: bytes, content_type: str, clients: int, seconds: float) -> HeyRun:
    """POST `body` to `url` from `clients` connections for `seconds`."""
    cpu_before = _children_cpu_seconds()
    with tempfile.NamedTemporaryFile() as file:
        file.write(body)
        file.flush()
        run = subprocess.run(["hey", "-z", f"{seconds:g}s", "-c", str(clients), "-m", "POST", "-D", file.name,
                              "-T", content_type, "-o", "csv", url],
                             capture_output=True, text=True, timeout=seconds + 60, check=True)
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    # offset: when a request started, from the start of the run
    elapsed = max((float(row["offset"]) + float(row["response-time"]) for row in rows), default=seconds)
    return HeyRun([row["status-code"] for row in rows], [float(row["response-time"]) * 1000 for row in rows], elapsed,
                  _children_cpu_seconds() - cpu_before)


def _children_cpu_seconds() -> float:
    """CPU time of this process's ended children (`hey`, once run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
