"""Packages reach the emulator as folders or as zips laid out as UbiOps takes them; a package that
cannot be served stops the emulator at start with a one-line reason, not a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from harness import (
    DEPLOYMENT,
    PACKAGES,
    PROJECT,
    ROOT,
    free_port,
    package_folder,
    start_emulator,
    wait_for_log,
    zip_bytes,
)
from ubiops.utils import zip_dir

from contract.archive import FILES_AT_ROOT
from contract.config import load_config
from emulator import launcher

CONFIG = load_config(ROOT)


def serve_and_request(package: Path, tmp_path: Path, data, *args: str):
    emulator = start_emulator(package, tmp_path, *args)
    try:
        return emulator.sdk().deployment_requests_create(PROJECT, DEPLOYMENT, data=data)
    finally:
        emulator.stop()


def test_zip_made_by_the_sdk_is_served(tmp_path):
    archive, folder = tmp_path / "plain.zip", tmp_path / "plain"
    # A copy without the bytecode an earlier run may have left (the SDK's zip_dir would take it along)
    shutil.copytree(PACKAGES / "plain", folder, ignore=shutil.ignore_patterns("__pycache__"))
    zip_dir(str(folder), str(archive))
    assert zipfile.ZipFile(archive).namelist() == ["deployment_package/deployment.py"]
    assert serve_and_request(archive, tmp_path, "zip").result == "ZIP"


def test_a_folder_served_as_it_is_names_what_its_zip_leaves_out(tmp_path):
    """A folder is served as it is, its ignored files and linked folders readable; UbiOps gets the zip,
    which leaves them out, so the log says which (before, nothing told the two apart)."""
    package = tmp_path / "package"
    shutil.copytree(PACKAGES / "plain", package)
    (package / "local_helper.py").write_text("HELPER = 1\n")
    (package / ".ubiops-ignore").write_text("local_helper.py\nnotes/\n")
    (package / "notes").mkdir()
    (package / "notes" / "todo.txt").write_text("a note\n")
    (package / ".env").write_text("SECRET=1\n")
    (package / ".env.local").write_text("SECRET=1\n")
    (tmp_path / "outside").mkdir()
    (package / "data").symlink_to(tmp_path / "outside", target_is_directory=True)
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "deployment.cpython-311.pyc").write_bytes(b"")
    for cache in (".venv", ".pytest_cache"):  # neither zipped nor copied: not named
        (package / cache).mkdir()
        (package / cache / "x.py").write_text("")
    emulator = start_emulator(package, tmp_path)
    try:
        assert ("served from the folder, with what its zip leaves out and UbiOps will not have: "
                ".env, .env.local, data/, local_helper.py, notes/\n") in emulator.log()
    finally:
        emulator.stop()


WRITES_TO_ITS_FOLDER = """
import os

class Deployment:
    def __init__(self, base_directory):
        self.base_directory = base_directory

    def request(self, data):
        with open("prediction.csv", "w") as out:  # UbiOps' own pattern: a file in the working directory
            out.write(f"x,y\\n{data['x']},{2 * data['x']}\\n")
        with open(os.path.join("linked", "shared.txt")) as linked, open("alias.txt") as alias:
            read = [linked.read(), alias.read()]
        return {"prediction": "prediction.csv", "where": os.getcwd(), "base_directory": self.base_directory,
                "seen": sorted(os.listdir(".")), "read": read}
"""


def test_a_package_folder_is_served_from_a_copy_that_its_writes_never_leave(tmp_path):
    """Before, the folder itself was the instances' working directory and `base_directory`: a
    deployment writing its output there, as UbiOps' examples do, wrote into the developer's folder
    (which the next `deployer package` zipped). Each revision now runs in its own copy, as on UbiOps,
    with what the folder serves (an ignored file, a linked folder, a link inside it), removed at stop."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shared.txt").write_text("from the linked folder")
    package = package_folder(
        tmp_path / "package", WRITES_TO_ITS_FOLDER, '[{"name": "x", "data_type": "int"}]',
        '[{"name": "prediction", "data_type": "file"}, {"name": "where", "data_type": "string"}, '
        '{"name": "base_directory", "data_type": "string"}, {"name": "seen", "data_type": "array_string"}, '
        '{"name": "read", "data_type": "array_string"}]')
    (package / ".ubiops-ignore").write_text("notes.txt\n")
    (package / "notes.txt").write_text("a note")
    (package / "alias.txt").symlink_to("notes.txt")
    (package / "linked").symlink_to(outside, target_is_directory=True)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"")
    (package / ".env.local").write_text("SECRET=1\n")  # the zip leaves it out, the copy keeps it as it keeps .env
    for folder, marker in ((".venv", "x.py"), ("env", "pyvenv.cfg"), (".mypy_cache", "x.json")):  # as no zip holds them
        (package / folder).mkdir()
        (package / folder / marker).write_text("")
    files = sorted(path.name for path in package.iterdir())
    emulator = start_emulator(package, tmp_path)
    try:
        answer = emulator.request({"x": 3})
        assert answer["status"] == "completed", answer["error_message"]
        result = answer["result"]
        revision = emulator.sdk().deployment_versions_get(PROJECT, DEPLOYMENT, "v1").active_revision
        copy = emulator.data_dir.resolve() / "builds" / revision
        assert (result["where"], result["base_directory"]) == (str(copy), str(copy))
        assert emulator.download(answer, result["prediction"]) == b"x,y\n3,6\n"
        assert sorted(path.name for path in package.iterdir()) == files, "nothing written into the folder"
        assert [name for name in result["seen"] if name != "__pycache__"] == [
            ".env.local", ".ubiops-ignore", "alias.txt", "deployment.py", "linked", "notes.txt", "prediction.csv",
            "ubiops_input_spec.json", "ubiops_output_spec.json"]
        assert result["read"] == ["from the linked folder", "a note"]
        assert not (copy / "__pycache__" / "stale.cpython-311.pyc").exists(), "caches are not copied"
    finally:
        emulator.stop()
    assert not list((emulator.data_dir / "builds").iterdir()), "the copy is removed at stop"


