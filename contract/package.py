"""What a package folder declares: its input and output fields and its `ubiops.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
