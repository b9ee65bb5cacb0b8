"""Each version runs in its own Python environment, built from its package's requirements.txt as
UbiOps builds it: what the package asks for is there, what only the emulator has is not, and a
requirement that cannot be installed fails the build, not the first request."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time

import httpx
import pytest
import ubiops
from harness import DEPLOYMENT, PROJECT, ROOT, eventually, start_emulator, wait_for_log, zip_bytes

from contract.apt import check_apt_packages, has_package_lists

PROBE = '''
import importlib, sys

class Deployment:
    def request(self, data):
        try:
            module = importlib.import_module(data)
        except ImportError as exc:
            return "cannot import %s: %s" % (data, exc)
        return "%s %s on Python %d.%d at %s" % (data, getattr(module, "__version__", "-"), sys.version_info[0],
                                                sys.version_info[1], sys.executable)
'''
HUMANIZE = "humanize==4.12.1\n"
MISSING = "no-such-package-for-the-emulator-tests==1.0\n"


def probe_package(folder, requirements: str | None = None, code: str = PROBE, manifest: str | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deployment.py").write_text(code)
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    if manifest is not None:
        (folder / "ubiops.yaml").write_text(manifest)
    return folder


def ask(emulator, module: str) -> dict:
    response = httpx.post(emulator.requests_url(), content=module, headers={"Content-Type": "text/plain"}, timeout=120)
    return response.json()


def refusal(emulator) -> str:
    """Why the served version refuses requests, once it has found it cannot start."""
    wait_for_log(emulator, "cannot start: ", seconds=60)
    response = httpx.post(emulator.requests_url(), content="sys", headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 503, response.text
    return response.json()["error"]


def answer(emulator, module: str) -> str:
    reply = ask(emulator, module)
    assert reply["status"] == "completed", reply
    return reply["result"]


def test_the_deployment_sees_its_requirements_and_not_the_emulators_packages(tmp_path):
    emulator = start_emulator(probe_package(tmp_path / "package", HUMANIZE), tmp_path)
    try:
        found = answer(emulator, "humanize")
        assert found.startswith("humanize 4.12.1 on Python 3.11 at ")
        assert not found.endswith(sys.executable), "runs in the version's environment, not the emulator's"
        for only_the_emulators in ("fastapi", "ubiops", "emulator", "contract"):
            assert answer(emulator, only_the_emulators).startswith(f"cannot import {only_the_emulators}: No module named")
        assert "building environment python3-11" in emulator.log() or "from the cache" in emulator.log()
    finally:
        emulator.stop()


def test_own_python_runs_the_package_in_the_emulators_python_as_installed(tmp_path):
    emulator = start_emulator(probe_package(tmp_path / "package", HUMANIZE), tmp_path, "--own-python")
    try:
        assert answer(emulator, "fastapi").endswith(f"at {sys.executable}")
        assert answer(emulator, "humanize").startswith("cannot import humanize"), "nothing is installed"
    finally:
        emulator.stop()


def test_an_import_only_the_emulator_has_fails_the_deployment_as_on_ubiops(tmp_path):
    code = "import fastapi\n" + PROBE
    emulator = start_emulator(probe_package(tmp_path / "package", code=code), tmp_path)
    try:
        assert "the deployment failed to start (ModuleNotFoundError: No module named 'fastapi')" in refusal(emulator)
    finally:
        emulator.stop()


def build(api: ubiops.CoreApi, tmp_path, requirements: str, code: str = PROBE, version: str = "v1") -> str:
    """Upload `code` (the probe) with `requirements` as a new revision of `version` (the served one); its id."""
    archive = tmp_path / f"revision-{time.monotonic_ns()}.zip"
    archive.write_bytes(zip_bytes({"deployment_package/deployment.py": code.encode(),
                                   "deployment_package/requirements.txt": requirements.encode()}))
    return api.revisions_file_upload(PROJECT, DEPLOYMENT, version, file=str(archive)).revision


UNINSTALLABLE = "its environment could not be built: installing requirements.txt failed: No solution found when resolving dependencies; Because "
RAISING = PROBE.replace("class Deployment:", "class Deployment:\n    def __init__(self):\n        print('loading the model')\n"
                                             "        raise RuntimeError('no model file here')\n")
UNRESOLVED = ("error: No solution found when resolving dependencies",)


@pytest.mark.parametrize("requirements, code, failure, reason, streamed", [
    (MISSING, PROBE, UNINSTALLABLE, "no-such-package-for-the-emulator-tests was not found in the package registry",
     UNRESOLVED),
    ("", RAISING, "the deployment failed to start (RuntimeError: no model file here)", "no model file here",
     ("loading the model", "Traceback (most recent call last):", "RuntimeError: no model file here")),
], ids=["missing", "init-raises"])
def test_a_build_that_fails_says_why_and_the_previous_revision_serves(tmp_path, capsys, monkeypatch, requirements, code,
                                                                      failure, reason, streamed):
    """The revision's error_message is its own failure: it said the version "is unavailable" while the
    version went on serving its previous revision. The SDK's log stream of the build shows the
    installer's output, or what `__init__` printed and its traceback: only the emulator's lines about
    the build carried the revision's id, which the stream asks for."""
    # The SDK streams 20 s past the build's end for lines stored late; the emulator stores a build's lines
    # before its status ends, so 5 s is plenty here (each case took ~40 s).
    monkeypatch.setattr(ubiops.utils.wait_for, "LOGS_COMPLETION_SECONDS", 5)
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        revision = build(api, tmp_path, requirements, code)
        with pytest.raises(Exception, match="failed"):
            ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "v1", revision_id=revision,
                                                     timeout=120, stream_logs=True)
        printed = capsys.readouterr().out
        assert f"building {DEPLOYMENT}/v1 revision {revision}" in printed
        for line in streamed:
            assert line in printed, printed
        failed = api.revisions_get(PROJECT, DEPLOYMENT, revision, "v1")
        assert failed.status == "failed"
        assert failed.error_message.startswith(failure) and reason in failed.error_message, failed.error_message
        assert reason in emulator.log(), "the installer's or the deployment's whole output is in the log"
        lines = api.logs_list(PROJECT, query=f'| deployment_version="v1" |= "{reason}"')
        assert lines and all(line.metadata.deployment_name == DEPLOYMENT for line in lines), "and in logs_list"
        assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "available"
        assert answer(emulator, "humanize").startswith("cannot import humanize"), "the previous revision still serves"
        assert answer(emulator, "sys").startswith("sys - on Python 3.11")
    finally:
        emulator.stop()


