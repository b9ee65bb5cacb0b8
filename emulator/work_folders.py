"""The private copies of a request's input files, which UbiOps hands a deployment as local paths:
`<data>/work/<request id>/<n>/<file name>`, the n-th file of the request (counted from 0: never a
name from the request, nor two files in one folder). They are planned when the request is queued,
made once an instance takes it, and removed when it ends: only the requests being run hold copies.

A request's folder is made from a spare one, and left as a spare when it ends: on ext4 each folder
made and removed cost ~0.1 ms (`rmdir` alone), renaming one ~5 µs (BENCHMARKS.md, image requests).
A folder only becomes a spare once it is empty but for its numbered folders, so nothing a deployment
wrote there reaches another request; and its new name is another request's, so a path an old
request held never leads into it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

SPARE_FOLDERS = 16
"""Spare folders kept; more would only be needed by more file requests running at once."""
SPARE_PREFIX = ".spare-"


@dataclass
class PrivateCopies:
    """The copies one request's input files need: each stored file, and where its copy goes."""

    root: Path
    request_id: str
    copies: list[tuple[Path, Path]] = field(default_factory=list)
    size: int = 0
    made: bool = False
    """Whether their folder is there (`WorkFolders.copy` made it, `remove` has not yet removed it)."""

    @property
    def folder(self) -> Path:
        return self.root / self.request_id

    def add(self, source: Path) -> Path:
        target = self.folder / str(len(self.copies)) / source.name
        self.copies.append((source, target))
        self.size += source.stat().st_size
        return target


class WorkFolders:
    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(mode=0o700, parents=True)  # the copies keep the umask's modes: their folder is the owner's alone
        self._spares: list[Path] = []
        self._named = 0
        self._lock = threading.Lock()  # copies of large files are made and removed in threads

    def plan(self, request_id: str) -> PrivateCopies:
        """Where a request's copies go (request ids are the emulator's own UUIDs, never a caller's path)."""
        return PrivateCopies(self.root, request_id)

    def copy(self, copies: PrivateCopies) -> None:
        """Make the copies, in the request's folder."""
        if not copies.copies:
            return
        self._take(copies.folder)
        copies.made = True
        for source, target in copies.copies:
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(source, target)

    def remove(self, copies: PrivateCopies) -> None:
        """Remove the copies; their folder becomes a spare if nothing else is left in it."""
        if not copies.made:
            return
        copies.made = False
        for _, target in copies.copies:
            with contextlib.suppress(OSError):  # the deployment may have moved it, or made it a folder
                target.unlink(missing_ok=True)
        file_folders = {target.parent.name for _, target in copies.copies}
        with self._lock:
            spare = self.root / f"{SPARE_PREFIX}{self._named}" if len(self._spares) < SPARE_FOLDERS else None
            self._named += 1
        if spare is not None and _empty_but_for(copies.folder, file_folders):
            with contextlib.suppress(OSError):  # the folder went meanwhile: nothing to keep
                os.rename(copies.folder, spare)
                with self._lock:
                    self._spares.append(spare)
                return
        shutil.rmtree(copies.folder, ignore_errors=True)

    def _take(self, folder: Path) -> None:
        with self._lock:
            spare = self._spares.pop() if self._spares else None
        if spare is not None:
            with contextlib.suppress(OSError):
                os.rename(spare, folder)
                return
        folder.mkdir()


def _empty_but_for(folder: Path, file_folders: set[str]) -> bool:
    """Whether `folder` holds only these numbered folders (real folders, not links), each empty: the
    deployment left nothing there."""
    try:
        with os.scandir(folder) as entries:
            found = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        if not all(name in file_folders and is_folder for name, is_folder in found):
            return False
        for name, _ in found:
            with os.scandir(folder / name) as inside:
                if next(inside, None) is not None:
                    return False
    except OSError:
        return False
    return True