def test_zip_with_several_folders_uses_deployment_package(tmp_path):
    archive = tmp_path / "several.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("docs/deployment.py", "raise SystemExit('the wrong folder was used')")
        zf.write(PACKAGES / "minimal" / "deployment.py", "deployment_package/deployment.py")
    assert serve_and_request(archive, tmp_path, "x").result == "x #1"


def test_a_zips_one_folder_beside_a_stray_file_is_the_package(tmp_path):
    """UbiOps' docs ask for one folder at the zip's root; a README beside it made the root the package,
    which has no deployment.py ("the package has no deployment.py", of a zip that holds one)."""
    archive = tmp_path / "with-readme.zip"
    archive.write_bytes(zip_bytes({"README.md": b"# my model\n",
                                   "my_model/deployment.py": (PACKAGES / "plain" / "deployment.py").read_bytes()}))
    assert serve_and_request(archive, tmp_path, "readme").result == "README"


@pytest.mark.parametrize("folder", ["", "deployment_package/"])
def test_zip_written_by_bsdtar_is_served(tmp_path, folder):
    """macOS' and Windows' `tar -a -cf package.zip .` write `./` and `./<path>` entries: `./x` is `x`."""
    archive = tmp_path / "bsdtar.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for directory in dict.fromkeys(["./", f"./{folder}"]):
            zf.writestr(directory, "")
        zf.write(PACKAGES / "plain" / "deployment.py", f"./{folder}deployment.py")
    assert serve_and_request(archive, tmp_path, "bsd").result == "BSD"


@pytest.mark.parametrize("folder", ["", "my_model/"])
def test_a_zip_with_its_files_at_the_root_is_served_with_a_warning(tmp_path, folder):
    """It was served with no word, where UbiOps' docs ask for one folder at the zip's root."""
    archive = tmp_path / "package.zip"
    archive.write_bytes(zip_bytes({f"{folder}deployment.py": (PACKAGES / "plain" / "deployment.py").read_bytes()}))
    emulator = start_emulator(archive, tmp_path)
    try:
        assert emulator.request("root")["result"] == "ROOT"
        assert (f"package.zip: {FILES_AT_ROOT}" in emulator.log()) == (folder == "")
    finally:
        emulator.stop()


def test_deployment_file_name_can_be_overridden(tmp_path):
    package = tmp_path / "renamed"
    package.mkdir()
    shutil.copy(PACKAGES / "plain" / "deployment.py", package / "serve.py")
    (package / "deployment.py").write_text("raise SystemExit('deployment.py should not be imported')\n")
    result = serve_and_request(package, tmp_path, "renamed", "--env", "SYS_DEPLOYMENT_FILE_NAME=serve.py").result
    assert result == "RENAMED"


@pytest.mark.parametrize("method, warning, error", [
    ("def predict(self, data):", "Deployment has neither request(self, data) nor requests(self, data)",
     "The deployment defines neither request() nor requests()."),
    ("def request(self):", "Deployment.request: UbiOps would call it with (data), which fails: too many positional arguments",
     "An exception occurred in the request. See the logs for details."),
], ids=["no-request-method", "request-without-data"])
def test_a_class_no_request_can_call_starts_with_a_warning_in_its_instances_log(tmp_path, method, warning, error):
    """`deployer check` refuses it; the emulator served it without a word, and every request failed."""
    package = package_folder(tmp_path / "package", f"class Deployment:\n    {method}\n        return 'x'\n", "[]", "[]")
    emulator = start_emulator(package, tmp_path)
    try:
        api = emulator.sdk()
        failed = api.deployment_requests_create(PROJECT, DEPLOYMENT, data="x")  # once the instance has started
        assert (failed.status, failed.error_message) == ("failed", error)
        assert api.deployment_versions_get(PROJECT, DEPLOYMENT, "v1").status == "available", "a warning, not a failure"
        wait_for_log(emulator, f"[{DEPLOYMENT}/v1 instance 1] warning: {warning}; every request to this deployment fails\n")
    finally:
        emulator.stop()


