"""The project's `[tool.deployer]` settings in `pyproject.toml`, read by the emulator and the deployer.

The emulator serves the package under the same project and deployment names the deployer pushes
to, so code written against the emulator runs unchanged against UbiOps.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

CONFIG_FILE = "pyproject.toml"


class ConfigError(ValueError):
    """`[tool.deployer]` holds something unusable; the message names the key."""


@dataclass(frozen=True)
class DeployerConfig:
    project: str = "face-profile"
    deployment: str = "face-profile"
    package: str = "deployment_package"
    emulator_version: str = "v1"
    root: Path = Path(".")

    @property
    def package_path(self) -> Path:
        return self.root / self.package


def find_config_file(start: Path) -> Path | None:
    """The nearest `pyproject.toml` at or above `start`."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path | None = None) -> DeployerConfig:
    """Read `[tool.deployer]` from the nearest `pyproject.toml`; defaults where there is none."""
    path = find_config_file((start or Path.cwd()).resolve())
    if path is None:
        return DeployerConfig(root=(start or Path.cwd()).resolve())
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("deployer", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    known = {f.name for f in fields(DeployerConfig)} - {"root"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown [tool.deployer] key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key, value in table.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: [tool.deployer] {key} must be a non-empty string")
    return DeployerConfig(root=path.parent, **table)
