"""`ubiops.yaml`: a package's environment variables and system packages.

Validated with the schema of the `ubiops` SDK itself (`ubiops.utils.validate`), so the emulator and
the deployer accept exactly what the SDK's own check accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from schema import SchemaError
from ubiops.utils.validate import ubiops_config_schema

from contract.names import variable_value_problem

MANIFEST_FILE = "ubiops.yaml"


class ManifestError(ValueError):
    """An `ubiops.yaml` that UbiOps would refuse."""


@dataclass(frozen=True)
class Manifest:
    environment_variables: dict[str, str] = field(default_factory=dict)
    apt_packages: tuple[str, ...] = ()
    adds_apt_sources: bool = False
    """Whether `apt.sources` names repositories UbiOps adds before installing `apt_packages`."""


def read_manifest(package_dir: Path) -> Manifest:
    """Read `ubiops.yaml` from a package folder; a missing file is an empty manifest."""
    path = package_dir / MANIFEST_FILE
    if not path.is_file():
        return Manifest()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(f"{MANIFEST_FILE} is not valid YAML: {' '.join(str(exc).split())}") from None
    if raw is None:
        return Manifest()
    try:
        ubiops_config_schema.validate(raw)
    except SchemaError as exc:
        raise ManifestError(f"{MANIFEST_FILE}: {exc.code}") from None
    variables = parse_environment_variables(raw.get("environment_variables", []))
    for name, value in variables.items():  # the API's rule for a variable's value, as the instance gets both alike
        problem = variable_value_problem(value)
        if problem:
            raise ManifestError(f"{MANIFEST_FILE}: the value of environment variable {name} {problem}")
    apt = raw.get("apt", {})
    sources = apt.get("sources", {})
    return Manifest(environment_variables=variables, apt_packages=tuple(apt.get("packages", [])),
                    adds_apt_sources=bool(sources.get("urls") or sources.get("items")))


def parse_environment_variables(definitions: list[str]) -> dict[str, str]:
    """`NAME=value` definitions as a dict (the value may itself contain `=`)."""
    variables: dict[str, str] = {}
    for definition in definitions:
        name, separator, value = definition.partition("=")
        if not separator or not name:
            raise ManifestError(f"environment variable {definition!r} must be written NAME=value")
        variables[name] = value
    return variables


def instance_variables(manifest: Mapping[str, str], api: Mapping[str, str],
                       overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a version's instances get, each layer over the ones before: `ubiops.yaml`'s (built
    into the package's environment), the API's (project < deployment < version, already merged), then
    the emulator's `--env`. One rule for the emulator, which starts instances with them, and the deployer,
    whose check must judge the package by what its instances will see."""
    return {**manifest, **api, **(overrides or {})}
