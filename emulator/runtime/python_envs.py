"""Each version's own Python, built as UbiOps builds it: a fresh virtual environment of the base
environment's Python with the package's `requirements.txt` installed, so a package sees only what it
asks for, and a requirement that cannot be installed fails the build, not the first request.

Built with uv (a real, fast installer, from PyPI) and kept in a cache shared by every emulator on the
machine (`~/.cache/ubiops-emulator/environments`), one folder per hash of what went into it: the
interpreter, the requirements' text (with the values its `${NAME}`s are filled in with, and what a
requirement on the package's own files holds) and this builder's layout. The second start of a package is a
lookup. A file lock per environment lets emulators (and test runs) build the same one at once
safely; a folder without its `COMPLETE` marker is a build that was interrupted, and is rebuilt.

The installer gets the version's variables its requirements name, none of the developer's shell of
those names, and none of the developer's git or package credentials (`installer_environment`): UbiOps'
build has neither, so a requirement that installs here only through them would fail there.

Interpreters are found on the machine, never downloaded: `python3.X` on the PATH, pyenv's versions,
`/usr/bin` and `/usr/local/bin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import uv

from contract.apt import check_apt_packages
from contract.environments import CONDA_FILE, CONDA_NOT_BUILT, python_version
from contract.package import PackageCheckError
from contract.requirements import EDITABLE, FIND_LINKS, INCLUDES, RequirementFiles, filled_in_file, requirement_files
from contract.secrets import masked_forms, secret_forms
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.runtime import parent

log = logging.getLogger("emulator.environments")

LAYOUT = 2
"""Bumped when what goes into an environment changes, so older cached ones are not reused."""
COMPLETE = "COMPLETE"
LOCK_POLL_SECONDS = 0.2
PROBE_SECONDS = 10
KEY_ERROR_LINES = 6
"""How many of the installer's error lines make the build's `error_message`."""
REQUIREMENTS_FILE = "requirements.txt"
BUILD_SECONDS = 1800
"""An environment's build is stopped after this long, so nothing waits for it forever."""
NOT_INHERITED = (EMULATOR_TOKEN_VARIABLE, "UBIOPS_API_TOKEN", "UBIOPS_API_HOST", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
"""The emulator's own variables that the deployment's code and its requirements' installer do not
get: tokens never reach user code (a requirement's URL could name one), and the emulator's Python
paths are not the version's."""
MAX_LOG_LINE = 2000
"""An installer's line longer than this is cut short in the log (a requirement line can be any length)."""


CREDENTIALS = ("SSH_AUTH_SOCK", "SSH_ASKPASS", "GIT_ASKPASS", "GIT_SSH", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
               "GIT_CONFIG_COUNT")
"""The developer's variables through which git reaches credentials or configuration (an SSH agent, a
password prompt, `git -c` and GIT_CONFIG_KEY_n settings): the installer does not get them."""
ISOLATED = {
    "GIT_CONFIG_GLOBAL": os.devnull,  # ~/.gitconfig: a credential helper (`gh auth setup-git`), url.…insteadOf
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",  # a private repository fails at once rather than ask
    "GIT_SSH_COMMAND": f"ssh -F {os.devnull} -o IdentityAgent=none -o IdentitiesOnly=yes -o IdentityFile={os.devnull} "
                       "-o BatchMode=yes",  # no ~/.ssh keys or config, no agent
    "NETRC": os.devnull,  # uv's ~/.netrc
    "UV_CREDENTIALS_DIR": os.devnull,  # `uv auth login`'s store
    "UV_KEYRING_PROVIDER": "disabled",
}
"""What the installer is run with so that it reaches only what UbiOps' build reaches: none of the
developer's git configuration or credentials (a private `git+https://…` requirement installed here
through them, and failed on UbiOps). Proxies and certificates, the index settings (`UV_INDEX_URL`)
and uv's cache are the machine's, as they are needed to reach the package registries at all."""


def inherited_environment() -> dict[str, str]:
    """The emulator's environment without what is its own (NOT_INHERITED)."""
    return {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}


def installer_environment(named: Mapping[str, str | None]) -> dict[str, str]:
    """What uv runs with: the emulator's environment (`inherited_environment`) without the developer's
    git and package credentials (CREDENTIALS, ISOLATED), and for each `${NAME}` the requirements hold
    (`named`), the version's value or none: uv fills them in from its own environment, where the
    developer's shell set them (`WHEELDIR=/tmp/…`), and UbiOps' build has only the version's variables."""
    environment = {name: value for name, value in inherited_environment().items()
                   if name not in CREDENTIALS and not name.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
                   and name not in named}
    return {"UV_SYSTEM_CERTS": "1", **environment, **ISOLATED,
            **{name: value for name, value in named.items() if value is not None}}


def default_cache() -> Path:
    """`$XDG_CACHE_HOME/ubiops-emulator/environments`, shared by every emulator of this user."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ubiops-emulator" / "environments"


class EnvironmentBuildError(Exception):
    """The environment cannot be built; the message is the build's `error_message`."""


@dataclass(frozen=True)
class PythonEnvironment:
    """What a version's Python is made of: its base environment and its package's requirements."""

    base: str
    """The version's base environment, e.g. `python3-11`."""
    package_dir: Path
    apt_packages: tuple[str, ...] = ()
    """`ubiops.yaml`'s system packages: checked on this machine, not installed (`contract.apt`)."""
    adds_apt_sources: bool = False
    variables: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)
    """The variables the version's instances get (`emulator.state.instance_environment`): the only
    ones the requirements' `${NAME}`s are filled in from, as UbiOps' build has no others."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """The values of the secrets among them, masked in the installer's output (a requirement's URL
    may name one: `git+https://${GITHUB_TOKEN}@github.com/…`)."""

    @property
    def requirements(self) -> Path:
        return self.package_dir / REQUIREMENTS_FILE


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str


class EnvironmentBuilder:
    """Builds and caches the environments instances run in; `own_python`: none, every package runs
    in the emulator's own Python (`--own-python`)."""

    def __init__(self, cache_dir: Path | None = None, own_python: bool = False,
                 build_seconds: float = BUILD_SECONDS) -> None:
        self.cache_dir = (cache_dir or default_cache()).absolute()  # uv runs in other folders
        self.own_python = own_python
        self.build_seconds = build_seconds

    async def prepare(self, environment: PythonEnvironment, fields: Mapping[str, object]) -> str:
        """The Python executable an instance of `environment` runs, built first if need be.
        `fields` go on each log line (deployment, version)."""
        if self.own_python:
            return sys.executable
        try:
            wanted = python_version(environment.base)
        except ValueError as exc:
            raise EnvironmentBuildError(str(exc)) from None
        if (environment.package_dir / CONDA_FILE).is_file():
            log.warning("the package's %s, so the packages it names are missing", CONDA_NOT_BUILT, extra=fields)
        apt = await asyncio.to_thread(check_apt_packages, environment.apt_packages, environment.base,
                                      environment.adds_apt_sources)
        for warning in apt.warnings:
            log.warning("%s", warning, extra=fields)
        if apt.failures:
            raise EnvironmentBuildError("; ".join(apt.failures))
        interpreter = await asyncio.to_thread(find_python, wanted)
        has_requirements = environment.requirements.is_file()
        files, requirements = (await asyncio.to_thread(_requirements_text, environment) if has_requirements
                               else (RequirementFiles(), b""))
        for name in (name for name, value in files.variables.items() if value is None):
            log.warning("requirements.txt names ${%s}, which the version's variables do not set (or set empty): it stays "
                        "as written, as pip leaves it on UbiOps, whose build has only the version's variables", name,
                        extra=fields)
        folder = self.cache_dir / _key(interpreter, requirements)
        python = str(folder / "bin" / "python")
        async with _locked(folder.with_suffix(".lock")):
            if (folder / COMPLETE).is_file():
                log.info("environment %s (Python %s) from the cache: %s", environment.base, interpreter.version, folder,
                         extra=fields)
                return python
            try:
                async with asyncio.timeout(self.build_seconds):
                    await self._build(environment, files, interpreter, folder, fields)
            except TimeoutError:
                raise EnvironmentBuildError(f"installing the environment did not finish within {self.build_seconds:g} s "
                                            "(a package index that does not answer?); it was stopped") from None
        return python

    async def prepare_again(self, environment: PythonEnvironment, python: str, fields: Mapping[str, object]) -> str:
        """`python`, prepared for `environment` before, while its environment is still whole in the cache, else
        the environment `prepare` builds again: the cache may have been removed while instances ran (README:
        "rm -rf … when it has grown"), and each lost instance was then restarted on the missing interpreter
        for ever (FileNotFoundError)."""
        if self.own_python or (Path(python).parent.parent / COMPLETE).is_file():
            return python
        log.warning("the environment at %s is gone from the cache: building it again", Path(python).parent.parent,
                    extra=fields)
        return await self.prepare(environment, fields)

    async def _build(self, environment: PythonEnvironment, files: RequirementFiles, interpreter: Interpreter,
                     folder: Path, fields: Mapping[str, object]) -> None:
        started = time.monotonic()
        shutil.rmtree(folder, ignore_errors=True)
        has_requirements = environment.requirements.is_file()
        log.info("building environment %s (Python %s at %s)%s", environment.base, interpreter.version, interpreter.path,
                 " and installing requirements.txt" if has_requirements else "", extra=fields)
        try:
            await _uv(["venv", "--seed", "--quiet", "--python", interpreter.path, str(folder)], self.cache_dir, fields,
                      installer_environment({}))
            if has_requirements:
                with _filled_in(environment, files) as (requirements, renamed):
                    # Like pip on UbiOps: every index is searched for the best match (a version missing from
                    # an extra index is found on PyPI), and no uv setting in or above the package steers it.
                    await _uv(["pip", "install", "--python", str(folder / "bin" / "python"), "--index-strategy",
                               "unsafe-best-match", "--no-config", *_refreshed(files), "-r", requirements],
                              environment.package_dir, fields, installer_environment(files.variables),
                              secret_forms(environment.secrets), renamed)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / COMPLETE).write_text(json.dumps({"environment": environment.base, "python": interpreter.version,
                                                   "seconds": round(time.monotonic() - started, 1)}))
        log.info("environment %s built in %.1f s", environment.base, time.monotonic() - started, extra=fields)


