"""Hostile or broken packages, given to `--package` and uploaded as revisions: each is refused with
its reason, nothing lands outside the target folder, and the emulator keeps serving."""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, ROOT, free_port, start_emulator, wait_for_log, zip_bytes

DEPLOYMENT_PY = "class Deployment:\n    def request(self, data):\n        return data\n"
ABSOLUTE_TARGET = Path(tempfile.gettempdir()) / f"evil-{uuid.uuid4().hex}"
"""Where a zip entry with an absolute path would land: a name no other program uses."""


def with_declared_sizes(data: bytes, size: int, local_too: bool = False) -> bytes:
    """The zip with every entry's uncompressed size rewritten: a bomb's declared shape, or a lie."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x01\x02", 24),) + (((b"PK\x03\x04", 22),) if local_too else ()):
        start = 0
        while (found := patched.find(signature, start)) >= 0:
            patched[found + offset: found + offset + 4] = struct.pack("<I", size)
            start = found + 4
    return bytes(patched)


def bomb() -> bytes:
    return with_declared_sizes(zip_bytes({f"deployment_package/part{n}.bin": b"\0" * 1024 for n in range(2)}
                                         | {"deployment_package/deployment.py": DEPLOYMENT_PY.encode()}), 3 * 1024**3)


def lying_sizes() -> bytes:
    return with_declared_sizes(zip_bytes({"deployment_package/deployment.py": DEPLOYMENT_PY.encode() * 200}), 10,
                               local_too=True)


def encrypted() -> bytes:
    """A zip whose entry is marked as having a password, as `zip -P` marks it: unpacking it raised
    RuntimeError, which left the build `building` for ever."""
    patched = bytearray(zip_bytes({"deployment_package/deployment.py": DEPLOYMENT_PY.encode()}))
    for signature, offset in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):  # the general-purpose flags
        found = patched.find(signature)
        patched[found + offset] |= 0x1
    return bytes(patched)


def not_utf8(*headers: bytes) -> bytes:
    """A zip whose entry is flagged as named in UTF-8 but, in the `headers` given (central directory,
    local), has a name that is not: the emulator failed with UnicodeDecodeError, as if at fault itself."""
    patched = bytearray(zip_bytes({"deployment_package/déployment.py": DEPLOYMENT_PY.encode()}))
    for signature in headers:
        found = patched.find("é".encode(), patched.find(signature))
        patched[found:found + 2] = b"\xff\xfe"
    return bytes(patched)


CORPUS = [
    ("zip-slip", lambda: zip_bytes({"deployment_package/deployment.py": b"", "deployment_package/../../evil.py": b"x"}),
     "points outside the package (..)"),
    ("absolute", lambda: zip_bytes({f"{ABSOLUTE_TARGET}/deployment.py": b""}), "has an absolute path"),
    ("symlink", lambda: zip_bytes({"deployment_package/deployment.py": b""}, symlink="deployment_package/link"),
     "is a symbolic link"),
    ("bomb", bomb, "the zip unpacks to more than 4 GiB"),
    ("lying sizes", lying_sizes, "is corrupt"),
    ("encrypted", encrypted, "is encrypted; a package zip cannot have a password"),
    ("file and folder", lambda: zip_bytes({"deployment_package/deployment.py": DEPLOYMENT_PY.encode(),
                                           "deployment_package/data": b"a file", "deployment_package/data/x.txt": b"x"}),
     "the zip holds 'data' both as a file and as a folder"),
    ("name not utf-8", lambda: not_utf8(b"PK\x01\x02"),
     "the zip entry 'deployment_package/d\ufffd\ufffdployment.py' is flagged as named in UTF-8, but its name is not UTF-8"),
    ("local name not utf-8", lambda: not_utf8(b"PK\x03\x04"), "is flagged as named in UTF-8, but its name is not UTF-8"),
    ("no deployment.py", lambda: zip_bytes({"deployment_package/model.py": b"x = 1\n"}), "no deployment.py"),
    ("syntax error", lambda: zip_bytes({"deployment_package/deployment.py": b"class Deployment(:\n"}), "SyntaxError"),
]


@pytest.mark.parametrize("name, make, message", CORPUS, ids=[c[0] for c in CORPUS])
def test_uploaded_revision_fails_its_build_with_the_reason(emulators, tmp_path, name, make, message):
    emulator = emulators(ROOT / "tests" / "packages" / "plain", "--instances", "1")
    api = emulator.sdk()
    deployment = "corpus-" + name.replace(" ", "-").replace(".", "")
    api.deployments_create(PROJECT, {"name": deployment, "input_type": "plain", "output_type": "plain"})
    api.deployment_versions_create(PROJECT, deployment, {"version": "v1"})
    archive = tmp_path / "package.zip"
    archive.write_bytes(make())
    revision = api.revisions_file_upload(PROJECT, deployment, "v1", file=str(archive)).revision
    deadline = time.monotonic() + 60
    while (found := api.revisions_get(PROJECT, deployment, revision, "v1")).status not in ("success", "failed"):
        assert time.monotonic() < deadline, found.status
        time.sleep(0.1)
    assert found.status == "failed" and message in found.error_message, found.error_message
    assert not list(emulator.data_dir.parent.glob("**/evil.py")) and not ABSOLUTE_TARGET.exists()
    assert api.service_status().status == "ok"


UNSAFE = CORPUS[:-2]
UNSTARTABLE = CORPUS[-2:]


@pytest.mark.parametrize("name, make, message", UNSAFE, ids=[c[0] for c in UNSAFE])
def test_unsafe_package_zip_is_refused_at_start(tmp_path, name, make, message):
    archive = tmp_path / "package.zip"
    archive.write_bytes(make())
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", str(archive), "--port", str(free_port()),
                          "--data-dir", str(tmp_path / "data")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert message in run.stderr.strip().splitlines()[-1]
    assert not list(tmp_path.glob("**/evil.py"))


@pytest.mark.parametrize("name, make, message", UNSTARTABLE, ids=[c[0] for c in UNSTARTABLE])
def test_unstartable_package_zip_makes_the_version_unavailable_with_the_reason(tmp_path, name, make, message):
    archive = tmp_path / "package.zip"
    archive.write_bytes(make())
    emulator = start_emulator(archive, tmp_path)
    try:
        wait_for_log(emulator, "cannot start: ")
        with pytest.raises(ubiops.ApiException) as error:
            emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data="x")
        assert error.value.status == 503 and message in error.value.body
    finally:
        emulator.stop()
