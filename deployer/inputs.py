"""Request data from `[tool.deployer] sample_input` or the command line: file fields name local files,
which are uploaded to the project's `default` bucket and replaced by their `ubiops-file://` URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from contract.files import is_file_uri, map_files
from contract.spec import Spec
from deployer.client import Api
from deployer.errors import DeployerError

FILE_PREFIX = "deployer"
Data = TypeVar("Data", bound=dict[str, Any] | str)
"""Request data: a structured deployment's fields, or a plain one's text."""


def upload_inputs(api: Api, project: str, spec: Spec, data: Data, root: Path) -> Data:
    """`data` with each file field's local path (relative to `root`) uploaded and given as its URI
    (plain text as it is)."""
    return map_files(spec, data, lambda _field, value: _upload(api, project, root, value))


def _upload(api: Api, project: str, root: Path, value: Any) -> Any:
    """The URI of the local file `value` names, once uploaded; a URI (or anything but a path) as it is."""
    if not isinstance(value, str) or is_file_uri(value):
        return value
    path = (root / value).resolve()
    if not path.is_file():
        raise DeployerError(f"input file {value} not found (looked at {path})")
    return api.upload_file(project, path, f"{FILE_PREFIX}/{path.name}")
