"""Building a version's environment, in process: a build that hangs (a package index that accepts
the connection and never answers) is stopped, as a failed build, so nothing waits for it forever."""

from __future__ import annotations

import functools
import http.server
import logging
import os
import socket
import subprocess
import threading
import zipfile

import pytest

from emulator.environments import OWN_ENVIRONMENT
from emulator.runtime.python_envs import EnvironmentBuilder, EnvironmentBuildError, PythonEnvironment

pytestmark = pytest.mark.anyio


@pytest.fixture
def build_log(caplog) -> pytest.LogCaptureFixture:
    """The builder's log lines, the installer's output among them."""
    caplog.set_level(logging.INFO, logger="emulator.environments")
    return caplog


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


def package_with(tmp_path, requirements: str, **files: str):
    """A package folder holding `requirements` as its requirements.txt, and `files`."""
    package = tmp_path / "package"
    package.mkdir()
    (package / "requirements.txt").write_text(requirements)
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return PythonEnvironment(OWN_ENVIRONMENT, package)


LOUD_FAILURE = '''
import sys
for n in range(20000):
    print("noise", n, file=sys.stderr)
print("THE REAL REASON", file=sys.stderr)
sys.exit(1)
'''


async def test_an_installer_output_with_blank_lines_and_many_lines_is_read_to_its_end(tmp_path, build_log):
    """uv puts a blank line before a failing build's own output: reading stopped there, the reason was
    lost, and once the unread output filled the pipe the install (and the version) hung for good."""
    environment = package_with(tmp_path, "./loud\n", **{"loud/setup.py": LOUD_FAILURE})
    builder = EnvironmentBuilder(tmp_path / "environments", build_seconds=300)
    with pytest.raises(EnvironmentBuildError, match=r"installing requirements\.txt failed"):
        await builder.prepare(environment, {})
    assert "THE REAL REASON" in build_log.text and "noise 19999" in build_log.text


async def test_a_requirement_line_longer_than_a_read_fails_the_build_not_the_builder(tmp_path, build_log):
    """A line of uv's output past asyncio's 64 KiB line limit raised out of the builder: the version
    stayed `building` for ever."""
    environment = package_with(tmp_path, "x" * 100_000 + "==1\n")
    with pytest.raises(EnvironmentBuildError, match=r"installing requirements\.txt failed"):
        await EnvironmentBuilder(tmp_path / "environments").prepare(environment, {})
    assert "characters)" in build_log.text, "the long line, cut short in the log"


async def test_the_emulators_tokens_never_reach_the_installer(tmp_path, monkeypatch, build_log):
    """A requirement's URL may name an environment variable, which uv expands: the token would go to
    that host, and into the build's log and error message."""
    monkeypatch.setenv("EMULATOR_TOKEN", "s3cr3t-emulator-token")
    environment = package_with(tmp_path, "humanize @ http://127.0.0.1:9/${EMULATOR_TOKEN}/humanize-4.12.1-py3-none-any.whl\n")
    with pytest.raises(EnvironmentBuildError) as failed:
        await EnvironmentBuilder(tmp_path / "environments").prepare(environment, {})
    assert "s3cr3t-emulator-token" not in str(failed.value) and "s3cr3t-emulator-token" not in build_log.text


async def test_an_edit_of_an_included_requirements_file_builds_anew(tmp_path, build_log):
    environment = package_with(tmp_path, "-r base.txt\n", **{"base.txt": "# nothing yet\n"})
    builder = EnvironmentBuilder(tmp_path / "environments")
    first = await builder.prepare(environment, {})
    assert await builder.prepare(environment, {}) == first, "unchanged: from the cache"
    (environment.package_dir / "base.txt").write_text("# nothing yet, but edited\n")
    assert await builder.prepare(environment, {}) != first


async def test_a_uv_setting_in_the_package_does_not_steer_the_install(tmp_path):
    """pip on UbiOps reads no `uv.toml`: one naming an index that does not answer is ignored here too."""
    silent = socket.create_server(("127.0.0.1", 0))
    environment = package_with(tmp_path, "humanize==4.12.1\n",
                               **{"uv.toml": f'index-url = "http://127.0.0.1:{silent.getsockname()[1]}/simple/"\n'})
    try:
        await EnvironmentBuilder(tmp_path / "environments", build_seconds=120).prepare(environment, {})
    finally:
        silent.close()