def test_a_build_installs_as_building_then_starts_as_deploying(tmp_path):
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        slow_init = "import time\n" + PROBE.replace("class Deployment:", "class Deployment:\n    def __init__(self):\n"
                                                                            "        time.sleep(2)\n")
        revision = build(api, tmp_path, HUMANIZE, slow_init)
        seen = []
        deadline = time.monotonic() + 120
        while (status := api.revisions_get(PROJECT, DEPLOYMENT, revision, "v1").status) != "success":
            assert status in ("queued", "building", "deploying") and time.monotonic() < deadline, status
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.05)
        assert seen[-1] == "deploying" and set(seen) <= {"queued", "building", "deploying"}, seen
        assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "available"
    finally:
        emulator.stop()


@pytest.mark.parametrize("environment", ["python3-9", "python3-12", "python3-13"])
def test_the_base_environment_names_the_python_that_runs_the_version(tmp_path, environment):
    emulator = start_emulator(probe_package(tmp_path / "package", HUMANIZE), tmp_path, "--environment", environment)
    try:
        minor = environment.removeprefix("python3-")
        assert answer(emulator, "humanize").startswith(f"humanize 4.12.1 on Python 3.{minor} at ")
        version = emulator.sdk().deployment_versions_get(PROJECT, DEPLOYMENT, "v1")
        assert version.environment_name == environment
    finally:
        emulator.stop()


def create_built(api: ubiops.CoreApi) -> None:
    """Create the version `built`, on Python 3.11 (the rebuilds' tests move it to others)."""
    api.deployment_versions_create(PROJECT, DEPLOYMENT, ubiops.DeploymentVersionCreate(version="built", environment="python3-11"))


def built(api: ubiops.CoreApi, tmp_path, code: str = PROBE) -> None:
    """Build `code` (the probe) as a new revision of the version `built`."""
    revision = build(api, tmp_path, "", code, version="built")
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "built", revision_id=revision,
                                             timeout=120, quiet=True)


def python(api: ubiops.CoreApi) -> str:
    """The Python the instances of the version `built` run, once they have (re)started."""
    return api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "built", "sys").result.split(" at ")[0]


def wait(api: ubiops.CoreApi) -> None:
    """`ubiops versions wait` for the version `built`: its latest revision's build, then the version."""
    ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "built", timeout=120, quiet=True)


