"""`python -m deployer package` and the static part of `check`: no UbiOps needed."""

from __future__ import annotations

import codecs
import errno
import gc
import json
import os
import re
import subprocess
import sys
import threading
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import pytest
from conftest import DEPLOYER_SECONDS, DEPLOYMENT_PY, TOKEN
from harness import ROOT, ended

from contract.apt import has_package_lists
from contract.archive import build_zip, package_files
from contract.config import CHECKS, REQUIRED_KEYS, DeployerConfig, deployer_table, load_config
from contract.package import PackageCheckError, check_deployment_class, read_requirements
from contract.requirements import file_references
from contract.versions import instance_type_memory_mb
from deployer.bundle import Bundle, SharedLock, build_bundle, sha256_of
from deployer.checks import unpinned
from deployer.errors import DeployerError


def test_package_twice_gives_byte_identical_zips_without_ignored_files(project):
    (project.package / "__pycache__").mkdir()
    (project.package / "__pycache__" / "deployment.cpython-311.pyc").write_bytes(b"\0")
    (project.package / "stale.pyc").write_bytes(b"\0")
    (project.package / ".env").write_text("SECRET=1\n")
    (project.package / "notes").mkdir()
    (project.package / "notes" / "draft.md").write_text("draft")
    (project.package / ".ubiops-ignore").write_text("notes/\n")
    first = project.run("--output", "json", "package")
    zip_path = project.root / json.loads(first.stdout)["path"]
    first_bytes = zip_path.read_bytes()
    (project.package / "deployment.py").touch()
    second = project.run("package", "--output", "json")
    assert first.returncode == second.returncode == 0, first.stderr
    assert json.loads(first.stdout)["sha256"] == json.loads(second.stdout)["sha256"]
    assert zip_path.read_bytes() == first_bytes
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.namelist() == [f"deployment_package/{n}" for n in (
            ".ubiops-ignore", "deployment.py", "requirements.txt", "ubiops_input_spec.json", "ubiops_output_spec.json")]
        assert {e.date_time for e in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_secrets_files_virtual_environments_and_tool_caches_are_never_zipped(project):
    """`.env.local`, `.env.production` (secrets, as `.env` holds), `.venv/` and the test and lint tools'
    caches went into the zip; a folder is a virtual environment by its `pyvenv.cfg`, whatever its name
    (a `venv/` without one is the package's own), and the `.env.*` examples hold no secrets."""
    files = [".env.local", ".env.production", ".env.example", ".env.sample", ".env.template", ".venv/lib/site.py",
             "venv/pyvenv.cfg", "venv/lib/site.py", "env/pyvenv.cfg", "env/bin/python", "data/venv/words.txt",
             ".pytest_cache/v/cache/nodeids", ".mypy_cache/3.11/x.json", ".ruff_cache/0.1/x", ".tox/py311/x",
             ".nox/tests/x", "libraries/.env.staging", "libraries/.venv/x.py"]
    for name in files:
        (project.package / name).parent.mkdir(parents=True, exist_ok=True)
        (project.package / name).write_text("API_KEY=kept-out\n")
    result = project.run("--output", "json", "package")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(project.root / json.loads(result.stdout)["path"]) as archive:
        assert archive.namelist() == [f"deployment_package/{n}" for n in (
            ".env.example", ".env.sample", ".env.template", "data/venv/words.txt", "deployment.py", "requirements.txt",
            "ubiops_input_spec.json", "ubiops_output_spec.json")]


def test_a_package_folder_holding_dist_leaves_the_earlier_zips_out(project):
    project.configure(package=".")
    first, second = project.run("--output", "json", "package"), project.run("--output", "json", "package")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["sha256"] == json.loads(second.stdout)["sha256"]
    with zipfile.ZipFile(project.root / json.loads(second.stdout)["path"]) as archive:
        names = archive.namelist()
    assert "deployment_package/pkg/deployment.py" in names
    assert not [n for n in names if n.startswith("deployment_package/dist/")]


def test_an_emulator_data_folder_left_in_the_package_is_never_zipped(project):
    """One an emulator run inside the package left there once went into the zip, with the secret values
    set through the API in clear in its `catalog.json`."""
    stale = project.package / ".emulator-data"
    (stale / "revisions").mkdir(parents=True)
    (stale / "catalog.json").write_text('{"variables": [{"name": "DB_PASSWORD", "value": "hunter2", "secret": true}]}')
    (stale / "requests.sqlite3").write_bytes(b"SQLite format 3\0")
    result = project.run("--output", "json", "package")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(project.root / json.loads(result.stdout)["path"]) as archive:
        assert not [n for n in archive.namelist() if ".emulator-data" in n]


def test_the_folder_the_zips_are_written_to_cannot_be_the_package(project):
    (project.root / "dist").mkdir()
    (project.root / "dist" / "deployment.py").write_text("")
    project.configure(package="dist")
    result = project.run("package")
    assert (result.returncode, result.stderr.strip()) == (
        1, "deployer: error: the package folder is dist/, where the zips are written: give the package a folder of its own")
    assert list((project.root / "dist").iterdir()) == [project.root / "dist" / "deployment.py"]


def test_a_zip_that_cannot_be_written_is_one_line(project):
    """`dist` a file: the zip cannot go into it (once a FileExistsError traceback, then the clean-up's
    NotADirectoryError)."""
    (project.root / "dist").write_text("")
    result = project.run("package")
    dist = project.root / "dist"
    assert (result.returncode, result.stderr.strip()) == (
        1, f"deployer: error: cannot build the zip in {dist}: [Errno 17] File exists: '{dist}'")


def test_packages_built_at_once_in_one_checkout_each_get_their_own_zip(project):
    """Two `package` or `check` runs at once in one checkout: each zips into a scratch file of its own
    (both once zipped into `dist/.<deployment>-building.zip`, over each other), and a failed one leaves
    none behind."""
    contents = {}
    for name in ("first", "second"):
        (project.root / name).mkdir()
        contents[name] = {"deployment.py": name.encode(), "weights.bin": os.urandom(4 * 1024**2)}
        for file, content in contents[name].items():
            (project.root / name / file).write_bytes(content)
    for _ in range(3):
        built = build_at_once(project.root, project.deployment, list(contents))
        for name, bundle in built.items():
            assert isinstance(bundle, Bundle), f"{name}: {bundle!r}"
            assert sha256_of(bundle.path) == bundle.sha256, f"{name}: the zip was changed after it was built"
            with zipfile.ZipFile(bundle.path) as archive:
                assert {n.removeprefix("deployment_package/"): archive.read(n) for n in archive.namelist()} == contents[name]
    (project.root / "first" / "gone.bin").symlink_to(project.root / "nowhere")  # fails the build half way through
    with pytest.raises(DeployerError, match=r"gone\.bin in the package is a link to"):
        build_bundle(DeployerConfig(root=project.root, deployment=project.deployment, package="first"))
    assert sorted(p.name for p in (project.root / "dist").iterdir()) == sorted(b.path.name for b in built.values())


def build_at_once(root: Path, deployment: str, packages: list[str]) -> dict[str, Bundle | BaseException]:
    """Each package folder's bundle (or what its build raised), all built at the same moment in threads."""
    start = threading.Barrier(len(packages))
    built: dict[str, Bundle | BaseException] = {}

    def build(package: str) -> None:
        config = DeployerConfig(root=root, deployment=deployment, package=package)
        start.wait()
        try:
            built[package] = build_bundle(config)
        except BaseException as exc:
            built[package] = exc

    threads = [threading.Thread(target=build, args=(package,)) for package in packages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return built


def test_package_prints_path_size_and_sha256(project):
    result = project.run("package")
    lines = result.stdout.splitlines()
    assert lines[0].endswith(".zip") and lines[1].strip().startswith("size ") and lines[2].strip().startswith("sha256 ")


def test_a_file_holding_the_token_is_refused(project):
    (project.package / "settings.py").write_text(f"TOKEN = '{TOKEN}'\n")
    result = project.run("package")
    assert result.returncode == 1
    assert result.stderr.strip() == ("deployer: error: settings.py contains the value of UBIOPS_API_TOKEN; "
                                     "remove it or list the file in .ubiops-ignore")
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("make, message", [
    (lambda path: path.symlink_to("/no/such/weights.bin"), "weights.bin in the package is a link to /no/such/weights.bin, "
                                                           "which does not exist: remove it, or list it in .ubiops-ignore"),
    (os.mkfifo, "weights.bin in the package is not a file: remove it, or list it in .ubiops-ignore"),
    (lambda path: path.with_name(os.fsdecode(b"weights-\xff.bin")).write_bytes(b"x"),
     "'weights-\\udcff.bin' in the package has a name that is not UTF-8: rename it, or list it in .ubiops-ignore"),
])
def test_a_package_file_no_zip_can_hold_is_one_line_naming_it(project, make, message):
    """Before, a link to nothing ended `package` with a FileNotFoundError traceback, and a pipe made it
    wait for ever."""
    make(project.package / "weights.bin")
    result = project.run("package")
    assert (result.returncode, result.stderr.strip()) == (1, f"deployer: error: {message}")
    assert not list((project.root / "dist").glob("*.zip"))


@pytest.mark.parametrize("file, content, failure", [
    ("ubiops_input_spec.json", "[{", "FAIL package: ubiops_input_spec.json: not valid JSON"),
    ("ubiops_input_spec.json", '[{"name": "x", "data_type": "float"}]', "has data_type 'float'"),
    ("ubiops.yaml", "environment_variables: [lower=1]", "FAIL package: ubiops.yaml"),
    ("deployment.py", "class Model:\n    pass\n", "FAIL deployment.py: deployment.py defines no top-level class Deployment (the classes it defines: Model)\n"),
    ("deployment.py", "class Deployment:\n    def request(self, data, context, extra):\n        pass\n",
     "Deployment.request: UbiOps would call it with (data), which fails: missing a required argument: 'context'"),
    ("deployment.py", "class Deployment:\n    def __init__(self, model_path):\n        pass\n"
     "    def request(self, data):\n        pass\n",
     "Deployment.__init__: UbiOps would call it with (), which fails: missing a required argument: 'model_path'"),
    ("deployment.py", "def broken(:\n", "FAIL deployment.py: deployment.py does not parse"),
    ("requirements.txt", "numpy==2.*,<<3\n", "FAIL requirements.txt: requirements.txt line 1: 'numpy==2.*,<<3' is not a requirement"),
    ("requirements.txt", "no-such-package-for-the-emulator-tests==1.0\n",
     "is unavailable: its environment could not be built: installing requirements.txt failed: No solution found when "
     "resolving dependencies; Because no-such-package-for-the-emulator-tests was not found in the package registry"),
])
def test_check_refuses_a_broken_package_with_the_reason(project, file, content, failure):
    (project.package / file).write_text(content)
    result = project.run("check")
    assert result.returncode == 1
    assert failure in result.stdout
    assert "check FAILED" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_check_refuses_a_sample_input_that_breaks_the_spec(project):
    project.configure(sample_input={"x": "three"})
    result = project.run("check")
    assert result.returncode == 1
    assert "FAIL sample_input: Input field 'x' must be of type int, but got a string" in result.stdout


@pytest.mark.parametrize("sample, failure", [
    ({"x": 3, "extra": 1}, "FAIL sample_input: 'extra' is not an input field (x): correct or remove it in "
                           "[tool.deployer] sample_input in pyproject.toml"),
    ({"X": 3, "z": 1}, "FAIL sample_input: Missing input field 'x' of type int; 'X', 'z' are not an input field (x): "
                       "correct or remove them in [tool.deployer] sample_input in pyproject.toml"),
], ids=["extra-key", "misspelt-field"])
def test_check_refuses_a_sample_input_key_no_input_field_names(project, sample, failure):
    """The emulator drops such a key, and the check said "ok sample_input: matches the input fields (x, extra)"."""
    project.configure(sample_input=sample)
    result = project.run("check")
    assert result.returncode == 1
    assert failure + "\n" in result.stdout, result.stdout


def test_check_refuses_sample_input_files_that_are_missing_or_folders_before_the_tests(project):
    """A missing file passed `ok sample_input` and failed the check only after every test had run; a
    folder was said to be "not found"."""
    (project.package / "ubiops_input_spec.json").write_text(json.dumps([{"name": "doc", "data_type": "file"},
                                                                        {"name": "docs", "data_type": "array_file"}]))
    (project.root / "sample.txt").write_text("the sample")
    (project.root / "a").mkdir()
    (project.root / "emulator_check.py").write_text("open('tests-ran', 'w').close()\n")
    project.configure(sample_input={"doc": "missing.jpg", "docs": ["sample.txt", "a"]})
    result = project.run("check")
    assert result.returncode == 1
    assert (f"FAIL sample_input: input file missing.jpg not found (looked at {project.root / 'missing.jpg'}); "
            f"input file a is a folder, not a file (at {project.root / 'a'})") in result.stdout, result.stdout
    assert not (project.root / "tests-ran").exists()


@pytest.mark.parametrize("plain, sample, message", [
    (False, "three", "sample_input is a string, but the deployment's input is structured: give its fields as a table"),
    (True, {"x": 3}, "sample_input is a table of fields, but the deployment's input is plain text: give the text itself"),
], ids=["text-for-structured-input", "table-for-plain-input"])
def test_check_refuses_a_sample_input_of_the_other_kind_than_the_input(project, plain, sample, message):
    if plain:
        (project.package / "ubiops_input_spec.json").unlink()
    project.configure(sample_input=sample)
    result = project.run("check")
    assert result.returncode == 1
    assert f"FAIL sample_input: [tool.deployer] {message}" in result.stdout, result.stdout


def test_check_passes_and_runs_the_emulator_tests_on_the_zip(project):
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   emulator tests: emulator answered {'y': 42}" in result.stdout
    assert result.stdout.strip().endswith("check passed: 9 checks")


MEMORY_HUNGRY_PY = '''
class Deployment:
    def request(self, data):
        held = b"x" * (300 * 1024 * 1024)  # 300 MB, every page written
        return {"y": data["x"] * 2 + held.count(b"y")}
'''


def test_check_limits_each_instance_to_the_memory_of_the_configured_instance_type_group(project):
    """With the emulator's own limit, 2048 MB, a model larger than the configured group's memory (512 MB
    by default) passed every check, and ran out of memory on UbiOps."""
    (project.package / "deployment.py").write_text(MEMORY_HUNGRY_PY)
    project.configure(instance_type_group="256 MB + 0.0625 vCPU")
    result = project.run("check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("ok   emulator: the zip started in the emulator at http://127.0.0.1:") in result.stdout
    assert (", each instance limited to 256 MB of memory, as instance_type_group '256 MB + 0.0625 vCPU' limits it "
            "on UbiOps\n") in result.stdout
    assert ("FAIL sample request: failed: The instance used more than 256 MB of memory while handling the request and "
            "was stopped") in result.stdout

    project.configure(instance_type_group="1 GB + 0.25 vCPU")
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "each instance limited to 1024 MB of memory, as instance_type_group '1 GB + 0.25 vCPU'" in result.stdout
    assert "ok   emulator tests: emulator answered {'y': 42}" in result.stdout


def test_check_keeps_the_emulators_memory_limit_for_a_group_whose_name_gives_none(project):
    project.configure(instance_type_group="our gpu nodes")
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("note instance_type_group: 'our gpu nodes' names no memory (as '2048 MB + 0.5 vCPU' does): the emulator "
            "limits each instance to its own 2048 MB, which may not be the group's") in result.stdout
    assert "ok   emulator: the zip started in the emulator at http://127.0.0.1:" in result.stdout
    assert ", each instance limited to 2048 MB of memory\n" in result.stdout


@pytest.mark.parametrize(("group", "memory_mb"), [
    ("512 MB + 0.125 vCPU", 512), ("2048 MB + 0.5 vCPU", 2048), ("16 GB + 4 vCPU", 16384), ("0.5 GB + 0.125 vCPU", 512),
    ("16384 MB + 4 vCPU + NVIDIA Tesla T4", 16384), ("256mb + 0.0625 vCPU", 256),
    ("our gpu nodes", None), ("4 vCPU + 16 GB", None), ("0 MB + 1 vCPU", None), ("100 MBit", None)])
def test_an_instance_type_groups_memory_is_read_from_its_name(group, memory_mb):
    assert instance_type_memory_mb(group) == memory_mb


def test_check_leaves_a_class_inheriting_its_request_from_libraries_to_the_emulator(project):
    """It was refused ("Deployment has neither request(self, data) nor requests(self, data)"), though
    the emulator and UbiOps serve it: the static check notes it cannot tell, and the emulator's run decides."""
    (project.package / "libraries").mkdir()
    (project.package / "libraries" / "base.py").write_text(DEPLOYMENT_PY.replace("class Deployment:", "class BaseDeployment:"))
    (project.package / "deployment.py").write_text("from base import BaseDeployment\n\n\nclass Deployment(BaseDeployment):\n"
                                                  "    pass\n")
    assert_left_to_the_emulator(project, "Deployment defines neither request nor requests itself, and may inherit them")


def test_check_leaves_syntax_of_the_environments_newer_python_to_the_emulator(project):
    """With python3-12, a file using its syntax was refused as not parsing, by the deployer's Python 3.11
    (the project's, as the Makefile makes its environment)."""
    project.configure(environment="python3-12")
    (project.package / "deployment.py").write_text(
        'type Factor = int\n\n\nclass Deployment:\n    def request(self, data):\n'
        '        return {f"{"y"}": data["x"] * 2}\n')
    assert_left_to_the_emulator(project, "Python 3.11, the check's own, does not parse it (invalid syntax, line 1); "
                                         "the environment's Python 3.12 is newer and may")


def assert_left_to_the_emulator(project, why: str) -> None:
    """The check passes, its static check noting why it could not tell, and the emulator's run decides."""
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"note deployment.py: not decided by reading it: {why}; only running it tells" in result.stdout
    assert "ok   emulator tests: emulator answered {'y': 42}" in result.stdout


def local_wheel(folder: Path) -> Path:
    """A wheel of a one-module project, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mylib-1.0-py3-none-any.whl"
    info = "mylib-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mylib/__init__.py", "")
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: mylib\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.mark.parametrize("line, why", [
    ("{wheel}", "{wheel} is a path on this machine: UbiOps builds the package elsewhere"),
    ("--find-links {wheel.parent}", "{wheel.parent} is a path on this machine"),
    ("mylib @ file://{wheel}", "file://{wheel} is a path on this machine"),
    ("../../outside/mylib-1.0-py3-none-any.whl", "../../outside/mylib-1.0-py3-none-any.whl is outside the package"),
], ids=["absolute", "find-links", "file-url", "dot-dot"])
def test_check_refuses_a_requirement_on_files_out_of_the_package(project, tmp_path, line, why):
    """It passed, and the emulator installed the wheel from the developer's disk; UbiOps builds the
    package from its own files alone, where the wheel is not."""
    wheel = local_wheel(tmp_path / "outside")
    (project.package / "requirements.txt").write_text(line.format(wheel=wheel) + "\nmylib==1.0\n")
    result = project.run("check")
    assert result.returncode == 1, result.stdout
    assert f"FAIL requirements.txt: requirements.txt line 1: {why.format(wheel=wheel)}" in result.stdout


def test_check_fills_in_a_requirements_variable_from_the_configured_variables_not_the_shell(project, tmp_path):
    """`mylib @ file://${WHEELDIR}/…` with WHEELDIR set in the developer's shell passed: the emulator's
    installer filled it in from there and installed the wheel from their disk, where UbiOps' build has
    only the version's variables. Configured, the line is judged as filled in, before any emulator starts."""
    wheel = local_wheel(tmp_path / "outside")
    line = "mylib @ file://${WHEELDIR}/mylib-1.0-py3-none-any.whl"
    (project.package / "requirements.txt").write_text(line + "\n")
    shell = project.run("check", env={"WHEELDIR": str(wheel.parent)})
    assert shell.returncode == 1, shell.stdout
    assert "FAIL emulator: the zip does not start" in shell.stdout and "Distribution not found at" in shell.stdout
    project.configure(environment_variables={"WHEELDIR": str(wheel.parent)})
    configured = project.run("check")
    assert configured.returncode == 1, configured.stdout
    assert (f"FAIL requirements.txt: requirements.txt line 1: {line} (its ${{WHEELDIR}} filled in from the version's "
            "variables) is a path on this machine") in configured.stdout


def test_check_passes_a_requirement_whose_version_is_a_variable(project):
    """`six==${SIX_VERSION}`, which pip on UbiOps fills in, failed the check's emulator build: uv, which
    installs there, fills a `${NAME}` in only within a URL ("expected version to start with a number")."""
    # A line of its own, so that the environment is built, not found in the machine's cache.
    (project.package / "requirements.txt").write_text(f"six==${{SIX_VERSION}}\n# {uuid.uuid4()}\n")
    (project.package / "deployment.py").write_text(DEPLOYMENT_PY.replace("class Deployment:", "import six\n\n\nclass Deployment:", 1))
    project.configure(environment_variables={"SIX_VERSION": "1.16.0"})
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr


def apt_names() -> tuple[str, str] | None:
    """A package this machine's apt knows and has not installed, and one it has installed (None: apt
    here has no package lists, so it can tell no name it does not know)."""
    if not has_package_lists():
        return None
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Package}\n"], capture_output=True, text=True).stdout.split()
    names = subprocess.run(["apt-cache", "pkgnames"], capture_output=True, text=True).stdout.split()
    return next(name for name in sorted(names) if name not in set(installed)), "coreutils"


def test_check_fails_on_an_apt_package_apt_does_not_know_and_shows_one_not_installed_here(project):
    """A misspelt name passed (the emulator only logged a warning suggesting `sudo apt-get install` of
    it); UbiOps' apt-get install fails on it. One known but not installed here is shown, not refused."""
    names = apt_names()
    assert names is not None, "apt has no package lists: run `sudo apt-get update` (`make tools` does)"
    lacking, installed = names
    (project.package / "ubiops.yaml").write_text(f"apt:\n  packages: [{installed}, libgl1-mesa-glxx]\n")
    result = project.run("check")
    assert result.returncode == 1
    assert ("FAIL ubiops.yaml: ubiops.yaml's apt package libgl1-mesa-glxx is not a package apt knows on this machine"
            in result.stdout), result.stdout
    assert "UbiOps' apt-get install fails on it, and so its build; check the name" in result.stdout
    (project.package / "ubiops.yaml").write_text(f"apt:\n  packages: [{installed}, {lacking}]\n")
    result = project.run("check")
    assert result.returncode == 0, result.stdout
    assert (f"note ubiops.yaml: 0 environment variable(s), 2 apt package(s); ubiops.yaml's apt package "
            f"{lacking} is not installed on this machine: UbiOps installs it in the instance") in result.stdout


def test_check_notes_an_environment_yaml_the_emulator_does_not_build(project):
    (project.package / "environment.yaml").write_text("name: pkg\ndependencies:\n  - python=3.11\n")
    result = project.run("check")
    assert result.returncode == 0, result.stdout
    assert ("note environment.yaml: environment.yaml (conda) is not built by the emulator: only "
            "requirements.txt is installed here, so the emulator tests run without the packages it names, which "
            "UbiOps installs") in result.stdout


@pytest.mark.parametrize("where", ["config", "ubiops.yaml"])
def test_check_reads_the_class_from_the_file_sys_deployment_file_name_names(project, where):
    """The emulator imports the file `SYS_DEPLOYMENT_FILE_NAME` names, from `ubiops.yaml` or the configured
    variables; before, the static check looked for deployment.py all the same, and failed a package that ran."""
    (project.package / "deployment.py").rename(project.package / "serve.py")
    if where == "config":
        project.configure(environment_variables={"SYS_DEPLOYMENT_FILE_NAME": "serve.py"})
    else:
        (project.package / "ubiops.yaml").write_text("environment_variables:\n  - SYS_DEPLOYMENT_FILE_NAME=serve.py\n")
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   serve.py: class Deployment with usable __init__ and request signatures" in result.stdout
    assert "ok   emulator tests: emulator answered {'y': 42}" in result.stdout


@pytest.mark.parametrize("settings, message", [
    ({"max_versions": 0}, "[tool.deployer] max_versions must be at least 1"),
    ({"maximum_idle_time": 5}, "[tool.deployer] maximum_idle_time must be at least 10 and at most 3600"),
    ({"request_retention_mode": "all"}, "[tool.deployer] request_retention_mode must be one of none, metadata, full"),
    ({"labels": {"team": 1}}, "[tool.deployer] labels must be a table of strings"),
    ({"minimum_instances": 3, "maximum_instances": 2}, "minimum_instances (3) exceeds maximum_instances (2)"),
    ({"max_version": 3}, "unknown [tool.deployer] key(s) max_version"),
    ({"environment_variables": {"bad-name": "x"}},
     "[tool.deployer] environment_variables has names that are not environment variable names ('bad-name'): use letters"),
    ({"environment_variables": {"FACTOR": 2}}, "[tool.deployer] environment_variables must be a table of strings"),
    ({"environment_variables": {"FACTOR": "2\0"}},  # refused by UbiOps only once the version was made
     "[tool.deployer] environment_variables has FACTOR, whose value holds a NUL character, which no environment variable can"),
    ({"secrets": "API_KEY"}, "[tool.deployer] secrets must be a list of names"),
    ({"secrets": ["_HIDDEN", 5]}, "[tool.deployer] secrets has names that are not environment variable names ('_HIDDEN', 5)"),
    ({"environment_variables_level": "project"}, "[tool.deployer] environment_variables_level must be one of version, deployment"),
    ({"environment_variables": {"API_KEY": "x"}, "secrets": ["API_KEY"]},
     "[tool.deployer] API_KEY named more than once in environment_variables and secrets"),
    ({"secrets": ["API_KEY", "API_KEY"]}, "[tool.deployer] API_KEY named more than once"),
    ({"environment": "python3-8"}, "[tool.deployer] environment must be one of UbiOps' base environments: python3-9, "),
    ({"test_command": 'python "emulator_check.py'}, "[tool.deployer] test_command is not a command line (No closing quotation)"),
    ({"test_command": " "}, "[tool.deployer] test_command must be a non-empty string"),
    ({"test_command": "python\0"}, "[tool.deployer] test_command holds a NUL character, which no command line can"),
    ({"test_command": "python emulator_check.py && echo done"},  # once: ERROR: file or directory not found: &&
     "[tool.deployer] test_command has the shell's '&&', but it runs without a shell (split into words, then run as one "
     "program): put the commands in a script (test_command = \"sh run_tests.sh\"), or give them to a shell "
     "(test_command = \"sh -c '... && ...'\")"),
    ({"test_command": "python emulator_check.py 2>&1 | tee out.txt"}, "[tool.deployer] test_command has the shell's '>&'"),
    ({"test_command": "python emulator_check.py;echo done"}, "[tool.deployer] test_command has the shell's ';'"),
    ({"test_command": "python emulator_check.py < /dev/null"}, "[tool.deployer] test_command has the shell's '<'"),
    ({"test_command": "cd {package} && python -m pytest tests"},  # once: cannot run cd
     "[tool.deployer] test_command starts with cd, a shell's own command, but it runs without a shell, in the project's "
     "folder (where pyproject.toml is): name the paths from there (python -m pytest {package}/tests), or give the commands "
     "to a shell (test_command = \"sh -c 'cd ... && ...'\")"),
    ({"test_command": "PYTHONPATH=. python -m pytest tests"},  # once: cannot run PYTHONPATH=.
     "[tool.deployer] test_command starts with PYTHONPATH=..., a variable a shell would set, but it runs without a "
     "shell: set it with env (test_command = \"env PYTHONPATH=. python -m pytest tests\")"),
    ({"test_timeout": 0}, "[tool.deployer] test_timeout must be at least 1"),
    ({"test_timeout": "60"}, "[tool.deployer] test_timeout must be a whole number"),
    ({"package": "pk\0g"}, "[tool.deployer] package holds a NUL character, which no path can"),
    ({"project": "a/b"}, "[tool.deployer] project must be a UbiOps name: lowercase letters, digits and dashes"),
    ({"deployment": "a/b"}, "[tool.deployer] deployment must be a UbiOps name: lowercase letters, digits and dashes"),
    ({"emulator_version": "../x"}, "[tool.deployer] emulator_version must be a UbiOps name"),
    ({"sample_input": 3}, "[tool.deployer] sample_input must be a table of the input fields (sample_input = { name = value, ... }), "
                          "or the text of a plain-text deployment"),
    ({"sample_input": ""}, "[tool.deployer] sample_input is empty: give the text to send, or leave sample_input out"),
])
def test_config_errors_are_one_line_naming_the_key(project, settings, message):
    project.configure(**settings)
    result = project.run("package")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


@pytest.mark.parametrize("command", ["sh -c 'cd pkg && python -m pytest tests'", 'python -m pytest -k "a or b" "x&&y"',
                                     "python -m pytest tests/test_x.py::test_y --junitxml=out.xml"])
def test_a_test_command_whose_shell_syntax_is_quoted_is_taken(command):
    """Operators a shell's own `-c` takes, or quoted as words, are the program's to read."""
    assert CHECKS["test_command"](command) is None


@pytest.mark.parametrize("content, message", [
    (b"tool = 5\n", "tool must be a table"),
    (b"[tool]\ndeployer = 5\n", "tool.deployer must be a table"),
    (b'[tool]\ndeployer = "face"\n', "tool.deployer must be a table"),
    ('[tool.deployer]\npackage = "pkg"\n'.encode("utf-16"), "not UTF-8 text (byte 0 cannot be decoded): save it as UTF-8"),
], ids=["tool", "tool.deployer", "tool.deployer-string", "utf-16"])
def test_a_pyproject_the_deployer_cannot_use_is_one_line(project, content, message):
    """A tool entry that is not a table, or a file that is not UTF-8 (once a UnicodeDecodeError traceback)."""
    (project.root / "pyproject.toml").write_bytes(content)
    result = project.run("package")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_a_missing_token_is_one_line(project):
    result = project.run("status", token="")
    assert result.stderr.strip().startswith("deployer: error: UBIOPS_API_TOKEN is not set")


def test_check_into_a_pipe_closed_after_its_first_line_goes_on_to_its_end(project):
    """`python -m deployer check | head -1`: the lines after the reader left are dropped (each once
    ended the command with a BrokenPipeError traceback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UBIOPS_", "EMULATOR_"))}
    process = subprocess.Popen([sys.executable, "-m", "deployer", "check"], cwd=project.root, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().startswith("package ")
    process.stdout.close()  # before the emulator the check starts has even answered
    _, errors = ended(process, DEPLOYER_SECONDS)
    assert (process.returncode, errors) == (0, "")


@pytest.mark.parametrize("command", ["pytest -q -p no:cacheprovider test_served.py",
                                     "python3 -m pytest -q -p no:cacheprovider test_served.py"])
def test_a_test_command_naming_pytest_or_python3_runs_in_the_deployers_python(project, command):
    """Only a literal `python` was the deployer's: `pytest` or `python3` ran another Python, without the
    emulator's pytest plugin (fixture 'ubiops_emulator' not found). PATH here leaves the venv out, as a
    shell that has not activated it does."""
    (project.root / "test_served.py").write_text(
        "import os, sys\n\ndef test_served(ubiops_emulator):\n"
        f"    assert os.path.realpath(sys.prefix) == os.path.realpath(os.environ['VIRTUAL_ENV']) == {os.path.realpath(sys.prefix)!r}\n"
        "    assert ubiops_emulator.request({'x': 21})['result'] == {'y': 42}\n")
    project.configure(test_command=command)
    result = project.run("check", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   emulator tests: 1 passed" in result.stdout


def test_check_reports_the_runners_summary_whatever_comes_after_on_stderr(project):
    """A library logging on stderr as the test process exits must not replace pytest's summary line."""
    (project.root / "emulator_check.py").write_text(
        "import atexit, sys\natexit.register(lambda: print('W0000 a native library says goodbye', file=sys.stderr))\n"
        "print('3 passed in 0.01s')\n")
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   emulator tests: 3 passed in 0.01s (" in result.stdout


HASH = "sha256:" + "1" * 64


@pytest.mark.parametrize("content, expected", [
    (f"six==1.16.0 \\\n    --hash={HASH} \\\n    --hash={HASH}\n    # via -r requirements.in\nidna==3.7\n",
     ["six==1.16.0", "idna==3.7"]),  # pip-compile --generate-hashes
    (f"six==1.16.0 --hash={HASH}\n", ["six==1.16.0"]),
    ("./wheels/mylib-1.0-py3-none-any.whl\n", ["./wheels/mylib-1.0-py3-none-any.whl"]),
    ("./src/mylib\n", ["./src/mylib"]),
    ("mylib-1.0-py3-none-any.whl\n", ["mylib-1.0-py3-none-any.whl"]),
    ("git+https://github.com/org/mylib.git@v1#egg=mylib\n", ["git+https://github.com/org/mylib.git@v1#egg=mylib"]),
    ("https://example.com/x-1.0-py3-none-any.whl ; python_version >= '3.9'\n",
     ["https://example.com/x-1.0-py3-none-any.whl ; python_version >= '3.9'"]),
    ("mylib @ https://example.com/mylib-1.0.tar.gz\n", ["mylib @ https://example.com/mylib-1.0.tar.gz"]),
    ("numpy==${NUMPY_VERSION}\n", ["numpy==${NUMPY_VERSION}"]),
    ("-r other.txt\n--index-url https://example.com/simple\n-e ./src/mylib\nsix  # a comment\n#six==oops\n", ["six"]),
    ("# a comment ending in \\\nsix\n", ["six"]),
], ids=["hashes-continued", "hash-on-the-line", "wheel-path", "folder", "wheel-name", "vcs", "url-with-marker",
        "pep508-url", "environment-variable", "options-and-comments", "continued-comment"])
def test_requirements_pip_accepts_are_accepted(tmp_path, content, expected):
    """pip-compile's hashes, paths, URLs and VCS URLs were each "not a requirement" to `check`."""
    (tmp_path / "requirements.txt").write_text(content)
    assert read_requirements(tmp_path) == expected


def test_requirements_a_build_may_resolve_otherwise_are_the_unpinned_ones():
    """Pinned: `==X` (not `==X.*`) or `===X`, whatever else the specifier says; a URL, a path or a
    `${VARIABLE}` line points at what it installs."""
    assert unpinned(["six", "numpy>=1.0", "pillow==13.0.0", "x==1.*", "y===1.0", "z[extra]==2.0 ; python_version > '3'",
                     "a>=0.5,==1.0", "mylib @ https://example.com/mylib-1.0.tar.gz", "./x.whl",
                     "numpy==${NUMPY_VERSION}", "b~=1.4"]) == ["six", "numpy>=1.0", "x==1.*", "b~=1.4"]


def test_check_notes_requirements_not_pinned_to_one_version(project):
    """`joblib>=1.0` passed silently: the emulator's cached environment keeps the release it installed
    first, while UbiOps' build resolves the line again the day it builds, so what was tested may not be
    what runs there."""
    (project.package / "requirements.txt").write_text("joblib>=1.0\n")
    result = project.run("check")
    assert result.returncode == 0, result.stdout
    assert ("note requirements.txt: 1 requirement(s); not pinned to one version: joblib>=1.0: the emulator's "
            "environment keeps the release it installed first, UbiOps' build installs the newest it finds that day, "
            "so the two may differ (pin with ==)") in result.stdout
    (project.package / "requirements.txt").write_text("joblib==1.6.0\n")
    pinned = project.run("check")
    assert pinned.returncode == 0, pinned.stdout
    assert "ok   requirements.txt: 1 requirement(s)\n" in pinned.stdout


def test_the_places_on_disk_requirements_name_are_read_and_names_and_urls_are_not(tmp_path):
    """`contract.requirements`: the emulator keys its cache by what these hold, and refuses those out
    of the package; a name, a URL or a `${VARIABLE}` is none of them."""
    (tmp_path / "requirements.txt").write_text(
        "six~=1.16\nnumpy==${NUMPY_VERSION}\ngit+https://github.com/org/mylib.git@v1#egg=mylib\n"
        "-e git+https://github.com/org/other.git#egg=other\n-i https://example.com/simple\n"
        "x @ https://example.com/x-1.0.tar.gz\n--find-links https://example.com/wheels\n"
        "-rbase.txt\n--find-links=wheels\n-e src/mylib[dev]\nmylib @ file:wheels/mylib-1.0-py3-none-any.whl\n"
        "./x.whl#egg=x ; python_version >= '3.9'\n--extra-index-url file:index\n")
    (tmp_path / "base.txt").write_text("-c base.txt\n")  # includes itself: read once
    assert [(r.option, r.path.relative_to(tmp_path).as_posix()) for r in file_references(tmp_path)] == [
        ("-r", "base.txt"), ("-c", "base.txt"), ("-f", "wheels"), ("-e", "src/mylib"),
        ("", "wheels/mylib-1.0-py3-none-any.whl"), ("", "x.whl"), ("-i", "index")]


@pytest.mark.parametrize("bom, encoding", [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                           (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF32_LE, "utf-32-le")],
                         ids=["utf-8", "utf-16-le", "utf-16-be", "utf-32-le"])
def test_requirements_are_decoded_by_their_bom_as_pip_does(tmp_path, bom, encoding):
    """Notepad's UTF-8 (the BOM was part of the first requirement's name) and PowerShell's UTF-16 (not UTF-8: a traceback)."""
    (tmp_path / "requirements.txt").write_bytes(bom + "six==1.16.0\nidna\n".encode(encoding))
    assert read_requirements(tmp_path) == ["six==1.16.0", "idna"]


@pytest.mark.parametrize("content, message", [
    (b"six==1.16.0\nna\xefve==1\n", "requirements.txt is not UTF-8 text (byte 14 cannot be decoded): save it as UTF-8"),
    (b"# -*- coding: klingon -*-\nsix\n", "requirements.txt declares the encoding 'klingon', which does not exist"),
    (b"six\nnumpy==2.*,<<3\n", "requirements.txt line 2: 'numpy==2.*,<<3' is not a requirement"),
], ids=["not-utf-8", "unknown-coding", "not-pep-508"])
def test_requirements_pip_cannot_read_are_one_line(tmp_path, content, message):
    (tmp_path / "requirements.txt").write_bytes(content)
    with pytest.raises(PackageCheckError, match=re.escape(message)):
        read_requirements(tmp_path)


def test_a_coding_cookie_names_the_requirements_encoding(tmp_path):
    (tmp_path / "requirements.txt").write_bytes("# -*- coding: latin-1 -*-\nsix  # by Benjamin Peterson, \xe9\n".encode("latin-1"))
    assert read_requirements(tmp_path) == ["six"]


@pytest.mark.parametrize("content", [
    codecs.BOM_UTF8 + DEPLOYMENT_PY.encode(),  # Notepad's UTF-8
    b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + DEPLOYMENT_PY.encode(),
], ids=["bom", "coding-cookie"])
def test_a_deployment_py_python_reads_is_read(tmp_path, content):
    """A BOM made `ast.parse` of the text fail ("invalid non-printable character U+FEFF")."""
    (tmp_path / "deployment.py").write_bytes(content)
    check_deployment_class(tmp_path)


def test_check_passes_a_deployment_py_saved_with_a_bom(project):
    """End to end: the emulator's loader imports it, and so does UbiOps'."""
    (project.package / "deployment.py").write_bytes(codecs.BOM_UTF8 + DEPLOYMENT_PY.encode())
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr


SECRET_NAME, SECRET = "DEPLOYER_TEST_SECRET", "deployer-secret-value-7e41b0"


def test_a_package_that_does_not_start_shows_the_emulators_log_without_secrets(project):
    """The reason said "see the emulator log", a log that went with the check's scratch folder: its end,
    the traceback, is shown (a secret the deployment printed masked)."""
    (project.package / "helper.py").write_text("def load():\n    raise RuntimeError('weights missing')\n")
    (project.package / "deployment.py").write_text(
        f"import os\nimport helper\n\nclass Deployment:\n    def __init__(self):\n"
        f"        print('the secret is', os.environ['{SECRET_NAME}'])\n        helper.load()\n\n"
        "    def request(self, data):\n        return data\n")
    project.configure(secrets=[SECRET_NAME])
    result = project.run("check", env={SECRET_NAME: SECRET})
    assert result.returncode == 1
    log = result.stdout.split("the end of the emulator's log:\n", 1)[1]
    assert "helper.load()" in log and 'raise RuntimeError(\'weights missing\')' in log, result.stdout
    assert "RuntimeError: weights missing" in log and "the secret is ***" in log
    assert "FAIL emulator: the zip does not start" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_a_failed_sample_request_shows_the_emulators_log(project):
    (project.package / "deployment.py").write_text(
        "class Deployment:\n    def request(self, data):\n        if data['x'] == 3:\n"
        "            raise ValueError('three is not taken')\n        return {'y': data['x'] * 2}\n")
    result = project.run("check")
    assert result.returncode == 1
    log = result.stdout.split("the end of the emulator's log:\n", 1)[1]
    assert "raise ValueError('three is not taken')" in log and "ValueError: three is not taken" in log, result.stdout
    assert "FAIL sample request: failed: " in log
    assert "(its input: [tool.deployer] sample_input in pyproject.toml)\n" in log, "where to change the input"


def test_tests_that_cannot_import_a_requirement_are_told_to_run_make_package_dev(project):
    """The package's tests run in the deployer's Python (.venv), which has requirements.txt's packages only
    once `make package-dev` put them there: a test that loaded the model failed with ModuleNotFoundError,
    without a word on why, while the emulator served the package in its own environment."""
    local_wheel(project.package / "wheels")
    (project.package / "requirements.txt").write_text("mylib @ ./wheels/mylib-1.0-py3-none-any.whl\n")
    (project.root / "emulator_check.py").write_text("import mylib\n")
    result = project.run("check")
    assert result.returncode == 1, result.stdout
    assert "ModuleNotFoundError: No module named 'mylib'" in result.stdout
    assert (f"  hint: the tests could not import mylib, and the Python they run in ({sys.executable}) lacks "
            "requirements.txt's mylib @ ./wheels/mylib-1.0-py3-none-any.whl: `make package-dev` installs the package's "
            f"requirements there (or {sys.executable} -m pip install -r pkg/requirements.txt)\n") in result.stdout, result.stdout
    (project.root / "emulator_check.py").write_text("import no_such_module\n")
    (project.package / "requirements.txt").write_text("# nothing to install\n")
    result = project.run("check")
    assert result.returncode == 1 and "No module named 'no_such_module'" in result.stdout
    assert "hint:" not in result.stdout, "a module no requirement of the package's is missing from this Python"


def test_a_request_failing_in_the_tests_shows_the_emulators_log(project):
    """The test saw only "An exception occurred in the request. See the logs for details.": the
    traceback is in the emulator's log, which went with the check's scratch folder."""
    (project.package / "deployment.py").write_text(
        "class Deployment:\n    def request(self, data):\n        return {'y': data['x'] // (data['x'] - 21)}\n")
    result = project.run("check")
    assert result.returncode == 1
    assert "FAIL emulator tests:" in result.stdout
    log = result.stdout.split("the end of the emulator's log:\n", 1)[1]
    assert "ZeroDivisionError" in log and "data['x'] // (data['x'] - 21)" in log, result.stdout


def test_failed_tests_show_their_failure_whatever_they_print_on_stderr(project):
    """40 lines a library logs on stderr at exit (MediaPipe's glog) pushed pytest's failure details off."""
    (project.root / "emulator_check.py").write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: print('W0000 a native library says goodbye\\n' * 40, file=sys.stderr))\n"
        "print('E   AssertionError: the detail that matters')\nprint('1 failed in 0.01s')\nsys.exit(1)\n")
    result = project.run("check")
    assert result.returncode == 1
    assert "E   AssertionError: the detail that matters" in result.stdout, result.stdout
    assert "W0000 a native library says goodbye" in result.stdout
    assert "FAIL emulator tests: 1 failed in 0.01s (" in result.stdout


def test_only_the_end_of_the_tests_output_is_read(tmp_path):
    """A test printing ~220 MB took the deployer to 860 MB: the output was read whole, and decoded."""
    from deployer.checks import TEST_OUTPUT_BYTES, _printed
    with (tmp_path / "output").open("w+b") as stream:
        for _ in range(32):
            stream.write(b"x" * (1024**2 - 1) + b"\n")
        stream.write(b"1 failed in 0.01s\n")
        tracemalloc.start()
        try:
            text = _printed(stream)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 4 * TEST_OUTPUT_BYTES, f"{peak / 1024**2:.0f} MiB at the peak"
    assert text == "1 failed in 0.01s\n"  # without the line cut at the start


def test_the_runners_summary_is_quoted_at_most_in_part(project):
    (project.root / "emulator_check.py").write_text("import sys\nprint('F' * 1_000_000)\nsys.exit(1)\n")
    result = project.run("check")
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if "FAIL emulator tests:" in line)
    assert len(line) < 400 and "F…" in line, line[:500]


