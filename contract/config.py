"""The project's `[tool.deployer]` settings in `pyproject.toml`, read by the emulator and the deployer.

The emulator serves the package under the same project and deployment names the deployer pushes
to, so code written against the emulator runs unchanged against UbiOps. The version settings are
those of UbiOps' `DeploymentVersionCreate`; the deployer's flags override them. Environment
variables are given by value (`environment_variables`) or, for secrets, by name only (`secrets`):
their values are read from the local environment when the deployer runs, never from this file.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from contract.environments import SYSTEM_ENVIRONMENTS
from contract.names import NAME_RULE, VARIABLE_NAME_RULE, is_name, is_variable_name, variable_value_problem
from contract.requests import KEEP_METADATA, RETENTION_MODES
from contract.spec import PLAIN
from contract.versions import DEFAULT_INSTANCE_TYPE_GROUP, IDLE_TIME_RANGE, MAXIMUM_IDLE_TIME, instance_range_problem

CONFIG_FILE = "pyproject.toml"
DEFAULT_TEST_COMMAND = "python -m pytest -q -p no:cacheprovider {package}/tests"
"""The package's own tests (its `tests/` folder, which `.ubiops-ignore` keeps out of the zip)."""
REQUIRED_KEYS = ("project", "deployment", "package")
"""What the deployer takes only from the section itself: their defaults are the template's (the face
profile's names and folder), under which a section that leaves them out would push."""
SHELL_OPERATOR_CHARS = ";&|<>"
"""What a shell's operators are made of (`&&`, `||`, `|`, `;`, `>`, `2>&1`'s `>&`), which `check`, running the
test command without a shell, would pass to the program as words."""
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
"""A shell's `NAME=value` before a command, which sets a variable for it."""
VARIABLE_LEVELS = ("version", "deployment")
"""Where `push` sets the variables: on the new version (the default), or on the deployment (shared by
all its versions, so setting them restarts the ones running)."""


class ConfigError(ValueError):
    """`[tool.deployer]` holds something unusable; the message names the key."""


@dataclass(frozen=True)
class DeployerConfig:
    project: str = "face-profile"
    deployment: str = "face-profile"
    package: str = "deployment_package"
    emulator_version: str = "v1"
    environment: str = "python3-11"
    instance_type_group: str = DEFAULT_INSTANCE_TYPE_GROUP
    minimum_instances: int = 0
    maximum_instances: int = 1
    maximum_idle_time: int = MAXIMUM_IDLE_TIME
    request_retention_mode: str = KEEP_METADATA
    labels: dict[str, str] = field(default_factory=dict)
    max_versions: int = 5
    sample_input: dict[str, Any] | str = field(default_factory=dict)
    """What `check` sends the emulator and `push` the new version: a table of the input fields, or a
    plain-text deployment's text; empty, nothing is sent."""
    test_command: str = DEFAULT_TEST_COMMAND
    test_timeout: int = 3600
    """Seconds `check` lets the test command run before it ends it and fails: a test that hangs would
    hold `check` and `push` for ever."""
    environment_variables: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    """Names of secret variables, whose values come from the local environment at push time."""
    environment_variables_level: str = VARIABLE_LEVELS[0]
    root: Path = Path(".")

    def __post_init__(self) -> None:
        # Quoted as a shell would need it: the command is split into words after (a space once split it).
        object.__setattr__(self, "test_command", self.test_command.replace("{package}", shlex.quote(self.package)))
        object.__setattr__(self, "secrets", tuple(self.secrets))

    @property
    def package_path(self) -> Path:
        return self.root / self.package


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def _folder(value: Any) -> str | None:
    """The package folder is a path, which the system cannot take with a NUL in it."""
    if isinstance(value, str) and "\x00" in value:
        return "holds a NUL character, which no path can"
    return _text(value)


def _name(value: Any) -> str | None:
    """Project, deployment and version names go into UbiOps' URLs and the deployer's file names."""
    if isinstance(value, str) and is_name(value):
        return None
    return f"must be a UbiOps name: {NAME_RULE}"