async def test_a_version_missing_from_an_extra_index_is_found_on_pypi_as_pip_finds_it(tmp_path):
    """uv's own default searches only the first index that has a package at all: a pin the extra
    index lacks (the PyTorch CPU index pattern) failed here and installed on UbiOps."""
    index = tmp_path / "index"
    (index / "simple" / "humanize").mkdir(parents=True)
    (index / "simple" / "humanize" / "index.html").write_text(
        '<a href="humanize-1.0-py3-none-any.whl">humanize-1.0-py3-none-any.whl</a>')
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    environment = package_with(tmp_path, f"--extra-index-url http://127.0.0.1:{server.server_port}/simple/\nhumanize==4.12.1\n")
    try:
        await EnvironmentBuilder(tmp_path / "environments", build_seconds=120).prepare(environment, {})
    finally:
        server.shutdown()


LIB = "emulator_tests_mylib"
"""A project name no index has, so each form below installs the package's own copy."""
WHEEL = f"{LIB}-1.0-py3-none-any.whl"


def write_wheel(folder, value: str) -> None:
    """`folder/WHEEL`: version 1.0 of LIB, whose VALUE is `value` (a rebuild that kept its version)."""
    info = f"{LIB}-1.0.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / WHEEL, "w") as archive:
        archive.writestr(f"{LIB}/__init__.py", f"VALUE = {value!r}\n")
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {LIB}\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", f"{LIB}/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")


def write_source(folder, value: str) -> None:
    """`folder/mylib`: the source of LIB, whose VALUE is `value`."""
    source = folder / "mylib"
    (source / LIB).mkdir(parents=True, exist_ok=True)
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["uv_build>=0.8,<0.10"]\nbuild-backend = "uv_build"\n'
        f'[project]\nname = "{LIB}"\nversion = "1.0"\n[tool.uv.build-backend]\nmodule-root = ""\n')
    (source / LIB / "__init__.py").write_text(f"VALUE = {value!r}\n")


def value_in(python: str) -> str:
    """What LIB holds in the environment of `python`."""
    return subprocess.run([python, "-c", f"import {LIB}; print({LIB}.VALUE)"], capture_output=True, text=True,
                          cwd="/", check=True).stdout.strip()


@pytest.mark.parametrize("requirements, write", [
    (f"--find-links ./wheels\n{LIB}==1.0\n", write_wheel),
    (f"-f wheels\n{LIB}==1.0\n", write_wheel),
    (f"--no-index\n--find-links=wheels\n{LIB}\n", write_wheel),
    (f"{LIB} @ ./wheels/{WHEEL}\n", write_wheel),
    (f"{LIB} @ file:wheels/{WHEEL}\n", write_wheel),
    (f"./wheels/{WHEEL}\n", write_wheel),
    ("-e mylib\n", write_source),
], ids=["find-links", "f", "find-links-no-index", "at-path", "at-file-url", "path", "editable-without-dot"])
async def test_a_rebuilt_local_requirement_that_kept_its_version_builds_anew(tmp_path, requirements, write):
    """The cache was keyed by the requirements' text and the files of a bare path line only: a wheel
    found through `--find-links`, or named by `name @ ./…` or `name @ file:…`, rebuilt with new code
    and uploaded again went on answering with the old code (and uv's own cache kept a find-links
    wheel by its name). Each revision is unpacked in a folder of its own, as the emulator unpacks them."""
    builder = EnvironmentBuilder(tmp_path / "environments", build_seconds=300)
    for value in ("first", "second"):
        package = tmp_path / value
        package.mkdir()
        (package / "requirements.txt").write_text(requirements)
        write(package / "wheels" if write is write_wheel else package, value)
        python = await builder.prepare(PythonEnvironment(OWN_ENVIRONMENT, package), {})
        assert value_in(python) == value