def test_a_new_environment_builds_the_active_revision_again_and_it_runs_there(tmp_path):
    """A version's new environment rebuilt its revision, as UbiOps does: the update answered, the version
    said python3-12 and a wait ended at once, but its instances went on running Python 3.11 until a new
    upload; `revisions_rebuild` was a 501."""
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        create_built(api)
        built(api, tmp_path)
        assert python(api) == "sys - on Python 3.11"
        updated = api.deployment_versions_update(PROJECT, DEPLOYMENT, "built",
                                                 ubiops.DeploymentVersionUpdate(environment="python3-12"))
        assert updated.environment_name == "python3-12"
        (revision,) = api.revisions_list(PROJECT, DEPLOYMENT, "built")
        assert revision.status in ("queued", "building", "deploying"), "built again, under the same id"
        wait(api)
        assert python(api) == "sys - on Python 3.12"
        assert [(r.id, r.status) for r in api.revisions_list(PROJECT, DEPLOYMENT, "built")] == [(revision.id, "success")]

        rebuilt = api.revisions_rebuild(PROJECT, DEPLOYMENT, revision.id, "built", {})
        assert rebuilt.id == revision.id and rebuilt.status in ("queued", "building", "deploying")
        wait(api)
        assert api.revisions_get(PROJECT, DEPLOYMENT, revision.id, "built").status == "success"
        assert python(api) == "sys - on Python 3.12"
    finally:
        emulator.stop()
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path, data_dir=emulator.data_dir)
    try:
        assert python(emulator.sdk()) == "sys - on Python 3.12", "restarted with the emulator, on the Python it was rebuilt on"
    finally:
        emulator.stop()


def test_a_wait_after_a_new_environment_follows_the_rebuild_not_a_failed_upload_before_it(tmp_path):
    """The rebuild kept its revision's id while `latest_revision`, which `ubiops versions wait` and
    `wait_for_deployment_version` follow, named the newest upload: after a failed one, the wait for a new
    environment ended at once with that upload's error, while the rebuild ran and then succeeded."""
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        create_built(api)
        built(api, tmp_path)
        (active,) = api.revisions_list(PROJECT, DEPLOYMENT, "built")
        broken = build(api, tmp_path, "", RAISING, version="built")
        with pytest.raises(ubiops.utils.exceptions.StatusError, match="no model file here"):
            wait(api)
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "built", ubiops.DeploymentVersionUpdate(environment="python3-12"))
        wait(api)
        assert python(api) == "sys - on Python 3.12"
        version = api.deployment_versions_get(PROJECT, DEPLOYMENT, "built")
        assert (version.active_revision, version.latest_revision) == (active.id, active.id)
        assert version.last_file_upload == api.revisions_get(PROJECT, DEPLOYMENT, broken, "built").creation_date
    finally:
        emulator.stop()
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path, data_dir=emulator.data_dir)
    try:
        wait(emulator.sdk())  # kept across a restart
    finally:
        emulator.stop()


GATED = PROBE.replace("class Deployment:", """import os, time

class Deployment:
    def __init__(self):
        if sys.version_info[:2] != (3, 11):  # held until the test opens the gate, then failed if it says so
            while not os.path.exists(GATE):
                time.sleep(0.05)
            if open(GATE).read() == "fail":
                raise RuntimeError("refused on this Python")
""")


def test_a_rebuild_serves_the_old_build_meanwhile_and_the_latest_change_wins_across_a_restart(tmp_path):
    """While the version's revision is built again, its previous build answers; a failed rebuild leaves
    that one serving, as a failed upload leaves the previous revision; a second change cancels a rebuild
    still running; a rebuild the emulator's stop cut off is done again at the next start."""
    gate = tmp_path / "gate"
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        create_built(api)
        built(api, tmp_path, GATED.replace("GATE", repr(str(gate))))
        (revision,) = api.revisions_list(PROJECT, DEPLOYMENT, "built")

        def deploying() -> bool:
            return api.revisions_get(PROJECT, DEPLOYMENT, revision.id, "built").status == "deploying"

        def to(environment: str) -> None:
            api.deployment_versions_update(PROJECT, DEPLOYMENT, "built",
                                           ubiops.DeploymentVersionUpdate(environment=environment))

        to("python3-12")
        eventually(deploying, "the rebuild starts its instance, held at the gate")
        assert python(api) == "sys - on Python 3.11", "the previous build serves meanwhile"
        to("python3-11")
        wait(api)
        assert python(api) == "sys - on Python 3.11"

        gate.write_text("fail")
        to("python3-12")
        with pytest.raises(ubiops.utils.exceptions.StatusError, match="refused on this Python"):
            wait(api)
        assert python(api) == "sys - on Python 3.11", "a failed rebuild leaves the previous build serving"

        gate.unlink()
        to("python3-13")
        eventually(deploying, "the rebuild starts its instance, held at the gate")
    finally:
        emulator.stop()
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path, data_dir=emulator.data_dir)
    try:
        api = emulator.sdk()
        assert api.revisions_get(PROJECT, DEPLOYMENT, revision.id, "built").status in ("queued", "building", "deploying")
        assert python(api) == "sys - on Python 3.11", "its last build serves while the rebuild runs again"
        gate.write_text("open")
        wait(api)
        assert python(api) == "sys - on Python 3.13", "built again at the start, in the environment the version names"
    finally:
        emulator.stop()


