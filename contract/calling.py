"""How UbiOps calls a deployment: which file it imports `Deployment` from, and which arguments
`Deployment(...)`, `request` and `requests` get, decided by their signatures (the executable reference
is `ubiops.utils.run_local`).

One rule for both sides: the emulator's loader calls the class with it, and the deployer's static
check reads `deployment.py` with it (`signature_of_function`), so a signature the check accepts
is one the loader can call, and one it refuses would fail on UbiOps too.
"""

from __future__ import annotations

import ast
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEPLOYMENT_FILE = "deployment.py"
DEPLOYMENT_FILE_VARIABLES = ("SYS_DEPLOYMENT_FILE_NAME", "ML_MODEL_FILE_NAME")
"""The variables that name another file than `deployment.py`: the current name, then its legacy one."""
INIT_ARGUMENTS = ("base_directory", "context")
REQUEST_METHODS = ("request", "requests")
NEITHER_REQUEST_METHOD = "Deployment has neither request(self, data) nor requests(self, data)"


def deployment_file_name(variables: Mapping[str, str]) -> str:
    """The file `Deployment` is imported from, by the instance's variables (`contract.manifest.instance_variables`):
    the emulator imports it, and `deployer check` reads it, so a package the one runs the other passes. A name
    without `.py` is a module's, `<name>.py`: the CLI's `--deployment_file serve` sets `serve`, and the CLI
    takes `deployment` and `deployment.py` alike for the default (`ubiops_cli` constants and
    `update_deployment_file`)."""
    name = next((variables[name] for name in DEPLOYMENT_FILE_VARIABLES if variables.get(name)), DEPLOYMENT_FILE)
    return name if name.endswith(".py") else f"{name}.py"


def backslash_hint(directory: Path) -> str:
    """What to add when a package unpacked into `directory` lacks its deployment file and names files
    with backslashes: a zip written with Windows' separators (`deployment_package\\deployment.py`)
    unpacks to files of those names, not into folders (Python's zipfile, as the emulator, on Linux)."""
    try:
        named = sorted(p.name for p in directory.iterdir() if "\\" in p.name)
    except OSError:
        return ""
    if not named:
        return ""
    shown = named[0] if named[0].isprintable() else repr(named[0])
    return (f" (the zip names its entries with backslashes, as {shown}, where a zip's folders are separated by '/': "
            "zip the package again with `python -m deployer package`, `ubiops.utils.zip_dir` or a tool that writes '/')")


FOUND_BELOW_LIMIT = 10_000
"""The most folders `missing_file_hint` looks through for the file: a package unpacks to 100 000 entries at most."""


def missing_file_hint(directory: Path, file_name: str) -> str:
    """What to add when a package in `directory` lacks its deployment file: a zip written with backslashes
    (`backslash_hint`), or where the file is below the package's top, the shallowest one: the zip of the
    folder above the package (`project/deployment_package/deployment.py`) unpacks to the package's folder
    inside its own."""
    hint = backslash_hint(directory)
    if hint:
        return hint
    found: list[Path] = []
    for count, (folder, _, files) in enumerate(os.walk(directory)):
        if count >= FOUND_BELOW_LIMIT:
            break
        if file_name in files and Path(folder) != directory:
            found.append(Path(folder, file_name).relative_to(directory))
    if not found:
        return ""
    shown = min(found, key=lambda path: (len(path.parts), path)).as_posix()
    shown = shown if shown.isprintable() else repr(shown)
    return f" (the package holds one at {shown}: the package is the folder that holds {file_name}; zip that folder, not the one above it)"


def init_arguments(signature: inspect.Signature) -> tuple[str, ...]:
    """The keyword arguments `Deployment(...)` is given: both with `**kwargs` or when it names both,
    otherwise whichever of `base_directory` and `context` it names."""
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) or set(INIT_ARGUMENTS) <= set(params):
        return INIT_ARGUMENTS
    return tuple(name for name in INIT_ARGUMENTS if name in params)


def passes_context(signature: inspect.Signature) -> bool:
    """`request(data, context)` only when the method takes exactly two parameters, one named `context`;
    otherwise `request(data)`, whatever else it declares. The same holds for `requests`."""
    return "context" in signature.parameters and len(signature.parameters) == 2


def call_problem(signature: inspect.Signature, method: str) -> str | None:
    """Why UbiOps' call of `method` (`__init__`, `request` or `requests`) would fail with this
    signature (a `TypeError` at run time), or None when it binds."""
    try:
        if method == "__init__":
            signature.bind(**{name: None for name in init_arguments(signature)})
        else:
            signature.bind(*([None, None] if passes_context(signature) else [None]))
    except TypeError as exc:
        passed = ", ".join(init_arguments(signature)) if method == "__init__" else (
            "data, context" if passes_context(signature) else "data")
        return f"UbiOps would call it with ({passed}), which fails: {exc}"
    return None


def request_method_problems(deployment: Any) -> list[str]:
    """Why UbiOps' calls of a built `Deployment`'s `request` or `requests` would fail: it has neither, or
    one's signature does not bind the call (`call_problem`). The rules `deployer check` reads from the
    source (`contract.package.check_deployment_class`), applied to the live object, which the emulator's
    instances warn of at their start: such a class starts, and every request to it fails."""
    methods = [(name, method) for name in REQUEST_METHODS if callable(method := getattr(deployment, name, None))]
    if not methods:
        return [NEITHER_REQUEST_METHOD]
    problems: list[str] = []
    for name, method in methods:
        try:
            signature = inspect.signature(method)
        except (TypeError, ValueError):  # a callable without a signature (a builtin's): only a call tells
            continue
        problem = call_problem(signature, name)
        if problem:
            problems.append(f"Deployment.{name}: {problem}")
    return problems


def signature_of_function(function: ast.FunctionDef | ast.AsyncFunctionDef) -> inspect.Signature:
    """The signature of a method read from source as `inspect` gives it for the method got from an
    instance: without `self` (or a classmethod's `cls`), a staticmethod's whole. So the static check
    applies the very rule the loader does. Other decorators are not read (the caller's to judge)."""
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    first_default = len(positional) - len(arguments.defaults)
    kind = inspect.Parameter
    params: list[inspect.Parameter] = []
    for index, argument in enumerate(positional):
        default: Any = None if index >= first_default else kind.empty
        params.append(kind(argument.arg, kind.POSITIONAL_ONLY if index < len(arguments.posonlyargs)
                           else kind.POSITIONAL_OR_KEYWORD, default=default))
    if arguments.vararg:
        params.append(kind(arguments.vararg.arg, kind.VAR_POSITIONAL))
    for argument, kw_default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        params.append(kind(argument.arg, kind.KEYWORD_ONLY, default=kind.empty if kw_default is None else None))
    if arguments.kwarg:
        params.append(kind(arguments.kwarg.arg, kind.VAR_KEYWORD))
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)
    return inspect.Signature(params[1:] if positional and not static else params)
