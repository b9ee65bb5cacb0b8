"""An instance's first process, as a container's init (`docker run --init`): it forks the worker, which runs the
deployment, and stays its parent, so that nothing the deployment starts outlives the instance. Standard library only:
it runs in the version's Python, started by `instance.BOOTSTRAP` before the worker imports anything.

On Linux it is a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): a process the deployment starts in a session or
group of its own (`start_new_session=True`, `os.setsid`, `os.setpgrp`, a daemon's double fork), which the worker's
process group does not hold, is adopted by it once its parent has ended, not by the machine's init, so every process
of the instance descends from it (`descendants`, from /proc). It kills them all, and reaps them, so none is left to
the machine's init as a zombie:

- when the server stops the instance (SIGTERM, `instance.kill_instance`); it then ends killed by SIGKILL, as the
  worker was;
- when the worker has ended by itself (a crash, `sys.exit`): it then exits as the worker did, so the server reports
  the worker's exit code or signal;
- when the server has gone without stopping the instance (killed outright, or by the OOM killer): it also removes the
  instance's temporary folder. Being a process of its own, it does so whatever the worker does: a thread of the
  worker's could not run while the deployment holds the GIL in a long C call.

Where /proc cannot be read (macOS: no subreaper either), it kills the worker's process group instead, itself with it,
and the server kills the group once it has exited: a process in a session or group of its own outlives the instance.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal

POLL_SECONDS = 1
"""How often the server is looked for where it cannot be waited for (no pidfd: macOS, Linux before 5.3)."""


def start(server: int, temp_dir: str, worker_fds: tuple[int, ...]) -> None:
    """Fork the worker: return in it, while this process goes on as the instance's init and never returns. `server`
    is the server's process id, as the server gave it; `worker_fds` (the worker's channel and output pipe) are closed
    here, so that the server sees them close when the worker ends. SIGTERM, the server's stop, is held until the init
    handles it: one sent as the worker is forked would leave the worker running, or orphaned."""
    _become_subreaper()  # before the fork: a process the worker's deployment orphans, however early, comes here
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    worker = os.fork()
    if worker == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return
    for fd in worker_fds:
        os.close(fd)
    try:
        _watch(worker, server, temp_dir)
    except BaseException:  # a fault of this module's: never go on to run the worker's code here as well
        import traceback

        traceback.print_exc()
    os._exit(1)


def _become_subreaper() -> None:
    """Have the orphans among this process's descendants adopted by it (Linux 3.4 and later; nothing elsewhere)."""
    try:
        import ctypes  # here: nothing else before the fork needs it (~1.5 ms)

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (ImportError, OSError, AttributeError):  # no ctypes in this Python, no prctl (macOS)
        pass


def _watch(worker: int, server: int, temp_dir: str) -> None:
    """Reap the worker and the processes adopted until the worker ends, the server stops the instance or the server
    has gone; then end the instance. Woken by SIGCHLD and SIGTERM (through a pipe), and by the server's end (a pidfd,
    where there is one)."""
    wake_up, woken = os.pipe()
    os.set_blocking(wake_up, False)
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken)
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD is delivered, and written to the pipe
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    server_ends = _pidfd(server)
    while True:
        status = _reap(worker)
        if status is not None:
            _end_all()  # where it cannot, the server kills the worker's group once this process has exited
            _exit_as(os.waitstatus_to_exitcode(status))
        if stopped:
            if not _end_all():
                os.killpg(0, signal.SIGKILL)
            _exit_as(-signal.SIGKILL)  # as the worker was killed: the server reports so ("killed by signal SIGKILL")
        if os.getppid() != server:
            break
        watched = [wake_up] if server_ends is None else [wake_up, server_ends]
        ready, _, _ = select.select(watched, [], [], POLL_SECONDS if server_ends is None else None)
        if server_ends in ready:
            break
        with contextlib.suppress(BlockingIOError):
            os.read(wake_up, 4096)
    _end_alone(temp_dir)


def _end_all() -> bool:
    """Kill every process of the instance but this one, and reap each: none is left to the machine's init as a zombie
    (for good, in a container whose first process reaps none). False where /proc cannot be read: nothing done."""
    if not kill_descendants(os.getpid()):
        return False
    try:
        while True:  # until no child is left: a process running in the instance has one of them for ancestor
            os.waitpid(-1, 0)
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
            kill_descendants(os.getpid())  # what a process killed as it forked left, adopted since
    except ChildProcessError:
        return True


def _end_alone(temp_dir: str) -> None:
    """The server has gone without stopping the instance: end it and remove its temporary folder, as the server's
    stop does. Where /proc cannot be read, `end_group` ends it."""
    import shutil  # here: most instances end otherwise

    if _end_all():
        shutil.rmtree(temp_dir, ignore_errors=True)
        os._exit(0)
    end_group(temp_dir)


def end_group(temp_dir: str) -> None:
    """Remove the instance's temporary folder, then kill this process's group, this process with it: the end of an
    instance whose server has gone, where no init can end it all (here without /proc; the worker without its init).
    The folder is renamed first, so that no new file is made under its name meanwhile."""
    import shutil  # here: most instances end otherwise

    gone = f"{temp_dir}.gone"
    with contextlib.suppress(OSError):
        os.rename(temp_dir, gone)
    shutil.rmtree(gone, ignore_errors=True)
    os.killpg(0, signal.SIGKILL)


def _pidfd(pid: int) -> int | None:
    """A file descriptor readable once process `pid`, this one's parent, has ended (None where there is none, or if it
    has ended already: then this process's parent is another)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or before 5.3
        return None
    if os.getppid() != pid:
        os.close(fd)
        return None
    return fd


def _reap(worker: int) -> int | None:
    """Reap every child that has ended (the worker, or a process adopted); the worker's wait status if it has."""
    found = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        if pid == worker:
            found = status


def _exit_as(code: int) -> None:
    """End as the worker ended: with its exit code, or killed by the same signal (-code; without a core dump of this
    one)."""
    if code < 0:
        import resource

        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set, nor needs to be
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code  # a signal that did not end this process
    os._exit(code)


def kill_descendants(root: int) -> bool:
    """SIGKILL every process descending from `root` (running: a zombie has ended). False where /proc cannot be read
    (macOS): nothing done."""
    found = descendants(root)
    if found is None:
        return False
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def descendants(root: int) -> list[int] | None:
    """The running processes descending from `root`, from each process's parent in /proc (None where there is none)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    children: dict[int, list[int]] = {}
    for name in names:
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None and stat[0] != b"Z":
                children.setdefault(int(stat[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def read_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command's name, which may hold anything: its state first, then its
    parent, its group, ... (None once it is gone)."""
    try:  # os.open, not open(): a Python file object costs 4 more system calls, and a look reads every process
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 1024).rpartition(b")")[2].split() or None
    except OSError:
        return None
    finally:
        os.close(fd)