def test_a_failed_rebuild_of_the_active_revision_leaves_its_previous_build_serving_across_a_restart(tmp_path):
    """The active revision's failed (or running) rebuild counted as no build: an older revision's rebuild
    then replaced it, and at the next start the version served nothing ("build failed") though its
    previous build's zip and environment were kept. A cancelled rebuild's unpacked folder stayed until then."""
    gate = tmp_path / "gate"
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        create_built(api)
        built(api, tmp_path, PROBE.replace('"%s %s on Python', '"older %s %s on Python'))
        built(api, tmp_path, GATED.replace("GATE", repr(str(gate))))
        older, active = (r.id for r in sorted(api.revisions_list(PROJECT, DEPLOYMENT, "built"), key=lambda r: r.creation_date))

        def status() -> str:
            return api.revisions_get(PROJECT, DEPLOYMENT, active, "built").status

        def to(environment: str) -> None:
            api.deployment_versions_update(PROJECT, DEPLOYMENT, "built",
                                           ubiops.DeploymentVersionUpdate(environment=environment))

        builds = emulator.data_dir / "builds"
        to("python3-12")
        eventually(lambda: status() == "deploying", "the rebuild starts its instance, held at the gate")
        to("python3-13")  # cancels the rebuild in python3-12
        eventually(lambda: status() == "deploying", "the second rebuild starts its instance, held at the gate")
        eventually(lambda: len(list(builds.glob(f"{active}.*"))) == 1, "the cancelled rebuild's folder goes")
        gate.write_text("fail")
        with pytest.raises(ubiops.utils.exceptions.StatusError, match="refused on this Python"):
            wait(api)
        eventually(lambda: not list(builds.glob(f"{active}.*")), "the failed rebuild's folder goes")

        api.revisions_rebuild(PROJECT, DEPLOYMENT, older, "built", {})
        ubiops.utils.wait_for_deployment_version(api.api_client, PROJECT, DEPLOYMENT, "built", revision_id=older,
                                                 timeout=120, quiet=True)
        assert api.revisions_get(PROJECT, DEPLOYMENT, older, "built").status == "success"
        assert python(api) == "sys - on Python 3.11", "the active revision's previous build serves on"
    finally:
        emulator.stop()
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path, data_dir=emulator.data_dir)
    try:
        api = emulator.sdk()
        assert python(api) == "sys - on Python 3.11", "restored from its kept zip, in its previous build's environment"
        assert status() == "failed", "its rebuild's failure is still shown"
    finally:
        emulator.stop()


def test_a_rebuild_of_an_older_revision_cut_off_by_a_stop_fails_saying_to_rebuild_it(tmp_path):
    """It failed saying to upload the revision again, though its zip is kept and a rebuild is all it needs."""
    gate = tmp_path / "gate"
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        create_built(api)
        built(api, tmp_path, GATED.replace("GATE", repr(str(gate))))
        built(api, tmp_path)
        older, _ = (r.id for r in sorted(api.revisions_list(PROJECT, DEPLOYMENT, "built"), key=lambda r: r.creation_date))
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "built", ubiops.DeploymentVersionUpdate(environment="python3-12"))
        wait(api)
        api.revisions_rebuild(PROJECT, DEPLOYMENT, older, "built", {})
        eventually(lambda: api.revisions_get(PROJECT, DEPLOYMENT, older, "built").status == "deploying",
                   "the older revision's rebuild starts its instance, held at the gate")
    finally:
        emulator.stop()
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path, data_dir=emulator.data_dir)
    try:
        api = emulator.sdk()
        revision = api.revisions_get(PROJECT, DEPLOYMENT, older, "built")
        assert (revision.status, revision.error_message) == (
            "failed", "The emulator stopped before this revision was rebuilt; rebuild it again")
        assert python(api) == "sys - on Python 3.12", "the active revision serves on"
    finally:
        emulator.stop()