def test_a_test_printing_bytes_that_are_not_utf8_is_reported(project):
    """They ended `check` with a UnicodeDecodeError traceback."""
    (project.root / "emulator_check.py").write_text(
        "import sys\nsys.stdout.buffer.write(b'caf\\xe9 \\xff\\n')\nsys.stderr.buffer.write(b'\\xfe\\n')\n"
        "print('1 failed in 0.01s', flush=True)\nsys.exit(1)\n")
    result = project.run("check")
    assert result.returncode == 1
    assert "caf\ufffd \ufffd" in result.stdout and "FAIL emulator tests: 1 failed in 0.01s (" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_failing_test_printing_the_emulators_token_is_shown_without_it(project):
    """The tests' output is shown when they fail: a test printing the headers it sent (as a failing
    assertion's report does) showed the check's emulator's token, which the check masked not."""
    (project.root / "emulator_check.py").write_text(
        "import os, pathlib\ntoken = os.environ['EMULATOR_TOKEN']\npathlib.Path('token-given').write_text(token)\n"
        "print({'Authorization': f'Token {token}'})\nprint('1 failed in 0.01s')\nraise SystemExit(1)\n")
    result = project.run("check")
    token = (project.root / "token-given").read_text()
    assert result.returncode == 1 and "{'Authorization': 'Token ***'}" in result.stdout, result.stdout
    assert token not in result.stdout + result.stderr


