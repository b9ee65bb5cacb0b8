"""Load and call a deployment exactly as UbiOps does (its executable reference: `ubiops.utils.run_local`).

Runs inside an instance's worker process, never in the server.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from contract import calling
from emulator.runtime.protocol import Capabilities

GENERIC_ERROR = "An exception occurred in the request. See the logs for details."


class RequestError(Exception):
    """A request that failed inside the deployment; the message is what the caller sees."""


def import_deployment_module(package_dir: Path, file_name: str) -> ModuleType:
    """Put the package and its `libraries/` on `sys.path` (appended, as UbiOps) and import the file by path."""
    sys.path.append(str(package_dir))
    sys.path.append(str(package_dir / "libraries"))
    path = package_dir / file_name
    if not path.is_file():
        raise FileNotFoundError(f"the package has no {file_name}{calling.missing_file_hint(package_dir, file_name)}")
    spec = importlib.util.spec_from_file_location("Deployment", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file_name} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules["module.name"] = module
    spec.loader.exec_module(module)
    return module


def instantiate(module: ModuleType, package_dir: Path, context: dict[str, Any]) -> Any:
    """Call `Deployment(...)` with the arguments its `__init__` signature asks for."""
    cls = getattr(module, "Deployment", None)
    if not inspect.isclass(cls):
        raise AttributeError(f"the deployment file defines no class called 'Deployment'{_found_instead(module, cls)}")
    given = {"base_directory": str(package_dir), "context": context}
    return cls(**{name: given[name] for name in calling.init_arguments(inspect.signature(cls))})


def _found_instead(module: ModuleType, found: Any) -> str:
    """What the file has in place of the class, for the message: what `Deployment` is, or the classes it
    defines (`class deployment`, `class Model`): names are case-sensitive, and only `Deployment` is run."""
    if found is not None:
        return f" (Deployment is a {type(found).__name__}, not a class)"
    defined = [name for name, value in vars(module).items() if inspect.isclass(value) and value.__module__ == module.__name__]
    return f" (the classes it defines: {', '.join(defined)})" if defined else " (it defines no class)"


def start_warnings(deployment: Any) -> list[str]:
    """What an instance warns of once `Deployment` is built, in its log: a class that has no request method
    UbiOps can call (`calling.request_method_problems`, the rule `deployer check` refuses it by), so that
    every request to it fails. It starts all the same, as UbiOps' docs require only the class."""
    return [f"warning: {problem}; every request to this deployment fails"
            for problem in calling.request_method_problems(deployment)]


def dispatch(deployment: Any, data: Any, context: dict[str, Any], keep: Callable[[Any], Any] | None = None) -> Any:
    """Call `request` or `requests` by UbiOps' rule: a list goes to `requests` when defined.

    A single item sent to a deployment with only `requests` goes as a list of one, and the one
    result comes back unwrapped, so the caller gets what it sent: an object for an object (a list of
    another length fails the request: it answers no one input).
    `keep` takes each item's result as soon as the call that made it returns: a list sent to
    `request` calls it once per item, and each call may remove or rewrite the files the last one
    returned.
    """
    has_request = callable(getattr(deployment, "request", None))
    has_requests = callable(getattr(deployment, "requests", None))
    if isinstance(data, list) and has_requests:
        return _kept(_call(deployment.requests, data, context), keep)
    if has_request:
        if isinstance(data, list):
            return [_kept(_call(deployment.request, item, context), keep) for item in data]
        return _kept(_call(deployment.request, data, context), keep)
    if has_requests:
        results = _kept(_call(deployment.requests, [data], context), keep)
        if not isinstance(results, list):
            return results
        if len(results) != 1:
            raise RequestError(f"The input was one item, given to requests() as a list of one; requests() returned "
                               f"{len(results)} results")
        return results[0]
    raise RequestError("The deployment defines neither request() nor requests().")


def _kept(result: Any, keep: Callable[[Any], Any] | None) -> Any:
    """`keep` on a result, or on each of a list of them."""
    if keep is None:
        return result
    return [keep(item) for item in result] if isinstance(result, list) else keep(result)


@functools.cache
def _passes_context(method: Callable[..., Any]) -> bool:
    """`calling.passes_context` for a method, read once: `inspect.signature` costs ~10 µs, a third of
    what the worker does for a trivial request."""
    return calling.passes_context(inspect.signature(method))


def _call(method: Callable[..., Any], data: Any, context: dict[str, Any]) -> Any:
    try:
        if _passes_context(method):
            return method(data, context)
        return method(data)
    except Exception as exc:
        traceback.print_exc()
        public = getattr(exc, "public_error_message", None)
        raise RequestError(str(public) if public else GENERIC_ERROR) from None


def capabilities(deployment: Any) -> Capabilities:
    """What UbiOps reports as `has_request_method` / `has_requests_method`."""
    return Capabilities(
        has_request_method=callable(getattr(deployment, "request", None)),
        has_requests_method=callable(getattr(deployment, "requests", None)),
    )
