"""Request data from `[tool.deployer] sample_input` or the command line: file fields name local files,
which are uploaded to the project's `default` bucket and replaced by their `ubiops-file://` URI.

Each file goes to `deployer/<sha256 prefix>/<its name>`: files of one name but other contents (`a/x.txt`,
`b/x.txt`, or a colleague's) each keep their own object, and the deployment still sees the file's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from contract.files import is_file_uri, map_files
from contract.spec import Spec
from deployer.bundle import sha256_of
from deployer.client import Api
from deployer.errors import DeployerError

FILE_PREFIX = "deployer"
DIGEST_CHARACTERS = 16
"""Of the SHA-256 in hex that names a file's folder: 64 bits, so distinct contents never share one."""
Data = TypeVar("Data", bound=dict[str, Any] | str)
"""Request data: a structured deployment's fields, or a plain one's text."""


def upload_inputs(api: Api, project: str, spec: Spec, data: Data, root: Path) -> Data:
    """`data` with each file field's local path (relative to `root`) uploaded and given as its URI
    (plain text as it is)."""
    return map_files(spec, data, lambda _field, value: _upload(api, project, root, value))


def file_problems(spec: Spec, data: Any, root: Path) -> list[str]:
    """Why the local files `data`'s file fields name cannot be uploaded (missing, a folder, …), so that
    `check` says so among its static checks rather than once every test has run."""
    problems: list[str] = []

    def look(_field: Any, value: Any) -> Any:
        if isinstance(value, str) and not is_file_uri(value) and (problem := _file_problem(root, value)):
            problems.append(problem)
        return value

    map_files(spec, data, look)
    return problems


def _file_problem(root: Path, value: str) -> str | None:
    path = (root / value).resolve()
    if path.is_file():
        return None
    if path.is_dir():
        return f"input file {value} is a folder, not a file (at {path})"
    if path.exists():
        return f"input file {value} is not a regular file (at {path})"
    return f"input file {value} not found (looked at {path})"


def _upload(api: Api, project: str, root: Path, value: Any) -> Any:
    """The URI of the local file `value` names, once uploaded; a URI (or anything but a path) as it is."""
    if not isinstance(value, str) or is_file_uri(value):
        return value
    problem = _file_problem(root, value)
    if problem:
        raise DeployerError(problem)
    path = (root / value).resolve()
    return api.upload_file(project, path, f"{FILE_PREFIX}/{sha256_of(path)[:DIGEST_CHARACTERS]}/{path.name}")
