"""In process: a build's life against its version's, where the order of events can be held still."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import pytest

from contract.spec import Spec
from emulator.builds import Builder
from emulator.exceptions import NotFound
from emulator.metrics import Metrics
from emulator.registry import Registry
from emulator.runtime.manager import Runtime
from emulator.runtime.python_envs import EnvironmentBuilder
from emulator.settings import Settings
from emulator.state import Deployment, Project, Version


class HeldZip(io.BytesIO):
    """An upload whose bytes are read (in the builder's thread) only once `release` is set."""

    def __init__(self) -> None:
        super().__init__(b"PK\x05\x06" + bytes(18))
        self.reading, self.release = threading.Event(), threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        self.reading.set()
        assert self.release.wait(10)
        return super().read(size)


def test_a_version_deleted_while_its_upload_is_saved_gets_no_build(tmp_path):
    """Before, the build was registered only after the zip was saved: a delete meanwhile found none to
    cancel, and the build went on to start instances for the deleted version."""
    runtime = Runtime(EnvironmentBuilder())
    registry = Registry(Settings(Path("unused"), "p", "d", "v1"), runtime)
    registry.projects["p"] = Project("p", {"d": Deployment("d", "p", Spec(), Spec(), versions={"v1": Version("v1", None)})})
    builder = registry.builder = Builder(registry.settings, registry, runtime, tmp_path, Metrics())
    upload = HeldZip()

    async def race() -> None:
        uploading = asyncio.create_task(registry.upload_revision("p", "d", "v1", upload))
        assert await asyncio.to_thread(upload.reading.wait, 10)
        await registry.delete_version("p", "d", "v1")
        upload.release.set()
        with pytest.raises(NotFound, match="Version v1 was deleted while its package was uploaded"):
            await uploading
        assert not builder._tasks and not list((tmp_path / "revisions").iterdir())

    asyncio.run(race())
