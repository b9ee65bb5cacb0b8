"""A data folder that cannot take what the emulator writes, as on a full disk: the emulator's own
RLIMIT_FSIZE lowered from outside while it runs (Python ignores SIGXFSZ, so a write past the limit
fails with EFBIG, after writing what fits), which any user can do to their own process, without a
file system of their own to fill. Its log file is held to the limit too: lines logged meanwhile
may be lost."""

from __future__ import annotations

import contextlib
import json
import resource
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, Emulator, start_emulator, wait_for_log, zip_bytes

NOT_MADE = "The change was not made: the emulator could not write "
FOO = ubiops.EnvironmentVariableCreate(name="FOO", value="bar", secret=False)


@contextlib.contextmanager
def files_limited(emulator: Emulator, size: int) -> Iterator[None]:
    """No file of the emulator's process grows past `size` bytes while the block runs."""
    assert emulator.process is not None
    pid = emulator.process.pid
    before = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, before[1]))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, before)


def refused(call: Callable[[], Any]) -> tuple[int, str]:
    """The status and error message of a call that fails."""
    with pytest.raises(ubiops.ApiException) as error:
        call()
    return error.value.status, json.loads(error.value.body)["error"]


def state(api: ubiops.CoreApi) -> tuple[list[Any], ...]:
    """The project's variables, deployments and buckets, and doomed's versions and v1's revisions."""
    return ([v.name for v in api.project_environment_variables_list(PROJECT)],
            [d.name for d in api.deployments_list(PROJECT)], [b.name for b in api.buckets_list(PROJECT)],
            [(v.version, v.request_retention_mode) for v in api.deployment_versions_list(PROJECT, "doomed")],
            [r.id for r in api.revisions_list(PROJECT, "doomed", "v1")])


def test_a_management_change_the_data_folder_cannot_take_is_not_made(tmp_path):
    """Before, the change was made in memory, then written: the write failed with a 500, the change stayed
    live (the variable was listed), the same call again was a 409 "already exists", and the next start
    had lost it (a bucket's settings too, though its folder stayed). Now each is a 507 saying so, nothing
    changes, and the same calls succeed once there is room, and are there after a restart."""
    data = tmp_path / "data"
    package = tmp_path / "package.zip"
    package.write_bytes(zip_bytes({"deployment_package/deployment.py": b"class Deployment:\n    pass\n"}))
    emulator = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = emulator.sdk()
        api.deployments_create(PROJECT, {"name": "doomed", "input_type": "plain", "output_type": "plain"})
        api.deployment_versions_create(PROJECT, "doomed", ubiops.DeploymentVersionCreate(version="v1"))
        api.buckets_create(PROJECT, {"name": "doomed"})
        before = state(api)
        calls: list[Callable[[], Any]] = [
            lambda: api.project_environment_variables_create(PROJECT, FOO),
            lambda: api.deployments_delete(PROJECT, "doomed"),
            lambda: api.deployment_versions_update(PROJECT, "doomed", "v1", ubiops.DeploymentVersionUpdate(
                version="renamed", request_retention_mode="none")),
            lambda: api.revisions_file_upload(PROJECT, "doomed", "v1", file=str(package)),
            lambda: api.buckets_create(PROJECT, {"name": "new"}),
            lambda: api.buckets_delete(PROJECT, "doomed"),
        ]
        with files_limited(emulator, 1):
            answers = [refused(call) for call in calls]
        for status, message in answers:
            assert status == 507 and message.startswith(NOT_MADE) and message.endswith(
                "(File too large); make room in its data folder, or make it writable, and try again"), message
        assert state(api) == before
        assert not list((data / "revisions").glob("*.zip")), "the upload's zip is not left behind"
        assert api.project_environment_variables_create(PROJECT, FOO).name == "FOO", "not a 409"
        api.buckets_create(PROJECT, {"name": "new"})
        api.buckets_delete(PROJECT, "doomed")
        api.deployments_delete(PROJECT, "doomed")
    finally:
        emulator.stop()
    again = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = again.sdk()
        assert [v.name for v in api.project_environment_variables_list(PROJECT)] == ["FOO"]
        assert [d.name for d in api.deployments_list(PROJECT)] == [DEPLOYMENT]
        assert sorted(b.name for b in api.buckets_list(PROJECT)) == ["default", "new"]
    finally:
        again.stop()


def test_a_request_that_ends_while_the_data_folder_is_full_is_answered_and_kept(tmp_path: Path):
    """Before, a request whose line the requests' journal could not take was answered 500, without its id,
    yet kept as `completed`; and a line written in part (`os.write` writes what fits) stayed, joined to
    the next line, which the next start could not read: that request, answered, was lost. Now each is
    answered, a line is appended whole or not at all, and what the journal holds is read back."""
    data = tmp_path / "data"
    emulator = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = emulator.sdk()
        with files_limited(emulator, 16 * 1024):  # a journal line of a 48 kB input does not fit, a short one does
            large = [api.deployment_requests_create(PROJECT, DEPLOYMENT, "x" * 48_000) for _ in range(2)]
            small = api.deployment_requests_create(PROJECT, DEPLOYMENT, "small")
            journal = (data / "requests.sqlite3.answered").read_bytes()
        assert [(answer.status, answer.result) for answer in large] == [("completed", "X" * 48_000)] * 2
        assert all(answer.id for answer in large)
        assert journal.count(b"\n") == 1 and journal.endswith(b"\n") and small.id.encode() in journal, journal[:200]
        wait_for_log(emulator, f"the requests' journal could not be written ([Errno 27] File too large): request "
                               f"{large[0].id} and those after it")
        assert emulator.process is not None
        emulator.process.kill()  # before the history could be written: the large rows did not fit either
        emulator.process.wait()
    finally:
        emulator.stop()
    again = start_emulator("plain", tmp_path, data_dir=data)
    try:
        api = again.sdk()
        assert api.deployment_requests_get(PROJECT, DEPLOYMENT, small.id).result == "SMALL"
        for answer in large:  # in memory only, as the log said: an emulator killed meanwhile loses them
            assert refused(lambda request_id=answer.id: api.deployment_requests_get(PROJECT, DEPLOYMENT, request_id))[0] == 404
    finally:
        again.stop()
