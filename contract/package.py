"""What a package folder declares: its input and output fields and its `ubiops.yaml`; and the
static checks of its code and requirements that the deployer runs before an upload."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from contract import calling
from contract.manifest import Manifest, read_manifest
from contract.spec import Spec, load_spec

INPUT_SPEC_FILE = "ubiops_input_spec.json"
OUTPUT_SPEC_FILE = "ubiops_output_spec.json"


@dataclass(frozen=True)
class Package:
    directory: Path
    input_spec: Spec
    output_spec: Spec
    manifest: Manifest


def read_package(directory: Path) -> Package:
    """Read a package folder's declarations; raises SpecError or ManifestError with the file named."""
    directory = directory.resolve()
    return Package(
        directory=directory,
        input_spec=load_spec(directory / INPUT_SPEC_FILE),
        output_spec=load_spec(directory / OUTPUT_SPEC_FILE),
        manifest=read_manifest(directory),
    )


REQUIREMENTS_FILE = "requirements.txt"


class PackageCheckError(ValueError):
    """A package file UbiOps would fail to build or load; the message names the file and line."""


def read_requirements(directory: Path) -> list[str]:
    """The requirements of `requirements.txt` (none when absent), each checked as pip would parse it.

    Comments, blank lines and pip options (`-r`, `--index-url`, …) are passed over, as pip reads them.
    """
    path = directory / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    requirements: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split(" #", 1)[0].strip()
        if not text or text.startswith(("#", "-")):
            continue
        try:
            requirements.append(str(Requirement(text)))
        except InvalidRequirement as exc:
            raise PackageCheckError(f"{REQUIREMENTS_FILE} line {number}: {text!r} is not a requirement ({exc})") from None
    return requirements


def check_deployment_class(directory: Path, file_name: str = calling.DEPLOYMENT_FILE) -> None:
    """Check, without importing it, that `file_name` defines `Deployment` as UbiOps calls it
    (`contract.calling`: the rule the emulator's loader follows too)."""
    path = directory / file_name
    if not path.is_file():
        raise PackageCheckError(f"{file_name} is missing; UbiOps runs the class Deployment from it")
    try:
        module = ast.parse(path.read_text(encoding="utf-8"), filename=file_name)
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise PackageCheckError(f"{file_name} does not parse: {exc}") from None
    found = [n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "Deployment"]
    if not found:
        raise PackageCheckError(f"{file_name} defines no top-level class Deployment")
    methods = {n.name: n for n in found[-1].body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if "request" not in methods and "requests" not in methods:
        raise PackageCheckError(f"{file_name}: Deployment has neither request(self, data) nor requests(self, data)")
    for name in ("__init__", "request", "requests"):
        if name in methods:
            problem = calling.call_problem(calling.signature_of_function(methods[name]), name)
            if problem:
                raise PackageCheckError(f"{file_name} line {methods[name].lineno}: Deployment.{name}: {problem}")
