"""In-process tests of the runtime: pools and the runtime driven from the test's own event loop,
running the small packages of `tests/packages/` in real worker processes (no HTTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from submitting import PACKAGES

from emulator.environments import OWN_ENVIRONMENT
from emulator.runtime.instance import START_TIMEOUT_SECONDS, Launch
from emulator.runtime.pool import NO_EVENTS, InstanceEvents, InstancePool
from emulator.runtime.protocol import Job, RequestContext
from emulator.runtime.python_envs import EnvironmentBuilder, PythonEnvironment


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pools() -> AsyncIterator[Callable[..., InstancePool]]:
    """Make unstarted pools of a package under tests/packages; all are closed after the test."""
    made: list[InstancePool] = []

    def make(package: str, count: int = 1, events: InstanceEvents = NO_EVENTS, memory_limit_mb: int | None = None,
             environment: dict[str, str] | None = None, start_timeout_seconds: float = START_TIMEOUT_SECONDS,
             environments: EnvironmentBuilder | None = None) -> InstancePool:
        launch = Launch(deployment="tests", version=package, package_dir=PACKAGES / package, deployment_file="deployment.py",
                        environment=environment or {}, init_context={}, memory_limit_mb=memory_limit_mb,
                        start_timeout_seconds=start_timeout_seconds, project="runtime-tests",
                        python_environment=PythonEnvironment(OWN_ENVIRONMENT, PACKAGES / package))
        made.append(InstancePool(launch, count, environments or EnvironmentBuilder(), events))
        return made[-1]

    yield make
    await asyncio.gather(*(pool.close() for pool in made))


@pytest.fixture
def job(tmp_path: Path) -> Callable[..., Job]:
    """A job for `data`, its output files kept under the test's tmp_path."""

    def make(data: object, request_id: str = "request") -> Job:
        return Job(data=data, context=RequestContext(id=request_id, request_mode="express", user_id="tester"),
                   output_dir=str(tmp_path / request_id))

    return make