def _requirements_text(environment: PythonEnvironment) -> tuple[RequirementFiles, bytes]:
    """What an environment is made of, as far as the package says: the text of requirements.txt, the
    values its `${NAME}`s are filled in with (the version's variables: a changed one builds anew, and
    one set once does not stand for one unset later), and what each place on disk it names holds
    (`contract.requirements`, as filled in): the files it includes, so that editing one builds anew;
    the folders it searches and the archives and folders it installs (`--find-links ./wheels`,
    `mylib @ ./wheels/x.whl`, `./src/mylib`), so that a wheel rebuilt with new code under the same
    version does too (a cached environment went on serving the first one's copy). An editable one
    (`-e ./mylib`) is also tied to its folder, which the environment runs from. EnvironmentBuildError
    for a place UbiOps' build would not have (an absolute path, or one out of the package)."""
    package_dir = environment.package_dir
    try:
        files = requirement_files(package_dir, environment.variables)
    except PackageCheckError as exc:
        raise EnvironmentBuildError(str(exc)) from None
    parts = [(package_dir / REQUIREMENTS_FILE).read_bytes()]
    if files.variables:
        parts.append(b"\0variables\0" + json.dumps(sorted(files.variables.items())).encode())
    for reference in files.references:
        if reference.option == EDITABLE:
            parts.append(b"\0editable\0" + os.fsencode(reference.path))
        if reference.path.exists():
            parts.append(b"\0" + reference.option.encode() + b"\0" + _digest(reference.path))
    return files, b"".join(parts)


