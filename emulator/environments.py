"""Where a version runs, as the API names it: UbiOps' system environments (`contract.environments`).
Read-only: there are no custom environments. Each version's own Python environment is built by
`emulator.runtime.python_envs`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from contract.environments import SYSTEM_ENVIRONMENTS
from emulator.exceptions import NotAllowed, NotFound
from emulator.labels import has_labels

OWN_ENVIRONMENT = f"python{sys.version_info.major}-{sys.version_info.minor}"
"""The environment a version gets when its create call names none: the emulator's own Python."""
TAG = "latest"
SYSTEM_LABELS: Mapping[str, str] = {}
"""The labels of a system environment: none."""


def version_environment(settings: Mapping[str, Any]) -> str:
    """The environment a version's builds run in, by its settings (`environment_name`). A built revision
    keeps the one it was built in (`Revision.environment`): a change builds the version's revision again
    (`Registry.update_version`, `Builder.rebuild`)."""
    return settings.get("environment_name", OWN_ENVIRONMENT)


def list_environments(system: bool | None = None, labels: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The environments a list call asks for: every one is a system environment, and carries no labels
    (so a label filter matches none)."""
    return () if system is False or not has_labels(SYSTEM_LABELS, labels or {}) else SYSTEM_ENVIRONMENTS


def check_environment(name: str) -> None:
    """A version may only name a known system environment (the emulator has no custom ones)."""
    if name not in SYSTEM_ENVIRONMENTS:
        raise NotAllowed(f"environment: {name!r} is not an environment; the emulator knows {', '.join(SYSTEM_ENVIRONMENTS)}")


def check_environment_tag(tag: str) -> None:
    """A version may only name a tag `environment_tag` knows: the SDK's `wait_for_deployment_version`
    asks for the version's tag, and an unknown one was echoed, built, then a 404 there."""
    if tag != TAG:
        raise NotAllowed(f"environment_tag: {tag!r} is not a tag of the environment; the emulator's environments have "
                         f"one, {TAG!r}")


def environment(name: str) -> str:
    if name not in SYSTEM_ENVIRONMENTS:
        raise NotFound("Environment not found")
    return name


def environment_tag(environment_name: str, tag: str) -> str:
    """The one tag of a system environment, `latest`."""
    environment(environment_name)
    if tag != TAG:
        raise NotFound("Environment tag not found")
    return tag
