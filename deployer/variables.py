"""The environment variables `[tool.deployer]` gives the deployment, set as part of `push` (and on the
emulated version by `check`): plain values from the config, and secrets, named in the config, whose
values are read from the local environment when the deployer runs.

A secret's value lives only in this process and in the call that sets it: it is masked in `--dry-run`
(`deployer.client`), never printed in progress or summaries, and a package file holding it is
refused (`deployer.bundle`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ubiops

from contract.config import DeployerConfig, secret_values
from contract.manifest import ManifestError, instance_variables, read_manifest
from contract.names import variables_size_problem
from deployer.client import Api
from deployer.errors import DeployerError


@dataclass(frozen=True)
class ConfiguredVariable:
    name: str
    value: str = field(repr=False)
    secret: bool = False


def configured_variables(config: DeployerConfig) -> list[ConfiguredVariable]:
    """Every variable to set; DeployerError naming each secret the local environment lacks, or when
    all of them could not start a process together, before anything is built, tested or uploaded
    (ConfigError for a secret's value no environment can hold, `contract.config.secret_values`)."""
    values = secret_values(config)
    missing = [name for name in config.secrets if name not in values]
    if missing:
        raise DeployerError(f"{', '.join(missing)} (named in [tool.deployer] secrets) not set in the local environment: "
                            f"export {'them' if len(missing) > 1 else 'it'} before running the deployer")
    variables = [*(ConfiguredVariable(name, value) for name, value in config.environment_variables.items()),
                 *(ConfiguredVariable(name, values[name], secret=True) for name in config.secrets)]
    manifest = _manifest_variables(config)
    if problem := variables_size_problem(instance_variables(manifest, {v.name: v.value for v in variables})):  # as the emulator counts
        with_manifest = ", with ubiops.yaml's," if manifest else ""
        raise DeployerError(f"[tool.deployer] environment_variables and secrets{with_manifest} come to {problem}")
    return variables


def _manifest_variables(config: DeployerConfig) -> dict[str, str]:
    """The package's `ubiops.yaml` variables, which its instances get beneath the configured ones (the
    emulator's bound counts both); none when it cannot be read, which the package check reports."""
    try:
        return read_manifest(config.package_path).environment_variables
    except ManifestError:
        return {}


def ship_variables(api: Api, config: DeployerConfig, version: str, variables: list[ConfiguredVariable],
                   exists: bool, say: Callable[[str], None],
                   changed: Callable[[str], None] = lambda _name: None) -> list[dict[str, Any]]:
    """Create the variables on the version or the deployment (`environment_variables_level`), or update
    those it already sets itself (`exists`: it may set some) whose value may differ: every secret, as
    its value cannot be read back. Variables it sets that the config does not name are left alone.
    What was done with each, by name (never a value); `changed` hears each name as soon as it is set
    at UbiOps, so a push that stops midway can say which were."""
    on_version = config.environment_variables_level == "version"
    target = f"version {version}" if on_version else f"deployment {config.deployment}"
    where = f"version {version!r}" if on_version else f"deployment {config.deployment!r}"
    prefix = "deployment_version" if on_version else "deployment"
    level = {"project_name": config.project, "deployment_name": config.deployment, **({"version": version} if on_version else {})}
    current = {v.name: v for v in api.read(where, f"{prefix}_environment_variables_list", **level) or []
               if v.inheritance_type is None} if exists else {}
    done = []
    for variable in variables:
        data = ubiops.EnvironmentVariableCreate(name=variable.name, value=variable.value, secret=variable.secret)
        found = current.get(variable.name)
        if found is None:
            api.write(where, f"{prefix}_environment_variables_create", **level, data=data)
            action = "create"
        elif found.secret or variable.secret or found.value != variable.value:
            api.write(where, f"{prefix}_environment_variables_update", **level, id=found.id, data=data)
            action = "update"
        else:
            action = "unchanged"
        if not api.dry_run:
            if action != "unchanged":
                changed(variable.name)
            source = " (secret, from the local environment)" if variable.secret else ""
            say(f"{variable.name}{source}: {'unchanged' if action == 'unchanged' else 'set'} on {target}")
        done.append({"name": variable.name, "secret": variable.secret, "level": config.environment_variables_level,
                     "action": action})
    return done