async def test_a_rebuilt_wheel_in_the_same_folder_builds_anew(tmp_path):
    """`--package DIR` (and `--reload`): the same folder, the wheel in it rebuilt."""
    environment = package_with(tmp_path, f"--find-links ./wheels\n{LIB}==1.0\n")
    builder = EnvironmentBuilder(tmp_path / "environments", build_seconds=300)
    for value in ("first", "second"):
        write_wheel(environment.package_dir / "wheels", value)
        assert value_in(await builder.prepare(environment, {})) == value


@pytest.mark.parametrize("line, why", [
    ("{outside}/wheels/" + WHEEL, "is a path on this machine"),
    ("file://{outside}/wheels/" + WHEEL, "is a path on this machine"),
    (LIB + " @ file://{outside}/wheels/" + WHEEL, "is a path on this machine"),
    ("--find-links {outside}/wheels\n" + LIB + "==1.0", "is a path on this machine"),
    ("-e {outside}/mylib", "is a path on this machine"),
    ("../outside/wheels/" + WHEEL, "is outside the package"),
    ("-f ./wheels/../../outside/wheels\n" + LIB + "==1.0", "is outside the package"),
    ("-r base.txt", "base.txt line 1: {outside}/wheels/" + WHEEL + " is a path on this machine"),
], ids=["path", "file-url", "at-file-url", "find-links", "editable", "dot-dot", "find-links-dot-dot", "included"])
async def test_a_requirement_on_files_out_of_the_package_fails_the_build(tmp_path, line, why):
    """It installed here from the developer's disk; UbiOps builds the package from its own files alone,
    where it is not. The file is there, so only the rule fails the build."""
    outside = tmp_path / "outside"
    write_wheel(outside / "wheels", "from the developer's disk")
    write_source(outside, "from the developer's disk")
    environment = package_with(tmp_path, line.format(outside=outside) + "\n",
                               **{"base.txt": f"{outside}/wheels/{WHEEL}\n"})
    with pytest.raises(EnvironmentBuildError, match=r"(requirements|base)\.txt line 1: ") as failed:
        await EnvironmentBuilder(tmp_path / "environments", build_seconds=300).prepare(environment, {})
    assert why.format(outside=outside) in str(failed.value)
    assert not (tmp_path / "environments").exists() or not any((tmp_path / "environments").iterdir())


async def test_a_requirements_variable_is_filled_in_from_the_versions_variables_alone(tmp_path, monkeypatch, build_log):
    """uv filled `${WHEELDIR}` in from the developer's shell: the wheel installed from their disk, and
    `deployer check` passed, where UbiOps' build has only the version's variables and fails. Set by the
    version, the line is judged as filled in: a path on this machine."""
    write_wheel(tmp_path / "outside", "from the developer's disk")
    monkeypatch.setenv("WHEELDIR", str(tmp_path / "outside"))
    requirements = f"{LIB} @ file://${{WHEELDIR}}/{WHEEL}\n"
    environment = package_with(tmp_path, requirements)
    builder = EnvironmentBuilder(tmp_path / "environments", build_seconds=300)
    with pytest.raises(EnvironmentBuildError, match=r"installing requirements\.txt failed"):
        await builder.prepare(environment, {})
    assert "requirements.txt names ${WHEELDIR}, which the version's variables do not set" in build_log.text
    given = PythonEnvironment(OWN_ENVIRONMENT, environment.package_dir, variables={"WHEELDIR": str(tmp_path / "outside")})
    with pytest.raises(EnvironmentBuildError) as failed:
        await builder.prepare(given, {})
    assert str(failed.value) == (
        f"requirements.txt line 1: {requirements.strip()} (its ${{WHEELDIR}} filled in from the version's variables) is a "
        "path on this machine: UbiOps builds the package elsewhere, from its own files alone, where it does not exist; "
        "put it in the package and name it relative to requirements.txt (./wheels/x.whl, --find-links ./wheels)")