@contextlib.contextmanager
def _filled_in(environment: PythonEnvironment, files: RequirementFiles) -> Iterator[tuple[str, dict[str, str]]]:
    """The requirements file to hand uv, relative to the package, and what messages must call the files
    named for uv (their names and the files'): requirements.txt as it is, or, when a `${NAME}` in it or in a
    file it includes has a value, copies of them with the values filled in anywhere in a line, as pip
    does (`contract.requirements.filled_in_file`): uv fills one in only within a URL, and `six==${V}` failed
    ("expected version to start with a number"). Each copy is made beside its file, so that the paths
    in it mean what they meant, readable by this user alone (a value may be a secret), and removed after."""
    if not any(value is not None for value in files.variables.values()):
        yield REQUIREMENTS_FILE, {}
        return
    package_dir = Path(os.path.abspath(environment.package_dir))
    originals = [package_dir / REQUIREMENTS_FILE, *(reference.path for reference in files.references
                                                     if reference.option in INCLUDES and reference.path.is_file())]
    prefix = f".emulator-{os.urandom(4).hex()}-"
    renamed = {path: prefix + path.name for path in originals}
    made: list[Path] = []
    try:
        for path, name in renamed.items():
            try:
                text = filled_in_file(path, environment.variables, renamed)
            except PackageCheckError as exc:
                raise EnvironmentBuildError(str(exc)) from None
            copy = path.with_name(name)
            descriptor = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            made.append(copy)
            with os.fdopen(descriptor, "w", encoding="utf-8") as sink:
                sink.write(text)
        yield renamed[originals[0]], {name: path.name for path, name in renamed.items()}
    finally:
        for copy in made:
            copy.unlink(missing_ok=True)


