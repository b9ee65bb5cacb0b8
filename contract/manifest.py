"""`ubiops.yaml`: a package's environment variables and system packages.

Validated with the schema of the `ubiops` SDK itself (`ubiops.utils.validate`), so the emulator and
the deployer accept exactly what the SDK's own check accepts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from schema import SchemaError
from ubiops.utils.validate import ubiops_config_schema

from contract.names import variable_value_problem

MANIFEST_FILE = "ubiops.yaml"
MAX_EXPANDED_VALUES = 10_000
"""How many values (mappings, lists, scalars) `ubiops.yaml` may hold once its aliases (`*name`) are expanded:
far more than any real one holds, and a 271-byte file of nested aliases ("billion laughs") expands to 43 million,
which the schema's check then walked and printed whole in its error (860 MB, a 254 MB log line)."""


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
        raw = _load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(f"{MANIFEST_FILE} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ManifestError(f"{MANIFEST_FILE} is nested too deeply to be read") from None
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


def _load(text: str) -> Any:
    """The YAML document `text` holds, as `yaml.safe_load` reads it, once its aliases are known not to
    expand it past MAX_EXPANDED_VALUES (ManifestError if they do)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded, distinct = _sizes(node)
        if expanded > MAX_EXPANDED_VALUES and expanded > distinct:  # a long file without aliases is read as it is
            raise ManifestError(f"{MANIFEST_FILE}: an alias (*name) in it holds itself" if expanded == math.inf else
                                f"{MANIFEST_FILE}: its aliases (*name) expand it to more than {MAX_EXPANDED_VALUES} "
                                "values, more than any real ubiops.yaml holds; write the values out")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _sizes(root: yaml.Node) -> tuple[float, int]:
    """How many nodes the document under `root` has with its aliases expanded (an alias is the very node
    it names, counted again at each use; infinite when a node holds itself), and how many distinct ones
    were counted: once the expanded count passes MAX_EXPANDED_VALUES, it stops counting."""
    sizes: dict[int, float] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        if counted:
            sizes[id(node)] = size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_EXPANDED_VALUES:
                return size, len(sizes)
        elif id(node) not in sizes:
            sizes[id(node)] = -1  # being counted: until its children are
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
        elif sizes[id(node)] < 0:  # met again within its own children
            return math.inf, len(sizes)
    return sizes[id(root)], len(sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


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