def test_a_pyproject_without_the_deployer_section_is_one_line_naming_it(project):
    """A misspelled `[tool.deployr]` silently gave the defaults: another project, deployment and package."""
    (project.root / "pyproject.toml").write_text('[tool.deployr]\nproject = "mine"\n\n[tool.ruff]\nline-length = 100\n')
    result = project.run("package")
    assert (result.returncode, result.stderr.strip()) == (
        1, f"deployer: error: {project.root / 'pyproject.toml'} has no [tool.deployer] section (its [tool] tables: "
           "deployr, ruff): the deployer's settings (project, deployment, package, …) go there")


@pytest.mark.parametrize("section, missing", [
    ('project = "iris"\n', 'deployment, package (the template\'s defaults, deployment = "face-profile", package = '
                            '"deployment_package", would push another deployment)'),
    ('deployment = "iris"\npackage = "pkg"\n', 'project (the template\'s defaults, project = "face-profile", would push'),
], ids=["project-only", "no-project"])
@pytest.mark.parametrize("command", [("package",), ("push", "--dry-run")], ids=["package", "push"])
def test_a_section_without_the_names_is_one_line_naming_them(project, section, missing, command):
    """A section that left out `deployment` (or `project`, `package`) took the template's: push --dry-run
    planned deployments_create('iris', {'name': 'face-profile', …})."""
    (project.root / "pyproject.toml").write_text(f"[tool.deployer]\n{section}")
    result = project.run(*command)
    assert (result.returncode, result.stderr.strip().splitlines()[0]) == (1, result.stderr.strip()), result.stderr
    assert result.stderr.startswith(f"deployer: error: {project.root / 'pyproject.toml'}: [tool.deployer] must set "
                                    f"project, deployment and package; it has no {missing}"), result.stderr
    assert not (project.root / "dist").exists()