def _command(value: Any) -> str | None:
    """`check` splits the test command as a shell would, but runs it without a shell: what only a shell
    does is refused here (`&&` once ran pytest with `&&` as a path, `cd` failed as `cannot run cd`)."""
    if not isinstance(value, str):
        return "must be a non-empty string"
    if "\x00" in value:
        return "holds a NUL character, which no command line can"
    try:
        words = shlex.split(value)
    except ValueError as exc:
        return f"is not a command line ({exc})"
    if not words:
        return "must be a non-empty string"
    if words[0] == "cd":
        return ("starts with cd, a shell's own command, but it runs without a shell, in the project's folder (where "
                "pyproject.toml is): name the paths from there (python -m pytest {package}/tests), or give the "
                "commands to a shell (test_command = \"sh -c 'cd ... && ...'\")")
    if ASSIGNMENT.match(words[0]):  # once: cannot run PYTHONPATH=.
        return (f"starts with {words[0].split('=')[0]}=..., a variable a shell would set, but it runs without a "
                f"shell: set it with env (test_command = \"env {value.strip()}\")")
    operator = next((token for token in _shell_tokens(value) if token and set(token) <= set(SHELL_OPERATOR_CHARS)), None)
    if operator is not None:
        return (f"has the shell's {operator!r}, but it runs without a shell (split into words, then run as one program): "
                f"put the commands in a script (test_command = \"sh run_tests.sh\"), or give them to a shell "
                f"(test_command = \"sh -c '... {operator} ...'\")")
    return None


def _shell_tokens(command: str) -> list[str]:
    """`command` cut as a shell cuts it, its operators (`&&`, `|`, `>`, …) tokens of their own; quoted
    words keep their quotes, so a quoted `&&` (`sh -c 'a && b'`) is no operator."""
    lexer = shlex.shlex(command, posix=False, punctuation_chars=SHELL_OPERATOR_CHARS)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # what the posix split took, this one may not (a quote escaped by a backslash)
        return []