def _refreshed(files: RequirementFiles) -> list[str]:
    """uv's options to take the package's own archives anew from the folders it searches
    (`--find-links ./wheels`): uv keeps a wheel found there in its cache by its name, so a wheel
    rebuilt with new code under the same version installed the first one's code (pip on UbiOps has
    no cache)."""
    names = {name for reference in files.references if reference.option == FIND_LINKS and reference.path.is_dir()
             for file in reference.path.iterdir() if (name := _distribution(file.name))}
    return [option for name in sorted(names) for option in ("--refresh-package", name)]


def _distribution(file_name: str) -> str | None:
    """The project an archive's file name is of (`mylib-1.0-py3-none-any.whl`, `mylib-1.0.tar.gz`: mylib)."""
    if file_name.endswith(".whl"):
        return file_name.split("-", 1)[0]
    for suffix in (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz"):
        if file_name.endswith(suffix) and "-" in file_name:
            return file_name.removesuffix(suffix).rsplit("-", 1)[0]
    return None


def _digest(target: Path) -> bytes:
    """A hash of a local requirement's files, their names with them (what a build leaves in a source
    folder, `__pycache__` and `*.egg-info`, left out: it would change the key after the first build)."""
    digest = hashlib.sha256()
    files = [target] if target.is_file() else sorted(
        file for file in target.rglob("*")
        if file.is_file() and not any(part == "__pycache__" or part.endswith(".egg-info") for part in file.parts))
    for file in files:
        digest.update(os.fsencode(file.relative_to(target.parent)) + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest().encode()


def _key(interpreter: Interpreter, requirements: bytes) -> str:
    digest = hashlib.sha256(json.dumps([LAYOUT, interpreter.path, interpreter.version]).encode() + b"\0" + requirements)
    return digest.hexdigest()[:24]


async def _uv(arguments: list[str], cwd: Path, fields: Mapping[str, object], environment: Mapping[str, str],
              secrets: list[str] | None = None, renamed: Mapping[str, str] | None = None) -> None:
    """Run uv in `environment` (`installer_environment`), its output a line at a time to the log, the
    `secrets` (`secret_forms`) masked and the files `renamed` names called by their own names (`_filled_in`);
    EnvironmentBuildError with its key lines if it fails.

    Never a Python download; the system's certificates (`UV_SYSTEM_CERTS`, unless set), as pip uses,
    so a registry behind a company's certificate authority works as it does for pip. Its output is
    read to its end, blank lines and lines of any length included: uv waits for it to be read. It runs
    in a session of its own, to be stopped with what it started, under `parent.main`, which ends that
    session with the emulator: an install outlived an emulator killed outright."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", parent.__file__, str(os.getpid()), uv.find_uv_bin(), *arguments, cwd=cwd,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        env={**environment, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1", "UV_NO_PROGRESS": "1"},
    )
    assert process.stdout is not None, "stdout is a pipe"
    output: list[str] = []
    try:
        rest = b""
        while chunk := await process.stdout.read(64 * 1024):
            *lines, rest = (rest + chunk).split(b"\n")
            output.extend(_logged(line, fields, secrets, renamed) for line in lines)
        if rest:
            output.append(_logged(rest, fields, secrets, renamed))
        code = await process.wait()
    except BaseException:  # cancelled (the version was deleted or replaced, the emulator stops)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    if code != 0:
        what = "installing requirements.txt" if arguments[0] == "pip" else "creating the virtual environment"
        raise EnvironmentBuildError(f"{what} failed: {key_lines(output)}")


def _logged(raw: bytes, fields: Mapping[str, object], secrets: list[str] | None,
            renamed: Mapping[str, str] | None = None) -> str:
    """One line of the installer's, its secrets masked and the files `renamed` names called by their own
    names, logged (but a blank one), cut to MAX_LOG_LINE."""
    line = raw.decode(errors="replace").rstrip()
    for name, original in (renamed or {}).items():
        line = line.replace(name, original)
    line = masked_forms(line, secrets or ())
    line = line if len(line) <= MAX_LOG_LINE else line[:MAX_LOG_LINE] + f" … ({len(line)} characters)"
    if line:
        log.info("  %s", line, extra=fields)
    return line


ERROR_MARKS = ("error:", "cause:", "hint:", "help:", "\u00d7", "\u2570\u2500\u25b6")
"""How uv marks the lines of an error: plain prefixes, or the marks of its drawn error tree."""


def key_lines(output: list[str]) -> str:
    """What to show of an installer's failure: its error lines without their marks (uv writes
    `error:`, `cause:`, `hint:`), else its last lines."""
    errors = []
    for line in output:
        text = line.strip()
        mark = next((m for m in ERROR_MARKS if text.startswith(m)), None)
        if mark:
            errors.append(text.removeprefix(mark).strip())
    return "; ".join(line for line in (errors or output)[-KEY_ERROR_LINES:] if line) or "no output"


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on `path` (across processes), polled so a cancelled wait ends at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@cache
def find_python(version: tuple[int, int]) -> Interpreter:
    """An interpreter of `version` on this machine; EnvironmentBuildError naming it and how to get it."""
    wanted = f"{version[0]}.{version[1]}"
    for candidate in _candidates(wanted):
        found = _probe(candidate)
        if found and found.version.startswith(wanted + "."):
            return found
    raise EnvironmentBuildError(
        f"the environment needs Python {wanted}, which is not installed on this machine (looked for python{wanted} "
        f"on the PATH, in pyenv, /usr/bin and /usr/local/bin): install it (`sudo apt-get install python{wanted}`, "
        f"`pyenv install {wanted}` or `uv python install {wanted}`), or choose an environment whose Python you have"
    )


def _candidates(wanted: str) -> Iterator[str]:
    if sys.version_info[:2] == tuple(map(int, wanted.split("."))):
        yield str(Path(sys.base_prefix) / "bin" / f"python{wanted}")
    if on_path := shutil.which(f"python{wanted}"):
        yield on_path
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    yield from sorted((str(p) for p in pyenv.glob(f"{wanted}.*/bin/python{wanted}")), reverse=True)
    yield from (f"{prefix}/bin/python{wanted}" for prefix in ("/usr", "/usr/local"))


def _probe(path: str) -> Interpreter | None:
    """The interpreter at `path`, if it runs (a pyenv shim of a version not selected does not)."""
    try:
        done = subprocess.run([path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                              capture_output=True, text=True, timeout=PROBE_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Interpreter(path, done.stdout.strip()) if done.returncode == 0 else None