def test_the_emulator_still_takes_the_defaults_a_section_leaves_out(project):
    """Only the deployer requires the names: the emulator (and a package's plain pytest) serve under the
    defaults, as before."""
    (project.root / "pyproject.toml").write_text('[tool.deployer]\nsecrets = ["API_KEY"]\n')
    config = load_config(project.root)
    assert (config.project, config.deployment, config.package, config.secrets) == (
        "face-profile", "face-profile", "deployment_package", ("API_KEY",))
    (project.root / "pyproject.toml").unlink()
    assert load_config(project.root).deployment == "face-profile"


def test_this_repositorys_section_sets_the_names_the_deployer_requires():
    assert set(REQUIRED_KEYS) <= set(deployer_table(ROOT / "pyproject.toml") or {})


@pytest.mark.parametrize("command", ["package", "check", "status"])
def test_no_pyproject_at_all_is_one_line(project, command):
    """Without any pyproject.toml the deployer used the defaults: push --dry-run planned another deployment."""
    (project.root / "pyproject.toml").unlink()
    result = project.run(command)
    assert (result.returncode, result.stderr.strip()) == (
        1, f"deployer: error: no pyproject.toml in {project.root} or any folder above it: the deployer's settings go in "
           "its [tool.deployer] section (`python -m deployer init` writes one)")
    assert not (project.root / "dist").exists()


