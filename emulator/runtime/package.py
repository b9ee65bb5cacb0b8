"""The package to serve, from a folder or from a zip as UbiOps receives it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from contract.archive import extract_package
from contract.package import Package, read_package


class PackageError(ValueError):
    """A package the emulator cannot serve; the message says what to fix."""


def open_package(source: Path, unpack_root: Path) -> Package:
    """Read a package folder, or extract a zip under `unpack_root` first (UbiOps' zip layout rules)."""
    if source.is_file():
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        target = unpack_root / f"{source.stem}-{digest}"
        shutil.rmtree(target, ignore_errors=True)
        return read_package(extract_package(source, target))
    if source.is_dir():
        return read_package(source)
    raise PackageError(f"no package at {source}: give a package folder or a .zip")
