"""An instance's processes, seen from the server: stopping them (`kill_instance`, `kill_group`), the memory they
hold together (`ProcessTree`), and how one ended (`describe_exit`)."""

from __future__ import annotations

import contextlib
import os
import signal

from emulator.runtime.reaper import read_stat

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def kill_instance(pid: int) -> None:
    """Stop the instance whose init (`reaper`) is `pid`, while it runs: SIGTERM asks the init to kill every process of
    the instance (the worker, and what the deployment started, in a session or group of its own too: a model server
    holding its port) and to reap them, then to end killed by SIGKILL. Killed with them, it would leave them to the
    machine's init as zombies, and the processes it had adopted running."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def kill_group(pid: int) -> None:
    """SIGKILL the process group of the instance's init `pid` (its own session), the worker's: as a container's
    processes end with its main one, whatever the worker started ends with it. A forked child left alive would
    hold the worker's channel open, so its death went unnoticed until the request timed out. Safe once `pid` has
    ended too: a group's number is not another process's while the group has a process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class ProcessTree:
    """The processes under an instance's init (`reaper`): the worker and whatever it started (a data loader's workers,
    ffmpeg, a model server), in its process group or not (`os.setsid`, `start_new_session=True`: the worker, forked by
    the init, may leave its group, and was then counted by none), whose memory a container's limit counts together;
    not the init itself, a fork of the worker's Python, ~10 MB resident, which a container's own init is not. Linux
    lists no process's children, so each look reads /proc: every process once, then only the tree's and those new
    since, as a process outside the tree cannot join it (a process's parent changes only to the init, a subreaper
    and the tree's root, once its own has ended)."""

    def __init__(self, init: int) -> None:
        self.init = init
        self._inside: set[int] = set()
        self._outside: set[int] = {init}
        """The processes found outside the tree, still running at the last look (and `init`, never counted)."""

    def memory_bytes(self, limit: int) -> int:
        """The tree's memory: a lone worker's resident memory (RSS); several processes' summed, and once that
        passes `limit`, summed as PSS, which counts each page they share once (a forked child shares its parent's
        pages until either writes them, and each one's RSS counts them whole) but costs 15-30 ms per GB they map,
        where RSS costs a few µs a process. 0 where /proc cannot be read (macOS)."""
        members = self._members()
        resident = sum(rss for _, rss in members)
        if len(members) < 2 or resident <= limit:
            return resident
        return sum(proportional_bytes(pid, rss) for pid, rss in members)

    def _members(self) -> list[tuple[int, int]]:
        """Each process under the init, with its resident memory."""
        try:
            pids = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        except OSError:
            return []
        self._outside &= pids | {self.init}  # a number no longer in use may come back as one of the tree's
        read = {pid: parent_and_resident_bytes(pid) for pid in pids - self._outside}
        inside = {self.init}
        for pid in self._inside & read.keys():  # still under it (a number reused by another process is not)
            if read[pid][0] in self._inside or read[pid][0] == self.init:
                inside.add(pid)
        grown = True
        while grown:  # the new ones, each under one found under it (its parent may be new too)
            grown = False
            for pid, (parent, _) in read.items():
                if pid not in inside and parent in inside:
                    inside.add(pid)
                    grown = True
        inside.discard(self.init)
        self._inside = inside
        self._outside |= read.keys() - inside
        return [(pid, read[pid][1]) for pid in inside]


def parent_and_resident_bytes(pid: int) -> tuple[int | None, int]:
    """A process's parent and its resident memory, from /proc/<pid>/stat (None and 0 once it is gone)."""
    fields = read_stat(pid)
    if fields is None:
        return None, 0
    try:
        return int(fields[1]), int(fields[21]) * PAGE_SIZE  # the fields' 4th (ppid) and 24th (rss, in pages)
    except (IndexError, ValueError):
        return None, 0


def proportional_bytes(pid: int, resident: int) -> int:
    """A process's proportional set size (PSS, from /proc/<pid>/smaps_rollup: each page it shares with others
    counted as its share), or `resident` where it cannot be read (Linux before 4.14)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            text = rollup.read()
    except FileNotFoundError:
        return 0  # gone since
    except OSError:
        return resident
    try:
        start = text.index(b"\nPss:") + len(b"\nPss:")
        return int(text[start:text.index(b"kB", start)]) * 1024
    except ValueError:  # empty: a process ended but not yet waited for
        return resident


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