def run_emulator_expecting_failure(package: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "emulator", "--package", str(package), "--port", "1", "--data-dir", str(package.parent / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    return completed.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("entries, message", [
    ({"a/deployment.py": b"", "b/deployment.py": b""}, "the zip holds several folders (a, b) and none is named 'deployment_package'"),
    ({}, "the zip is empty: it holds no files"),
    ({"./": b"", "deployment_package/": b""}, "the zip is empty: it holds no files"),
], ids=["several folders", "empty", "only folders"])
def test_zip_without_one_package_folder_is_refused(tmp_path, entries, message):
    """Unsafe zips (slip, absolute, links, bombs) are in test_package_corpus; these are only ambiguous or empty."""
    archive = tmp_path / "package.zip"
    archive.write_bytes(zip_bytes(entries))
    assert message in run_emulator_expecting_failure(archive)


LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcd", "bcde", strict=True))
"""Aliases nested 5 deep ("billion laughs"): 59 049 values from 160 bytes (to `h`, 43 million: the server took
860 MB, the schema's error holding the whole document, and wrote a 254 MB log line)."""


@pytest.mark.parametrize("files, message", [
    ({"ubiops_input_spec.json": "[{]"}, "emulator: error: ubiops_input_spec.json: not valid JSON"),
    ({"ubiops_input_spec.json": '[{"name": "x", "data_type": "integer"}]'}, "field 'x' has data_type 'integer'; expected one of int,"),
    ({"ubiops_output_spec.json": '[{"name": "x", "data_type": "int"}, {"name": "x", "data_type": "int"}]'}, "field 'x' is defined twice"),
    ({"ubiops_input_spec.json": '[{"name": "x\\udcff", "data_type": "int"}]'},
     "ubiops_input_spec.json: the field list holds a string with a lone UTF-16 surrogate"),
    ({"ubiops.yaml": "environment_variables:\n  - lower=case\n"}, "emulator: error: ubiops.yaml: Environment variable definition must be in format"),
    ({"ubiops.yaml": "apt: [unclosed\n"}, "emulator: error: ubiops.yaml is not valid YAML"),
    ({"ubiops.yaml": LAUGHS}, "emulator: error: ubiops.yaml: its aliases (*name) expand it to more than 10000 values"),
    ({"ubiops.yaml": "a: &a [*a]\n"}, "emulator: error: ubiops.yaml: an alias (*name) in it holds itself"),
    ({"ubiops.yaml": 'environment_variables: ["A=x\\0y"]\n'},  # "\0" is YAML's NUL: os.environ cut the value there
     "emulator: error: ubiops.yaml: the value of environment variable A holds a NUL character, which no environment variable can"),
])
def test_package_with_invalid_declarations_is_refused(tmp_path, files, message):
    package = tmp_path / "package"
    package.mkdir()
    shutil.copy(PACKAGES / "plain" / "deployment.py", package)
    for name, text in files.items():
        (package / name).write_text(text)
    assert message in run_emulator_expecting_failure(package)


def test_missing_package_is_refused(tmp_path):
    assert run_emulator_expecting_failure(tmp_path / "nowhere") == (
        f"emulator: error: no package at {tmp_path / 'nowhere'}: give a package folder or a .zip")


@pytest.mark.parametrize("args, option, inside", [
    ([], "--data-dir", ".emulator-data"),  # the default, relative to the working folder: here the package
    (["--data-dir", "../data", "--environments-dir", "envs"], "--environments-dir", "envs"),
], ids=["default data folder", "environments folder"])
def test_a_folder_of_the_emulators_own_inside_the_package_folder_is_refused(tmp_path, args, option, inside):
    """Run from inside the package, `.emulator-data` landed in it: `--reload` restarted the instances every
    second on its logs' writes, and `deployer package` zipped it, with the secrets set through the API."""
    package = tmp_path.resolve() / "package"
    shutil.copytree(PACKAGES / "plain", package, ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run([sys.executable, "-m", "emulator", "--package", ".", "--port", str(free_port()), "--reload", *args],
                         cwd=package, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr.splitlines()[-1]) == (2, (
        f"python -m emulator: error: {option} {package / inside} is inside the package folder {package}: its files would "
        f"be served, watched by --reload and zipped with the package; give {option} a folder outside it, or run from the "
        "project's root"))
    assert [p.name for p in package.iterdir()] == ["deployment.py"]


@pytest.mark.parametrize("package, expected", [
    (PACKAGES / "echo", "echo"),
    (CONFIG.package_path, CONFIG.deployment),
])
def test_names_follow_the_package_unless_given(tmp_path, package, expected):
    """Another package than the configured one is not served under the configured deployment's name."""
    port = free_port()
    log = tmp_path / "emulator.log"
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--package", str(package), "--port", str(port),
                                "--data-dir", str(tmp_path / "data")], cwd=ROOT, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    emulator = launcher.Emulator(f"http://127.0.0.1:{port}", CONFIG.project, expected, process, log)
    try:
        launcher.wait_until_up(emulator)
        assert [d.name for d in emulator.sdk().deployments_list(CONFIG.project)] == [expected]
    finally:
        emulator.stop()
    assert f"as project {CONFIG.project}, deployment {expected}, version {CONFIG.emulator_version}" in emulator.log()