def test_a_variable_made_secret_while_a_rebuild_runs_is_masked_by_the_instances_it_starts(tmp_path):
    """The rebuild's instances started with the variable plain; its success restarted them only if a value
    changed, so a variable made secret (same value) meanwhile stood in clear in their errors and lines."""
    gate, value = tmp_path / "gate", "a-value-long-enough-to-mask"
    leaking = GATED.replace("GATE", repr(str(gate))).replace(
        "    def request(self, data):\n", "    def request(self, data):\n        if data == 'leak':\n"
                                          "            raise RuntimeError('boom with ' + os.environ['TOKEN'])\n")
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path)
    try:
        api = emulator.sdk()
        create_built(api)
        variable = api.deployment_version_environment_variables_create(
            PROJECT, DEPLOYMENT, "built", ubiops.EnvironmentVariableCreate(name="TOKEN", value=value, secret=False))
        built(api, tmp_path, leaking)
        (revision,) = api.revisions_list(PROJECT, DEPLOYMENT, "built")
        api.deployment_versions_update(PROJECT, DEPLOYMENT, "built", ubiops.DeploymentVersionUpdate(environment="python3-12"))
        eventually(lambda: api.revisions_get(PROJECT, DEPLOYMENT, revision.id, "built").status == "deploying",
                   "the rebuild starts its instance, held at the gate")
        api.deployment_version_environment_variables_update(
            PROJECT, DEPLOYMENT, variable.id, "built", ubiops.EnvironmentVariableCreate(name="TOKEN", value=value, secret=True))
        gate.write_text("open")
        wait(api)
        assert python(api) == "sys - on Python 3.12"
        assert api.deployment_version_requests_create(PROJECT, DEPLOYMENT, "built", "leak").status == "failed"
        eventually(lambda: "boom with ***" in emulator.log(), "the traceback's line, masked, in the log")
        assert value not in emulator.log()
    finally:
        emulator.stop()


def test_a_python_the_machine_lacks_fails_the_build_saying_how_to_get_it(tmp_path):
    lacking = {"PYENV_ROOT": str(tmp_path / "no-pyenv"), "PATH": "/usr/bin:/bin"}
    emulator = start_emulator(probe_package(tmp_path / "package"), tmp_path, "--environment", "python3-9", env=lacking)
    try:
        error = refusal(emulator)
        assert "its environment could not be built: the environment needs Python 3.9, which is not installed" in error
        assert "pyenv install 3.9" in error
    finally:
        emulator.stop()


def test_a_second_start_takes_the_environment_from_the_cache(tmp_path):
    """The folder given relative to the working directory, as users type it: uv, run elsewhere, made
    `envs/envs/…` of `--environments-dir envs`, and the build failed."""
    package = probe_package(tmp_path / "package", HUMANIZE)
    cache = ["--environments-dir", os.path.relpath(tmp_path / "environments", ROOT)]  # the emulators' working directory
    first = start_emulator(package, tmp_path, *cache)
    try:
        assert answer(first, "humanize").startswith("humanize 4.12.1")
        assert "building environment python3-11" in first.log()
    finally:
        first.stop()
    second = start_emulator(package, tmp_path, *cache)
    try:
        assert answer(second, "humanize").startswith("humanize 4.12.1")
        assert "environment python3-11 (Python 3.11" in wait_for_log(second, "from the cache")
        assert "building environment" not in second.log()
    finally:
        second.stop()


def test_an_instance_lost_after_its_environment_cache_was_removed_is_restarted_in_one_built_again(tmp_path):
    """Removing the cache, as this README suggests when it has grown, left a version that lost an instance
    unavailable for good: each restart was tried on the removed interpreter (FileNotFoundError, with a
    traceback each time), as its environment was prepared once, at the version's start."""
    cache = tmp_path / "environments"
    emulator = start_emulator("crashing", tmp_path, "--environments-dir", str(cache))
    try:
        api = emulator.sdk()
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"
        shutil.rmtree(cache)
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "os_exit"}).status == "failed"
        assert api.deployment_requests_create(PROJECT, DEPLOYMENT, data={"mode": "ok"}).status == "completed"
        assert "is gone from the cache: building it again" in emulator.log()
        assert "Traceback" not in emulator.log()
    finally:
        emulator.stop()