def _zip_whole_files(source: Path, output: Path) -> None:
    """The zip as build_zip wrote it before it streamed: each file read whole, then `writestr`."""
    output.parent.mkdir(parents=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in package_files(source, output.parent):
            entry = zipfile.ZipInfo(f"deployment_package/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o100644 << 16
            entry.create_system = 3
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, (source / name).read_bytes(), compresslevel=9)


def test_files_streamed_into_the_zip_give_the_bytes_of_whole_files(tmp_path):
    """Streaming must not change a package's zip, so its SHA-256 still names what was tested."""
    source = tmp_path / "pkg"
    (source / "weights").mkdir(parents=True)
    (source / "deployment.py").write_text(DEPLOYMENT_PY)
    (source / "empty.txt").write_bytes(b"")
    (source / "weights" / "random.bin").write_bytes(os.urandom(3 * 1024**2 + 12345))
    (source / "weights" / "zeros.bin").write_bytes(bytes(2 * 1024**2))
    (source / "weights" / "text.csv").write_bytes(b"".join(b"%d,%d\n" % (i, i * i) for i in range(300_000)))
    build_zip(source, tmp_path / "streamed" / "a.zip")
    _zip_whole_files(source, tmp_path / "whole" / "a.zip")
    assert (tmp_path / "streamed" / "a.zip").read_bytes() == (tmp_path / "whole" / "a.zip").read_bytes()


def test_package_holds_no_file_whole_in_memory(project, monkeypatch):
    """The secrets' scan and the zip each read a file whole: ~3x the largest file at the peak."""
    (project.package / "weights.bin").write_bytes(os.urandom(24 * 1024**2))
    monkeypatch.setenv("UBIOPS_API_TOKEN", f"Token {TOKEN}")  # so that the files are scanned for it
    tracemalloc.start()
    try:
        build_bundle(DeployerConfig(root=project.root, deployment=project.deployment, package="pkg"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2, f"{peak / 1024**2:.0f} MiB at the peak"


def test_a_token_across_two_chunks_of_a_file_is_found(project):
    (project.package / "weights.bin").write_bytes(bytes(1024**2 - 5) + TOKEN.encode() + bytes(100))
    result = project.run("package")
    assert result.stderr.strip() == ("deployer: error: weights.bin contains the value of UBIOPS_API_TOKEN; "
                                     "remove it or list the file in .ubiops-ignore")


def test_a_new_zip_replaces_the_deployments_earlier_ones_but_those_in_use(project):
    """They piled up in dist/, one per change; a run's own zip (its check, copy and upload) is kept."""
    first = json.loads(project.run("--output", "json", "package").stdout)["path"]
    others = [project.root / "dist" / f"{project.deployment}-extra-0123456789ab.zip",  # another deployment's
              project.root / "dist" / "notes.txt"]
    for path in others:
        path.write_text("kept")
    (project.package / "deployment.py").write_text(DEPLOYMENT_PY.replace("= 2", "= 3"))
    in_use = build_bundle(DeployerConfig(root=project.root, deployment=project.deployment, package="pkg"))
    assert not Path(first).exists(), "the earlier zip stayed"
    (project.package / "deployment.py").write_text(DEPLOYMENT_PY.replace("= 2", "= 4"))
    latest = json.loads(project.run("--output", "json", "package").stdout)["path"]
    assert sorted((project.root / "dist").iterdir()) == sorted([in_use.path, Path(latest), *others])
    del in_use  # its run is over: the next build removes its zip
    (project.package / "deployment.py").write_text(DEPLOYMENT_PY.replace("= 2", "= 5"))
    last = json.loads(project.run("--output", "json", "package").stdout)["path"]
    assert sorted((project.root / "dist").iterdir()) == sorted([Path(last), *others])


def test_a_link_to_a_folder_left_out_of_the_zip_is_warned_of(project):
    """Such a folder was left out silently (os.walk does not follow it, nor does UbiOps' zip_dir)."""
    (project.root / "shared").mkdir()
    (project.root / "shared" / "weights.bin").write_bytes(b"w")
    (project.package / "data").symlink_to(project.root / "shared")
    (project.package / "cache").symlink_to(project.root / "shared")
    (project.package / ".ubiops-ignore").write_text("cache\n")
    warning = ("WARNING: data/ is a link to a folder, left out of the zip (UbiOps' zip_dir leaves it out too): copy the "
               "folder into the package, or list it in .ubiops-ignore")
    packaged = project.run("package")
    assert packaged.returncode == 0 and packaged.stdout.splitlines()[0] == warning, packaged.stdout
    checked = project.run("check")
    assert checked.returncode == 0 and checked.stdout.splitlines()[1] == warning, checked.stdout
    assert "cache/" not in packaged.stdout + checked.stdout


def test_a_shared_lock_not_taken_closes_its_file_once(tmp_path, monkeypatch):
    """A lock whose `flock` failed closed its file, then closed the same number again when collected: by
    then the number of another open file."""
    path = tmp_path / "d-000000000000.zip"
    path.write_bytes(b"zip")

    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr("deployer.bundle.fcntl.flock", refuse)
    try:
        SharedLock(path)
    except OSError as exc:
        refused = exc  # its traceback keeps the half-made lock alive until it goes
    other = os.open(path, os.O_RDONLY)  # the number the refused lock had closed
    del refused
    gc.collect()
    assert os.read(other, 3) == b"zip", "the other file is still open"
    os.close(other)
