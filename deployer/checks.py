"""`python -m deployer check`: everything that can be known before an upload, on the built zip itself.

Static checks (zip layout, specs, `ubiops.yaml`, `deployment.py` or the file `SYS_DEPLOYMENT_FILE_NAME`
names, `requirements.txt`, size, sample input), then the emulator started on the zip, given the
configured environment variables through its API as `push` gives them to UbiOps, and the project's
emulator tests run against it. The emulator's answer to the sample input is kept, as the reference
for the smoke request after a push.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from packaging.requirements import InvalidRequirement, Requirement

from contract.apt import check_apt_packages
from contract.archive import ArchiveError, extract_package
from contract.calling import deployment_file_name
from contract.config import CONFIG_FILE, DeployerConfig, sample_input_problem
from contract.environments import CONDA_FILE, CONDA_NOT_BUILT, python_version
from contract.manifest import ManifestError, instance_variables
from contract.package import Package, PackageCheckError, check_deployment_class, read_package, read_requirements
from contract.requests import COMPLETED
from contract.requirements import file_references
from contract.spec import DataError, Spec, SpecError, check_input
from contract.versions import instance_type_memory_mb
from deployer.bundle import Bundle
from deployer.client import Api, scrubbed, translated
from deployer.emulated import LocalEmulator, clean_environment, local_emulator
from deployer.errors import DeployerError
from deployer.inputs import file_problems, upload_inputs
from deployer.variables import ConfiguredVariable, ship_variables
from emulator import EMULATOR_TOKEN_VARIABLE
from emulator.launcher import tail
from emulator.settings import INSTANCE_MEMORY_MB

MAX_UPLOAD_BYTES = 2 * 1024**3
"""UbiOps' documented package limit (2 GB)."""
TEST_OUTPUT_LINES = 30
"""The lines of the failed tests' stdout, and of their stderr, shown."""
TEST_OUTPUT_BYTES = 64 * 1024
"""The end of each of the tests' outputs read: all that its last lines need."""
SUMMARY_CHARS = 300
"""The most of the runner's summary line (the last of its stdout) the check's line quotes."""
TEST_STOP_SECONDS = 5.0
"""How long the test command's processes have to end on SIGTERM before they are killed."""
SAMPLE_INPUT = f"[tool.deployer] sample_input in {CONFIG_FILE}"
"""Where the sample request's input comes from, which its failure names: init writes example values there,
and a 4-feature model's failure on them did not say where they came from."""
MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^'.]+)")
"""A module the tests could not import, as Python words it (its top-level package)."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    note: bool = False
    """Passed, as the check could not tell: the detail says why (only running the package does)."""


@dataclass
class CheckReport:
    checks: list[Check] = field(default_factory=list)
    package: Package | None = None
    """The package's declarations, as read from the zip (None when it cannot be read)."""
    reference: Any = None
    """The emulator's result for the sample input (None without one, or when tests were skipped)."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def add(self, name: str, passed: bool, detail: str, say: Callable[[str], None], note: bool = False) -> bool:
        self.checks.append(Check(name, passed, detail, note))
        say(f"  {'note' if note else 'ok  ' if passed else 'FAIL'} {name}: {detail}")
        return passed

    def summary(self) -> str:
        failed = [c.name for c in self.checks if not c.passed]
        if failed:
            return f"check FAILED: {', '.join(failed)}"
        return f"check passed: {len(self.checks)} checks"


def check_bundle(config: DeployerConfig, bundle: Bundle, run_tests: bool, say: Callable[[str], None],
                 variables: list[ConfiguredVariable] | None = None,
                 before_tests: Callable[[Package], None] | None = None) -> CheckReport:
    """Check the zip; with `run_tests`, also start it in the emulator, give it `variables` and run the
    emulator tests. `before_tests` gets the package once the static checks passed, before the emulator
    starts (with `run_tests` or not): `push` decides there what it would refuse, rather than minutes later."""
    report = CheckReport()
    secrets = [v.value for v in variables or () if v.secret]

    def shown(text: str) -> str:  # the emulator's log and the tests' output, which a deployment may fill
        return scrubbed(text, secrets)

    with tempfile.TemporaryDirectory(prefix="deployer-check-") as scratch:
        workdir = Path(scratch)
        configured = {v.name: v.value for v in variables or []}
        package = report.package = _static_checks(config, bundle, workdir / "unpacked", configured, report, say)
        if package is None:
            return report
        if before_tests is not None:
            before_tests(package)
        if not run_tests:
            return report
        try:
            with local_emulator(config, bundle.path, workdir, _memory_limit(config, report, say)) as emulator:
                secrets.append(emulator.token)  # its tests get it, and their output may show it
                if variables:
                    _give_variables(config, variables, emulator, report, say)
                if emulator.failure is not None:  # its log goes with the scratch folder: its end is shown now
                    say(shown(f"the end of the emulator's log:\n{emulator.log_end()}"))
                if not report.add("emulator", emulator.failure is None, shown(_started(config, emulator)), say):
                    return report
                _run_tests(config, bundle, package, emulator, report, say, shown)
                if config.sample_input:
                    _reference(config, package, emulator, report, say, shown)
        except DeployerError as exc:
            report.add("emulator", False, shown(str(exc)), say)
    return report


def _static_checks(config: DeployerConfig, bundle: Bundle, target: Path, configured: dict[str, str],
                   report: CheckReport, say: Callable[[str], None]) -> Package | None:
    try:
        package = read_package(extract_package(bundle.path, target))
    except (ArchiveError, SpecError, ManifestError) as exc:
        report.add("package", False, str(exc), say)
        return None
    report.add("specs", True, f"{_kind(package.input_spec)} in, {_kind(package.output_spec)} out", say)
    manifest = package.manifest
    apt = check_apt_packages(manifest.apt_packages, config.environment, manifest.adds_apt_sources)
    report.add("ubiops.yaml", not apt.failures, "; ".join(apt.failures or [
        f"{len(manifest.environment_variables)} environment variable(s), {len(manifest.apt_packages)} apt package(s)",
        *apt.warnings]), say, note=bool(apt.warnings) and not apt.failures)
    if (package.directory / CONDA_FILE).is_file():
        report.add(CONDA_FILE, True, f"{CONDA_NOT_BUILT}, so the emulator tests run without the packages it names, "
                                     "which UbiOps installs", say, note=True)
    # the file the version's instances will import: `SYS_DEPLOYMENT_FILE_NAME` may name another, in
    # ubiops.yaml or the configured variables (those set on UbiOps by other means are not known here)
    variables = instance_variables(package.manifest.environment_variables, configured)
    file_name = deployment_file_name(variables)

    try:
        undecided = check_deployment_class(package.directory, file_name, python_version(config.environment))
    except PackageCheckError as exc:
        report.add(file_name, False, str(exc), say)
    else:
        if undecided:  # the emulator's start and the tests, which import it, tell
            report.add(file_name, True, f"not decided by reading it: {undecided}; only running it tells", say, note=True)
        else:
            report.add(file_name, True, "class Deployment with usable __init__ and request signatures", say)

    try:
        listed = read_requirements(package.directory)
        # none out of the package, as the emulator's build refuses them, its `${NAME}`s filled in as there
        file_references(package.directory, variables)
    except PackageCheckError as exc:
        report.add("requirements.txt", False, str(exc), say)
    else:
        loose = unpinned(listed)
        report.add("requirements.txt", True, f"{len(listed)} requirement(s)" + (
            f"; not pinned to one version: {', '.join(loose)}: the emulator's environment keeps the release it "
            "installed first, UbiOps' build installs the newest it finds that day, so the two may differ (pin "
            "with ==)" if loose else ""), say, note=bool(loose))
    size_mb = bundle.size / 1024**2
    report.add("size", bundle.size <= MAX_UPLOAD_BYTES, f"{size_mb:.1f} MB (limit {MAX_UPLOAD_BYTES // 1024**3} GB)", say)
    if config.sample_input:
        report.add("sample_input", *_sample_input_check(config.sample_input, package.input_spec, config.root), say)
    else:  # said, not counted as a check: nothing failed, but nothing the check or push does sends a request
        say("  note sample_input: none configured, so no sample request is sent here, nor a smoke request by push")
    return package if report.passed else None


def _sample_input_check(sample: dict[str, Any] | str, spec: Spec, root: Path) -> tuple[bool, str]:
    """Whether the sample input is one the package takes, its files there to upload, and what the check found."""
    problem = sample_input_problem(sample, spec.kind)
    if problem:
        return False, problem
    # A key no field names: the emulator drops it (what UbiOps does is not documented), so a misspelt
    # field passed as "matches the input fields" when the field itself was given too.
    unknown = [key for key in sample if key not in spec.names] if isinstance(sample, dict) else []
    extra = (f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not an input field "
             f"({', '.join(spec.names)}): correct or remove {'it' if len(unknown) == 1 else 'them'} in {SAMPLE_INPUT}")
    try:
        check_input(spec, sample)
    except DataError as exc:
        return False, f"{exc}; {extra}" if unknown else str(exc)
    if unknown:
        return False, extra
    missing = file_problems(spec, sample, root)
    if missing:
        return False, "; ".join(missing)
    return True, "the text for the plain-text input" if isinstance(sample, str) else f"matches the input fields ({', '.join(spec.names)})"


def unpinned(requirements: list[str]) -> list[str]:
    """The requirements a build may resolve to another release than the one tested: those named by PyPI
    name without `==X` (but `==X.*`) or `===X`. Paths, URLs and lines naming `${VARIABLE}`s point at what
    they install."""
    loose = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        exact = any(spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith(".*"))
                    for spec in requirement.specifier)
        if requirement.url is None and not exact:
            loose.append(text)
    return loose


def _kind(spec: Any) -> str:
    return f"{len(spec.fields)} structured field(s)" if spec.fields else "plain"


def _memory_limit(config: DeployerConfig, report: CheckReport, say: Callable[[str], None]) -> int:
    """The memory each instance of the emulated version may use: its instance type group's on UbiOps, so
    that a model too large for it fails here (with the emulator's own limit, 2048 MB, a 1 GB model
    passed every check and ran out of memory on UbiOps' default 512 MB). A group whose name gives no
    memory keeps the emulator's limit, noted."""
    memory = instance_type_memory_mb(config.instance_type_group)
    if memory is None:
        report.add("instance_type_group", True, f"{config.instance_type_group!r} names no memory (as "
                   f"'2048 MB + 0.5 vCPU' does): the emulator limits each instance to its own {INSTANCE_MEMORY_MB} MB, "
                   "which may not be the group's", say, note=True)
        return INSTANCE_MEMORY_MB
    return memory


def _started(config: DeployerConfig, emulator: LocalEmulator) -> str:
    limit = f"each instance limited to {emulator.memory_mb} MB of memory"
    if instance_type_memory_mb(config.instance_type_group) is not None:
        limit += f", as instance_type_group {config.instance_type_group!r} limits it on UbiOps"
    if emulator.failure is None:
        return f"the zip started in the emulator at {emulator.url}, {limit}"
    return f"the zip does not start ({limit}): {emulator.failure}"


def _give_variables(config: DeployerConfig, variables: list[ConfiguredVariable], emulator: LocalEmulator,
                    report: CheckReport, say: Callable[[str], None]) -> None:
    """Set the variables on the emulated version (or its deployment) as `push` sets them on UbiOps, and
    wait for the version to restart with them (its first start, without them, may well have failed).
    The emulator refuses no name or value the config and the secrets' check let through (the same
    rules, `contract.names`); an emulator that fails on the way is the check's "emulator" failure."""
    ship_variables(Api(core=emulator.api), config, config.emulator_version, variables, exists=True, say=lambda _: None)
    emulator.restarted()
    names = ", ".join(f"{v.name}{' (secret)' if v.secret else ''}" for v in variables)
    report.add("environment variables", True, f"{names} set on the emulated {config.environment_variables_level}", say)


def _run_tests(config: DeployerConfig, bundle: Bundle, package: Package, emulator: LocalEmulator, report: CheckReport,
               say: Callable[[str], None], shown: Callable[[str], str]) -> None:
    command = shlex.split(config.test_command)
    if command and command[0] == "python":
        command[0] = sys.executable
    say(f"  running {config.test_command}")
    started = time.monotonic()
    # Output to files, not pipes: a process the tests leave running holds a pipe open, and reading it to
    # its end waited for that process (for ever, for a server), before its group could be ended.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:  # in a process group of its own, which goes with the check (below)
            process = subprocess.Popen(command, cwd=config.root, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                       env=clean_environment(EMULATOR_URL=emulator.url, EMULATOR_PACKAGE=str(bundle.path),
                                                             **{EMULATOR_TOKEN_VARIABLE: emulator.token}, **_own_python()),
                                       start_new_session=True)
        except OSError as exc:
            report.add("emulator tests", False, f"cannot run {command[0]}: {exc.strerror}", say)
            return
        timed_out = False
        try:
            process.wait(config.test_timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _end_group(process)
        stdout, stderr = (_printed(stream) for stream in (out, err))
    # The runner's summary closes its stdout; what a library prints on stderr at exit must not hide it.
    summary = (stdout.strip() or stderr.strip() or "(no output)").splitlines()[-1]
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS] + "…"
    if timed_out or process.returncode != 0:
        _show_output(stdout, stderr, say, shown)
    if timed_out:
        report.add("emulator tests", False, f"timed out after {config.test_timeout} s (test_timeout)", say)
        return
    if process.returncode != 0:
        # a request that failed in a test says only "see the logs": the traceback is in the emulator's
        # log, which goes with the scratch folder
        say(shown(f"the end of the emulator's log:\n{emulator.log_end()}"))
    report.add("emulator tests", process.returncode == 0,
               shown(f"{summary} ({time.monotonic() - started:.1f} s, exit {process.returncode})"), say)
    if process.returncode != 0 and (hint := _requirements_hint(config, package, stdout + stderr)):
        say(f"  hint: {hint}")


def _requirements_hint(config: DeployerConfig, package: Package, output: str) -> str | None:
    """Why the tests may have failed to import a module: they run in the deployer's own Python (`.venv`),
    which lacks requirements.txt's packages unless `make package-dev` put them there (the emulator runs
    the package in an environment of its own, built from them). None when every module the output says
    is missing is importable here, or every requirement is installed (the module comes from elsewhere)."""
    modules = sorted({m for m in MISSING_MODULE.findall(output) if importlib.util.find_spec(m) is None})
    if not modules:
        return None
    try:
        requirements = read_requirements(package.directory)
    except PackageCheckError:
        return None
    missing = [r for r in requirements if not _installed(r)]
    if not missing:
        return None
    return (f"the tests could not import {', '.join(modules)}, and the Python they run in ({sys.executable}) lacks "
            f"requirements.txt's {', '.join(missing)}: `make package-dev` installs the package's requirements there "
            f"(or {sys.executable} -m pip install -r {shlex.quote(config.package + '/requirements.txt')})")


def _installed(text: str) -> bool:
    """Whether this Python has what the requirement `text` asks for; a path, a URL or a requirement for
    another Python (its marker) counts as installed, as nothing here tells which module it provides."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return True
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return requirement.url is not None or requirement.specifier.contains(version, prereleases=True)


def _own_python() -> dict[str, str]:
    """PATH (and VIRTUAL_ENV) for the tests as an activated venv has them: the deployer's own Python's
    folder first, so `pytest …` or `python3 -m pytest …` run in the Python the emulator's pytest plugin
    (the `ubiops_emulator` fixture) is installed in, not another one on PATH."""
    variables = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), *filter(None, [os.environ.get("PATH")])])}
    if sys.prefix != sys.base_prefix:
        variables["VIRTUAL_ENV"] = sys.prefix
    return variables


def _printed(stream: IO[bytes]) -> str:
    """The end of what the tests wrote to `stream` (its last TEST_OUTPUT_BYTES), as text: only the end
    is shown, and a test may print hundreds of MB (held whole, they took the deployer to 860 MB) and
    any bytes."""
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - TEST_OUTPUT_BYTES))
    text = stream.read().decode("utf-8", errors="replace")
    if size > TEST_OUTPUT_BYTES:  # without the line cut at the start, unless it is the only one
        rest = text.partition("\n")[2]
        text = rest if rest.strip() else text
    return text


def _show_output(stdout: str, stderr: str, say: Callable[[str], None], shown: Callable[[str], str]) -> None:
    """The end of the failed tests' stdout and stderr, each its own: together, 40 lines a library logs on
    stderr at exit pushed the runner's failure details off."""
    if stderr.strip():
        say(shown(f"the end of the tests' stderr:\n{tail(stderr.strip(), TEST_OUTPUT_LINES)}"))
    if stdout.strip():
        say(shown(tail(stdout.strip(), TEST_OUTPUT_LINES)))


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """End the test command's process group, once it has ended or the check is interrupted (Ctrl-C,
    SIGTERM): a shell's children, or a server a test left running, went on after the check (only the
    command itself was killed). SIGTERM first, so they may clean up, then SIGKILL after TEST_STOP_SECONDS."""
    deadline = time.monotonic() + TEST_STOP_SECONDS
    try:
        with contextlib.suppress(ProcessLookupError):  # none left in the group
            os.killpg(process.pid, signal.SIGTERM)
            while time.monotonic() < deadline:
                process.poll()  # the command itself, reaped as soon as it ends
                os.killpg(process.pid, 0)
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGKILL)
    except KeyboardInterrupt:  # interrupted again while they stop: at once, then
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        process.wait()


def _reference(config: DeployerConfig, package: Package, emulator: LocalEmulator, report: CheckReport,
               say: Callable[[str], None], shown: Callable[[str], str]) -> None:
    """Send the sample input to the emulator; its result is what UbiOps should answer too. When it
    fails, the end of the emulator's log (the request's traceback) is shown, as the log goes with the check."""
    try:
        data = upload_inputs(Api(core=emulator.api, say=say), config.project, package.input_spec, config.sample_input, config.root)
        with translated("the emulator's sample request", emulator.url):
            answer = emulator.api.deployment_requests_create(config.project, config.deployment, data)
    except DeployerError as exc:
        say(shown(f"the end of the emulator's log:\n{emulator.log_end()}"))
        report.add("sample request", False, shown(f"{exc} (its input: {SAMPLE_INPUT})"), say)
        return
    if answer.status != COMPLETED:
        say(shown(f"the end of the emulator's log:\n{emulator.log_end()}"))
    failed = f"failed: {answer.error_message} (its input: {SAMPLE_INPUT})"
    if report.add("sample request", answer.status == COMPLETED,
                  "completed in the emulator" if answer.status == COMPLETED else shown(failed), say):
        report.reference = answer.result