def wheel(version: str) -> bytes:
    """A wheel of a one-module project `mylib` whose `__version__` is `version`."""
    info = "mylib-1.0.dist-info"
    return zip_bytes({"mylib/__init__.py": f"__version__ = {version!r}\n".encode(),
                      f"{info}/METADATA": b"Metadata-Version: 2.1\nName: mylib\nVersion: 1.0\n",
                      f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                      f"{info}/RECORD": f"mylib/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n".encode()})


def test_a_requirement_on_the_packages_own_files_builds_anew_when_they_change(tmp_path):
    """The cache was keyed by the requirements' text alone: a package whose own wheel changed (a new
    revision of it) went on running the first one's copy, from the cache."""
    package = probe_package(tmp_path / "package", "./wheels/mylib-1.0-py3-none-any.whl\n")
    (package / "wheels").mkdir()
    cache = ["--environments-dir", str(tmp_path / "environments")]
    for version in ("r1", "r2"):
        (package / "wheels" / "mylib-1.0-py3-none-any.whl").write_bytes(wheel(version))
        emulator = start_emulator(package, tmp_path, *cache)
        try:
            assert answer(emulator, "mylib").startswith(f"mylib {version} on Python")
            assert "building environment python3-11" in emulator.log()
        finally:
            emulator.stop()


def test_a_changed_variable_a_requirement_names_builds_anew_and_an_unset_one_is_not_filled_in(tmp_path):
    """The cache was keyed by the requirements' text as written: a changed variable went on serving the
    first environment, and a build once made with it set served a start without it."""
    package = probe_package(tmp_path / "package", "mylib @ ./${WHEELS}/mylib-1.0-py3-none-any.whl\n",
                            manifest="environment_variables:\n  - WHEELS=a\n")
    for version in ("a", "b"):
        (package / version).mkdir()
        (package / version / "mylib-1.0-py3-none-any.whl").write_bytes(wheel(version))
    cache = ["--environments-dir", str(tmp_path / "environments")]
    emulator = start_emulator(package, tmp_path, *cache)
    try:
        assert answer(emulator, "mylib").startswith("mylib a on Python")
        emulator.sdk().deployment_version_environment_variables_create(
            PROJECT, DEPLOYMENT, "v1", ubiops.EnvironmentVariableCreate(name="WHEELS", value="b", secret=False))
        eventually(lambda: answer(emulator, "mylib").startswith("mylib b on Python"), "the version's value's wheel", 120)
    finally:
        emulator.stop()
    (package / "ubiops.yaml").unlink()
    unset = start_emulator(package, tmp_path, *cache)
    try:
        assert "Distribution not found at" in refusal(unset), "not the environment built with it set"
        assert "requirements.txt names ${WHEELS}, which the version's variables do not set" in unset.log()
    finally:
        unset.stop()


def test_a_variable_a_requirement_names_is_filled_in_anywhere_in_its_line_and_a_secret_one_stays_masked(tmp_path):
    """pip fills a `${NAME}` in anywhere in a line; uv, which installs here, only within a URL, so
    `six==${SIX_VERSION}` failed the build ("expected version to start with a number") though pip on UbiOps
    installs it. uv gets a copy with the values filled in, the included files' too, removed after."""
    package = probe_package(tmp_path / "package", "-r base.txt\n",
                            manifest="environment_variables:\n  - PKG=six\n  - SIX_VERSION=1.16.0\n")
    (package / "base.txt").write_text("${PKG}==${SIX_VERSION}\n")
    emulator = start_emulator(package, tmp_path, "--environments-dir", str(tmp_path / "environments"))
    try:
        assert answer(emulator, "six").startswith("six 1.16.0 on Python")
        assert not list(emulator.data_dir.glob("builds/**/.emulator-*")), "its filled-in copies are gone"
        secret = "4242.4242"  # a version six does not have: the installer's error names it
        emulator.sdk().deployment_version_environment_variables_create(
            PROJECT, DEPLOYMENT, "v1", ubiops.EnvironmentVariableCreate(name="SIX_VERSION", value=secret, secret=True))
        error = eventually(lambda: "could not be built" in (reply := str(ask(emulator, "six"))) and reply,
                           "the environment with the secret's value fails to build", 120)
        assert "six==***" in error and secret not in error, error
        assert "there is no version of six==***" in emulator.log() and secret not in emulator.log()
    finally:
        emulator.stop()


