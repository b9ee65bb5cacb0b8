"""In process: the private copies of requests' input files (`emulator.work_folders`) — made, removed,
their folders reused only when the deployment left nothing in them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator.work_folders import SPARE_FOLDERS, SPARE_PREFIX, WorkFolders


@pytest.fixture
def stored(tmp_path) -> Path:
    path = tmp_path / "bucket" / "portrait.jpg"
    path.parent.mkdir()
    path.write_bytes(b"stored bytes")
    return path


@pytest.fixture
def folders(tmp_path) -> WorkFolders:
    return WorkFolders(tmp_path / "work")


def entries(folders: WorkFolders) -> list[str]:
    return sorted(p.name for p in folders.root.iterdir())


def test_a_copy_is_private_and_goes_when_the_request_ends(folders, stored):
    copies = folders.plan("request-1")
    target = copies.add(stored)
    assert target == folders.root / "request-1" / "0" / "portrait.jpg"
    assert copies.size == len(b"stored bytes")
    folders.copy(copies)
    target.write_bytes(b"changed by the deployment")
    assert stored.read_bytes() == b"stored bytes"
    folders.remove(copies)
    assert not target.exists()
    assert [name for name in entries(folders) if not name.startswith(SPARE_PREFIX)] == []


def test_the_next_request_gets_an_empty_folder_of_its_own_name(folders, stored):
    first = folders.plan("request-1")
    first_target = first.add(stored)
    folders.copy(first)
    folders.remove(first)
    spares = entries(folders)
    assert len(spares) == 1 and spares[0].startswith(SPARE_PREFIX), "the emptied folder is kept"

    second = folders.plan("request-2")
    second_target = second.add(stored)
    folders.copy(second)
    assert entries(folders) == ["request-2"], "made from the spare"
    assert not first_target.exists(), "a path the first request held does not lead to the second's file"
    assert os.listdir(second_target.parent) == ["portrait.jpg"]
    folders.remove(second)


@pytest.mark.parametrize("leftover", ["file", "folder", "other numbered folder", "link"])
def test_a_folder_the_deployment_left_something_in_is_removed_not_reused(folders, stored, tmp_path, leftover):
    copies = folders.plan("request-1")
    target = copies.add(stored)
    folders.copy(copies)
    if leftover == "file":
        (target.parent / "scratch.txt").write_text("mine")
    elif leftover == "folder":
        (copies.folder / "results").mkdir()
    elif leftover == "other numbered folder":  # a file folder of a request with more files
        (copies.folder / "1").mkdir()
    else:
        outside = tmp_path / "outside"
        outside.mkdir()
        target.unlink()
        target.parent.rmdir()
        target.parent.symlink_to(outside)
    folders.remove(copies)
    assert entries(folders) == []
    assert stored.read_bytes() == b"stored bytes"


def test_a_request_without_files_touches_nothing(folders):
    copies = folders.plan("request-1")
    folders.copy(copies)
    folders.remove(copies)
    assert entries(folders) == []


def test_spare_folders_are_capped(folders, stored):
    plans = [folders.plan(f"request-{n}") for n in range(SPARE_FOLDERS + 3)]
    for copies in plans:
        copies.add(stored)
        folders.copy(copies)
    for copies in plans:
        folders.remove(copies)
    assert len(entries(folders)) == SPARE_FOLDERS
    assert all(name.startswith(SPARE_PREFIX) for name in entries(folders))


def test_folders_left_by_an_earlier_run_are_removed_at_start(tmp_path):
    WorkFolders(tmp_path / "work")
    (tmp_path / "work" / "request-from-before").mkdir()
    assert entries(WorkFolders(tmp_path / "work")) == []
