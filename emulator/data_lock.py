"""One emulator per data folder: two writing the same request history and buckets would corrupt them."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = ".lock"


class DataDirInUse(RuntimeError):
    """Another emulator holds the data folder."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on `data_dir` for as long as the returned file stays open.

    The lock is the kernel's (flock), so it goes away with the process, however it ends. A data folder
    made here is its owner's alone (0700): it holds every request's input and output, as the journal and
    the catalog do, which are made 0600; one that exists keeps its mode (its `buckets/` and `work/` are
    0700 whatever it is: `storage.py`).
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirInUse(
            f"another emulator (pid {holder}) is using the data folder {data_dir}; "
            "stop it, or give this one its own --data-dir"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