def _count(minimum: int, maximum: int | None = None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        if value < minimum or (maximum is not None and value > maximum):
            return f"must be at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
        return None
    return check


def _retention_mode(value: Any) -> str | None:
    return None if value in RETENTION_MODES else f"must be one of {', '.join(RETENTION_MODES)}"


def _environment(value: Any) -> str | None:
    return None if value in SYSTEM_ENVIRONMENTS else f"must be one of UbiOps' base environments: {', '.join(SYSTEM_ENVIRONMENTS)}"


def _labels(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return "must be a table of strings (labels = { team = \"vision\" })"
    return None


def _sample_input(value: Any) -> str | None:
    if value == "":
        return "is empty: give the text to send, or leave sample_input out to send none"
    if isinstance(value, dict | str):
        return None
    return ("must be a table of the input fields (sample_input = { name = value, ... }), or the text of a "
            "plain-text deployment (sample_input = \"text\")")


def sample_input_problem(sample: dict[str, Any] | str, input_type: str) -> str | None:
    """Why `sample_input` cannot be the input of a deployment whose `input_type` is this (a table for
    structured input, a string for plain); None when its kind fits."""
    if isinstance(sample, str) == (input_type == PLAIN):
        return None
    if isinstance(sample, str):
        return ("[tool.deployer] sample_input is a string, but the deployment's input is structured: give its "
                "fields as a table (sample_input = { name = value, ... })")
    return ("[tool.deployer] sample_input is a table of fields, but the deployment's input is plain text: give "
            "the text itself (sample_input = \"text\")")


def _variable_names(names: Any) -> str | None:
    bad = [name for name in names if not isinstance(name, str) or not is_variable_name(name)]
    return f"has names that are not environment variable names ({', '.join(map(repr, bad))}): use {VARIABLE_NAME_RULE}" \
        if bad else None


def _variables(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return "must be a table of strings (environment_variables = { LOG_LEVEL = \"info\" })"
    problems = [f"has {name}, whose value {problem}" for name, v in value.items() if (problem := variable_value_problem(v))]
    return problems[0] if problems else _variable_names(value)


def _secret_names(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of names (secrets = [\"API_KEY\"]), whose values come from the local environment"
    return _variable_names(value)


def _variable_level(value: Any) -> str | None:
    return None if value in VARIABLE_LEVELS else f"must be one of {', '.join(VARIABLE_LEVELS)}"


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "project": _name,
    "deployment": _name,
    "package": _folder,
    "emulator_version": _name,
    "environment": _environment,
    "instance_type_group": _text,
    "minimum_instances": _count(0),
    "maximum_instances": _count(1),
    "maximum_idle_time": _count(*IDLE_TIME_RANGE),
    "request_retention_mode": _retention_mode,
    "labels": _labels,
    "max_versions": _count(1),
    "sample_input": _sample_input,
    "test_command": _command,
    "test_timeout": _count(1),
    "environment_variables": _variables,
    "secrets": _secret_names,
    "environment_variables_level": _variable_level,
}


def find_config_file(start: Path) -> Path | None:
    """The nearest `pyproject.toml` at or above `start`."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def deployer_table(path: Path) -> dict[str, Any] | None:
    """The `[tool.deployer]` table of the config file `path`; None when it has none."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 (an editor may have saved it as UTF-16)
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded): save it as UTF-8") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table ([tool.deployer] holds the deployer's settings)")
    table = tool.get("deployer")
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.deployer must be a table ([tool.deployer] with key = value lines)")
    return table


def _listed(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def secret_values(config: DeployerConfig) -> dict[str, str]:
    """The values this shell holds for `[tool.deployer] secrets`, which both the deployer and the emulator
    (for its own package) give the version. An empty value counts as unset: CI systems give an undefined
    secret as one. ConfigError, without the value, for one no environment variable can hold (a byte that
    is not UTF-8 once ended the deployer with a traceback, and the emulator's instances could not start)."""
    values = {name: os.environ[name] for name in config.secrets if os.environ.get(name)}
    for name, value in values.items():
        if problem := variable_value_problem(value):
            raise ConfigError(f"{name} (named in [tool.deployer] secrets) {problem}: export it as UTF-8 text")
    return values


def load_config(start: Path | None = None, section_required: bool = False) -> DeployerConfig:
    """Read `[tool.deployer]` from the nearest `pyproject.toml`; defaults where there is none. With
    `section_required` (the deployer), no `pyproject.toml`, one without the section, or a section without
    one of REQUIRED_KEYS, is a ConfigError: the settings are elsewhere or under a misspelled name, and the
    defaults would ship to another deployment."""
    folder = (start or Path.cwd()).resolve()
    path = find_config_file(folder)
    if path is None:
        if section_required:  # the defaults would push another package (the face profile's)
            raise ConfigError(f"no {CONFIG_FILE} in {folder} or any folder above it: the deployer's settings go in "
                              f"its [tool.deployer] section (`python -m deployer init` writes one)")
        return DeployerConfig(root=folder)
    table = deployer_table(path)
    if table is None and section_required:
        tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
        others = f" (its [tool] tables: {', '.join(sorted(tool))})" if tool else ""
        raise ConfigError(f"{path} has no [tool.deployer] section{others}: the deployer's settings (project, "
                          "deployment, package, …) go there")
    table = table or {}
    missing = [key for key in REQUIRED_KEYS if key not in table]
    if missing and section_required:
        defaults = ", ".join(f'{key} = "{getattr(DeployerConfig, key)}"' for key in missing)
        raise ConfigError(f"{path}: [tool.deployer] must set {_listed(list(REQUIRED_KEYS))}; it has no {', '.join(missing)} "
                          f"(the template's defaults, {defaults}, would push another deployment)")
    known = {f.name for f in fields(DeployerConfig)} - {"root"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown [tool.deployer] key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key, value in table.items():
        problem = CHECKS[key](value)
        if problem:
            raise ConfigError(f"{path}: [tool.deployer] {key} {problem}")
    config = DeployerConfig(root=path.parent, **table)
    problem = instance_range_problem(config.minimum_instances, config.maximum_instances)
    if problem:
        raise ConfigError(f"{path}: [tool.deployer] {problem}")
    names = [*config.environment_variables, *config.secrets]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"{path}: [tool.deployer] {', '.join(twice)} named more than once in environment_variables "
                          f"and secrets; name each variable once")
    return config
