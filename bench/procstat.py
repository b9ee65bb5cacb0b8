"""CPU time of processes, from /proc (Linux): what the benchmarks charge to a server and its instances."""

from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds() -> dict[int, tuple[int, float]]:
    """Every process now: its parent's pid and its utime + stime in seconds."""
    found: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """utime + stime now of `root` itself, and of every process under it (from /proc)."""
    processes = process_cpu_seconds()

    def under_root(pid: int) -> bool:
        while pid > 1:
            pid = processes[pid][0] if pid in processes else 0
            if pid == root:
                return True
        return False

    own = processes.get(root, (0, 0.0))[1]
    return own, sum(seconds for pid, (_, seconds) in processes.items() if under_root(pid))
