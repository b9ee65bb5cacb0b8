"""The README's count of the SDK operations the emulator serves, measured: every operation of the
`ubiops` SDK's own API classes (its method, path and name, as the SDK sends them) against the paths
and methods of the emulator's OpenAPI document."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import httpx
import ubiops.api
from harness import ROOT, start_emulator

CALL = re.compile(r'url = \(?\s*"([^"]+)".*?call_api\(\s*url,\s*"(\w+)"', re.S)
HTTP_INFO = "_with_http_info"
README_COUNT = re.compile(r"\*\*(\d+) of the (\d+) operations\*\*")


def sdk_operations() -> dict[str, tuple[str, str]]:
    """Each SDK operation's name: its HTTP method and path template, read from the SDK's API modules."""
    operations = {}
    for module in pkgutil.iter_modules(ubiops.api.__path__):
        for _, api in inspect.getmembers(importlib.import_module(f"ubiops.api.{module.name}"), inspect.isclass):
            for name, method in inspect.getmembers(api, inspect.isfunction):
                if name.endswith(HTTP_INFO) and (call := CALL.search(inspect.getsource(method))):
                    operations[name.removesuffix(HTTP_INFO)] = (call[2], _template(call[1]))
    return operations


def _template(path: str) -> str:
    """A path with its parameters unnamed, so `{name}` and `{deployment_name}` compare equal."""
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def test_the_readme_states_how_many_sdk_operations_are_served(tmp_path):
    emulator = start_emulator("plain", tmp_path)
    try:
        document = httpx.get(f"{emulator.url}/openapi.json").json()
    finally:
        emulator.stop()
    served = {(method.upper(), _template(path.removeprefix("/v2.1")))
              for path, methods in document["paths"].items() for method in methods}
    operations = sdk_operations()
    assert len(operations) == 238, "the ubiops 4.15 SDK's operations, all found"
    count = sum(operation in served for operation in operations.values())
    assert README_COUNT.search((ROOT / "README.md").read_text()).groups() == (str(count), str(len(operations)))