def test_an_editable_requirement_runs_from_its_own_packages_folder(tmp_path):
    """An editable install runs from the folder it names: a second package (a new revision, unpacked
    elsewhere) with the same requirements line ran the first one's code from the cache, and broke
    once that folder was removed."""
    cache = ["--environments-dir", str(tmp_path / "environments")]
    for version in ("r1", "r2"):
        package = probe_package(tmp_path / version, "-e ./mylib\n")
        (package / "mylib" / "mylib").mkdir(parents=True)
        (package / "mylib" / "pyproject.toml").write_text(
            '[build-system]\nrequires = ["uv_build>=0.8,<0.10"]\nbuild-backend = "uv_build"\n'
            '[project]\nname = "mylib"\nversion = "1.0"\n[tool.uv.build-backend]\nmodule-root = ""\n')
        (package / "mylib" / "mylib" / "__init__.py").write_text(f"__version__ = {version!r}\n")
        emulator = start_emulator(package, tmp_path, *cache)
        try:
            assert answer(emulator, "mylib").startswith(f"mylib {version} on Python")
        finally:
            emulator.stop()


def test_a_changed_requirements_file_under_reload_rebuilds_the_environment(tmp_path):
    package = probe_package(tmp_path / "package")
    emulator = start_emulator(package, tmp_path, "--reload")
    try:
        assert answer(emulator, "humanize").startswith("cannot import humanize")
        (package / "requirements.txt").write_text(HUMANIZE)
        eventually(lambda: answer(emulator, "humanize").startswith("humanize 4.12.1"), "the new requirement arrives", 60)
        assert "changed: requirements.txt" in emulator.log()
    finally:
        emulator.stop()


@pytest.fixture
def apt_lists() -> None:
    """These tests need apt's package lists, which `make test` reads (`make tools`) where they are missing."""
    assert has_package_lists(), "apt has no package lists: run `sudo apt-get update` (`make tools` does)"


def machine_version_id() -> str | None:
    """This machine's os-release VERSION_ID; None without /etc/os-release (not every Linux has one)."""
    try:
        return platform.freedesktop_os_release().get("VERSION_ID")
    except OSError:
        return None


OTHER_UBUNTU = "22.04" if machine_version_id() == "24.04" else "24.04"
"""An Ubuntu release this machine is not: its apt cannot judge an environment of that release's names."""


def not_installed_package() -> str:
    """A package this machine's apt knows and has not installed."""
    installed = set(subprocess.run(["dpkg-query", "-W", "-f=${Package}\n"], capture_output=True, text=True,
                                   check=True).stdout.split())
    names = subprocess.run(["apt-cache", "pkgnames"], capture_output=True, text=True, check=True).stdout.split()
    return next(name for name in sorted(names) if name not in installed)


@pytest.mark.usefixtures("apt_lists")
def test_system_packages_the_machine_lacks_are_named_at_build_time(tmp_path):
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    lacking = not_installed_package()
    manifest = f"apt:\n  packages:\n    - coreutils\n    - libc6:{arch}\n    - {lacking}\n"
    emulator = start_emulator(probe_package(tmp_path / "package", manifest=manifest), tmp_path)
    try:
        log = wait_for_log(emulator, f"apt package {lacking} ")
        assert (f"ubiops.yaml's apt package {lacking} is not installed on this machine: UbiOps installs it in the "
                f"instance, here the deployment runs without it (`sudo apt-get install -y {lacking}` adds it)") in log
        assert "apt package coreutils" not in log and "apt package libc6" not in log, "installed, with an arch too"
        assert answer(emulator, "sys").startswith("sys - on Python 3.11"), "a warning, not a failure"
    finally:
        emulator.stop()


@pytest.mark.usefixtures("apt_lists")
@pytest.mark.parametrize("name", ["libgl1-mesa-glxx", "--help"], ids=["misspelt", "an-option-of-apts"])
def test_a_system_package_apt_does_not_know_fails_the_build_as_on_ubiops(tmp_path, name):
    """It built and served, with a warning suggesting `sudo apt-get install` of it: UbiOps' apt-get
    install fails on the name, and so the build."""
    manifest = f"apt:\n  packages:\n    - coreutils\n    - '{name}'\n"
    emulator = start_emulator(probe_package(tmp_path / "package", manifest=manifest), tmp_path)
    try:
        error = refusal(emulator)
        assert (f"its environment could not be built: ubiops.yaml's apt package {name} is not a package apt knows on "
                "this machine") in error
        assert "UbiOps' apt-get install fails on it, and so its build" in error
    finally:
        emulator.stop()


