"""Building a version's environment, in process: a build that hangs (a package index that accepts
the connection and never answers) is stopped, as a failed build, so nothing waits for it forever."""

from __future__ import annotations

import socket

import pytest

from emulator.environments import OWN_ENVIRONMENT
from emulator.runtime.python_envs import EnvironmentBuilder, EnvironmentBuildError, PythonEnvironment

pytestmark = pytest.mark.anyio


async def test_a_build_that_hangs_is_stopped_and_fails_saying_so(tmp_path):
    silent = socket.create_server(("127.0.0.1", 0))  # listens, never answers
    port = silent.getsockname()[1]
    package = tmp_path / "package"
    package.mkdir()
    (package / "requirements.txt").write_text(f"--index-url http://127.0.0.1:{port}/simple/\nhumanize==4.12.1\n")
    builder = EnvironmentBuilder(tmp_path / "environments", build_seconds=3)
    with pytest.raises(EnvironmentBuildError, match="installing the environment did not finish within 3 s"):
        await builder.prepare(PythonEnvironment(OWN_ENVIRONMENT, package), {})
    assert not [p for p in (tmp_path / "environments").iterdir() if p.is_dir()], "the half-built environment is removed"
    silent.close()
