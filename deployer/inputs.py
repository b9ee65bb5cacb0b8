"""Request data from `[tool.deployer] sample_input` or the command line: file fields name local files,
which are uploaded to the project's `default` bucket and replaced by their `ubiops-file://` URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ubiops

from contract.files import is_file_uri, map_files
from contract.spec import Spec
from deployer.client import translated
from deployer.errors import DeployerError

FILE_PREFIX = "deployer"


def upload_inputs(client: ubiops.ApiClient, project: str, spec: Spec, data: dict[str, Any], root: Path) -> dict[str, Any]:
    """`data` with each file field's local path (relative to `root`) uploaded and given as its URI."""
    return map_files(spec, data, lambda _field, value: _upload(client, project, root, value))


def _upload(client: ubiops.ApiClient, project: str, root: Path, value: Any) -> Any:
    """The URI of the local file `value` names, once uploaded; a URI (or anything but a path) as it is."""
    if not isinstance(value, str) or is_file_uri(value):
        return value
    path = (root / value).resolve()
    if not path.is_file():
        raise DeployerError(f"input file {value} not found (looked at {path})")
    with translated(f"the upload of {path.name}", client.configuration.host):
        return ubiops.utils.upload_file(client, project, str(path), file_name=f"{FILE_PREFIX}/{path.name}", _progress_bar=False)