async def test_the_cache_follows_the_values_a_requirements_variable_is_filled_in_with(tmp_path):
    """The cache was keyed by the unfilled text: a changed variable went on serving the first wheel, and
    once built with the variable set, a start without it was served from the cache, where UbiOps' build fails."""
    environment = package_with(tmp_path, f"{LIB} @ ./${{WHEELS}}/{WHEEL}\n")
    for value in ("a", "b"):
        write_wheel(environment.package_dir / value, value)
    builder = EnvironmentBuilder(tmp_path / "environments", build_seconds=300)
    for value in ("a", "b"):
        given = PythonEnvironment(OWN_ENVIRONMENT, environment.package_dir, variables={"WHEELS": value})
        assert value_in(await builder.prepare(given, {})) == value
    with pytest.raises(EnvironmentBuildError, match=r"installing requirements\.txt failed"):
        await builder.prepare(environment, {})


def git_repository(folder) -> str:
    """A git repository of LIB's source in `folder`, as a `file://` URL."""
    write_source(folder, "from the developer's git")
    source = folder / "mylib"
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lib"]):
        subprocess.run(["git", *command], cwd=source, check=True, env={"PATH": os.environ["PATH"], "HOME": str(folder)})
    return source.as_uri()


async def test_the_developers_git_configuration_does_not_reach_the_installer(tmp_path, monkeypatch, build_log):
    """A global `url.….insteadOf` (or a credential helper: `gh auth setup-git`) installed a private
    `git+https://…` requirement here, which UbiOps' build, without them, cannot fetch."""
    (tmp_path / "gitconfig").write_text(
        f'[url "{git_repository(tmp_path)}"]\n\tinsteadOf = https://git.invalid/acme-private/mylib.git\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    environment = package_with(tmp_path, f"{LIB} @ git+https://git.invalid/acme-private/mylib.git\n")
    with pytest.raises(EnvironmentBuildError, match=r"installing requirements\.txt failed"):
        await EnvironmentBuilder(tmp_path / "environments", build_seconds=300).prepare(environment, {})
    assert "git.invalid" in build_log.text, "fetched from where the requirement says"


class PasswordIndex(http.server.SimpleHTTPRequestHandler):
    """A package index that serves only a caller with its password (`u:p`), and counts those."""

    served = 0

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Basic dTpw":
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Basic")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        PasswordIndex.served += 1
        super().do_GET()

    def log_message(self, *_args: object) -> None:
        pass


async def test_the_developers_netrc_does_not_reach_the_installer(tmp_path, monkeypatch):
    """uv read the developer's ~/.netrc (or $NETRC): an index that needs a password answered here, and
    not UbiOps' build."""
    project = tmp_path / "index" / "simple" / LIB.replace("_", "-")
    write_wheel(project, "from a private index")
    (project / "index.html").write_text(f'<a href="{WHEEL}">{WHEEL}</a>')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(PasswordIndex, directory=str(tmp_path / "index")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login u password p\n")
    (tmp_path / "netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    environment = package_with(tmp_path, f"--index-url http://127.0.0.1:{server.server_port}/simple/\n{LIB}==1.0\n")
    try:
        with pytest.raises(EnvironmentBuildError, match=r"installing requirements\.txt failed"):
            await EnvironmentBuilder(tmp_path / "environments", build_seconds=300).prepare(environment, {})
    finally:
        server.shutdown()
    assert PasswordIndex.served == 0, "the installer never had the password"


async def test_a_secret_a_requirement_names_is_masked_in_the_installers_output(tmp_path, build_log):
    """The version's variables reach the installer now, and a failed install quotes the URL it could not reach."""
    token = "s3cr3t-version-token"
    environment = package_with(tmp_path, f"{LIB} @ ./${{TOKEN}}/{WHEEL}\n")
    given = PythonEnvironment(OWN_ENVIRONMENT, environment.package_dir, variables={"TOKEN": token}, secrets=(token,))
    with pytest.raises(EnvironmentBuildError) as failed:
        await EnvironmentBuilder(tmp_path / "environments").prepare(given, {})
    assert "/***/" in build_log.text, "the path, as the installer quoted it"
    assert token not in str(failed.value) and token not in build_log.text