@pytest.mark.usefixtures("apt_lists")
@pytest.mark.parametrize("environment, sources, lists, why", [
    ("python3-11", True, True, "ubiops.yaml adds apt sources, which may have it"),
    ("python3-11", False, False, "apt has no package lists here (`sudo apt-get update` reads them)"),
    (f"ubiops-ubuntu{OTHER_UBUNTU.replace('.', '-')}-python3-12", False, True,
     f"the environment ubiops-ubuntu{OTHER_UBUNTU.replace('.', '-')}-python3-12 runs Ubuntu {OTHER_UBUNTU}"),
], ids=["added-sources", "no-package-lists", "another-release"])
def test_a_system_package_this_machines_apt_cannot_judge_is_a_warning(tmp_path, monkeypatch, environment, sources,
                                                                      lists, why):
    """A name from a source ubiops.yaml adds, one checked where apt has read no list (a slim Docker
    image: every name not installed seems unknown), or another Ubuntu release's name."""
    if not lists:
        (tmp_path / "lists" / "partial").mkdir(parents=True)
        (tmp_path / "apt.conf").write_text(f'Dir::State::Lists "{tmp_path / "lists"}";\nDir::Cache::pkgcache "";\n'
                                           'Dir::Cache::srcpkgcache "";\n')
        monkeypatch.setenv("APT_CONFIG", str(tmp_path / "apt.conf"))
    check = check_apt_packages(["coreutils", "libgl1-mesa-glxx"], environment, adds_sources=sources)
    assert check.failures == [], check
    unjudged = [w for w in check.warnings if "libgl1-mesa-glxx" in w]
    assert len(unjudged) == 1 and unjudged[0].startswith(
        f"ubiops.yaml's apt package libgl1-mesa-glxx is not a package this machine's apt knows, and it cannot tell "
        f"whether UbiOps' does: {why}"), check.warnings


UBUNTU_24_04 = "ubiops-ubuntu24-04-python3-12"


@pytest.mark.usefixtures("apt_lists")
@pytest.mark.skipif(machine_version_id() == "24.04", reason="this machine's apt judges Ubuntu 24.04's names itself")
def test_a_name_the_environments_ubuntu_dropped_fails_naming_its_replacement(tmp_path):
    """Names this machine's apt (Debian 12) knows passed for an Ubuntu 24.04 environment, where UbiOps'
    apt-get install fails on them; the other names it knows say that they were judged here alone."""
    check = check_apt_packages(["libgl1-mesa-glx", "libasound2=1.2.8", "coreutils"], UBUNTU_24_04)
    assert check.failures == [
        f"ubiops.yaml's apt package libgl1-mesa-glx is not one UbiOps' apt-get install takes on Ubuntu 24.04, which the "
        f"environment {UBUNTU_24_04} runs: it has no installation candidate since Ubuntu 23.10; libgl1 and libglx-mesa0 "
        "replace it",
        f"ubiops.yaml's apt package libasound2=1.2.8 is not one UbiOps' apt-get install takes on Ubuntu 24.04, which the "
        f"environment {UBUNTU_24_04} runs: it is only a virtual package there, which two packages provide, so apt-get "
        "cannot choose (no installation candidate); libasound2t64 replaces it"]
    assert len(check.warnings) == 1 and check.warnings[0].startswith(
        "ubiops.yaml's apt package coreutils was judged by the apt of this machine"), check.warnings
    assert check.warnings[0].endswith(
        f"alone: the environment {UBUNTU_24_04} runs Ubuntu 24.04, where a name that release dropped or renamed fails "
        "UbiOps' build (`apt-cache policy NAME` on Ubuntu 24.04 tells)")
    emulator = start_emulator(probe_package(tmp_path / "package", manifest="apt:\n  packages:\n    - libasound2\n"),
                              tmp_path, "--environment", UBUNTU_24_04)
    try:
        assert "libasound2t64 replaces it" in refusal(emulator), "the build fails"
    finally:
        emulator.stop()


def test_a_conda_environment_yaml_is_said_to_be_not_built(tmp_path):
    """A package with only environment.yaml failed with ModuleNotFoundError and no hint: the build
    ignored the file silently, where UbiOps builds it with conda."""
    package = probe_package(tmp_path / "package", code="import humanize\n" + PROBE)
    (package / "environment.yaml").write_text("name: probe\ndependencies:\n  - python=3.11\n  - humanize=4.12.1\n")
    emulator = start_emulator(package, tmp_path)
    try:
        error = refusal(emulator)
        assert "ModuleNotFoundError: No module named 'humanize'" in error
        assert "its environment.yaml (conda) is not built by the emulator: only requirements.txt is installed here" in error
        assert ("the package's environment.yaml (conda) is not built by the emulator: only requirements.txt is installed "
                "here, so the packages it names are missing") in emulator.log()
    finally:
        emulator.stop()
