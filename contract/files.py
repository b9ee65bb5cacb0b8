"""Files in UbiOps' request data: the `ubiops-file://bucket/name` URI that names a stored file, the
bucket a deployment uses by default, and the file fields of an input or output.

A `file` field holds one file, an `array_file` field a list of them. On the way in they are URIs
(a deployment receives local paths instead); on the way out a deployment returns local paths, which
become URIs again. Every place that treats those values walks them with `map_files`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from contract.spec import Field, Spec

FILE_URI_SCHEME = "ubiops-file://"
DEFAULT_BUCKET = "default"
"""Every project's bucket, `SYS_DEFAULT_BUCKET` in a deployment's environment."""
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")
"""What no stored file's name holds (`emulator.storage.check_name`): a file named with a newline (curl
sends `filename="a%0Ab.txt"` for one) was listed, but could be neither read, downloaded nor deleted,
and the others break the lines of logs and terminals. GCS refuses CR and LF in its object names too."""


def storable_name(name: str) -> str:
    """`name` (a base name) with each control character and backslash made `_`: how a file a request
    uploads, or a deployment returns, is named in the bucket, where no name may hold either
    (`emulator.storage.check_name`). A backslash made `_` cannot make a folder: an output file named
    `a\\b.txt` was listed, but every call naming it answered 400 "holds a backslash"."""
    return CONTROL_CHARACTERS.sub("_", name).replace("\\", "_")


def file_uri(bucket: str, name: str) -> str:
    return f"{FILE_URI_SCHEME}{bucket}/{name}"


def is_file_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FILE_URI_SCHEME)


def split_file_uri(uri: str) -> tuple[str, str]:
    """The bucket and file name a URI names (not checked: the storage checks names)."""
    bucket, _, name = uri.removeprefix(FILE_URI_SCHEME).partition("/")
    return bucket, name


def numbered_names(name: str) -> Iterator[str]:
    """`name`, then `stem-1.ext`, `stem-2.ext`, …: the names a file may take in a request's `input/` or
    `output/` folder, the first one no earlier file of that request has taken."""
    yield name
    path = PurePosixPath(name)
    counter = 1
    while True:
        yield f"{path.stem}-{counter}{path.suffix}"
        counter += 1


def map_files(spec: Spec, data: Any, replace: Callable[[Field, Any], Any]) -> Any:
    """`data` with each file of its file fields replaced by `replace(field, value)`: a `file` field's
    value and each item of an `array_file` list.

    Fields that are missing or null, an `array_file` value that is not a list, and data that is not
    an object are left as they are (the spec checks reject them where they matter). `data` is not changed.
    """
    if not isinstance(data, dict):
        return data
    replaced = dict(data)
    for field in spec.fields:
        value = replaced.get(field.name)
        if value is None:
            continue
        if field.data_type == "file":
            replaced[field.name] = replace(field, value)
        elif field.data_type == "array_file" and isinstance(value, list):
            replaced[field.name] = [replace(field, item) for item in value]
    return replaced
