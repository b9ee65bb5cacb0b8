"""In process: the registry holds the rules of the management calls itself, whoever calls it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from contract.spec import Spec
from emulator.exceptions import NotAllowed
from emulator.registry import Registry
from emulator.runtime.manager import Runtime
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.settings import Settings
from emulator.state import Deployment, Project, Version

NOT_NAMES = ["", "Bad", "a_b", "-a", "a-", "x" * 65, "v\udcff"]


@pytest.fixture
def registry() -> Registry:
    registry = Registry(Settings(Path("unused"), "p", "d", "v1"), Runtime(EnvironmentBuilder()))
    registry.projects["p"] = Project("p", {"d": Deployment("d", "p", Spec(), Spec(), versions={"v1": Version("v1", None)})})
    return registry


@pytest.mark.parametrize("name", NOT_NAMES)
def test_a_deployment_or_version_is_made_or_renamed_only_under_a_ubiops_name(registry, name):
    """Only the API's body models checked the names: a caller of the registry's own made any."""
    calls: list[tuple[str, Callable[[], Coroutine[Any, Any, object]]]] = [
        ("name", lambda: registry.create_deployment("p", name)),
        ("name", lambda: registry.update_deployment("p", "d", new_name=name)),
        ("version", lambda: registry.create_version("p", "d", name, {})),
        ("version", lambda: registry.update_version("p", "d", "v1", {}, new_name=name)),
    ]
    for field, call in calls:
        with pytest.raises(NotAllowed) as refused:
            asyncio.run(call())
        assert str(refused.value) == f"{field}: {name!r} is not a UbiOps name: lowercase letters, digits and dashes, " \
                                     "not starting or ending with a dash, at most 64 characters"
    assert list(registry.projects["p"].deployments) == ["d"]
    assert list(registry.projects["p"].deployments["d"].versions) == ["v1"]
