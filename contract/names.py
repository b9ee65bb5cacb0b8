"""The names UbiOps gives projects, deployments, versions and buckets (an assumption the emulator enforces),
the names of environment variables (UbiOps' documented rule, read by the emulator's API and the
deployer's config alike), and the values a process environment can hold (the API's variables and
`ubiops.yaml`'s alike)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from contract.text import is_unicode_text

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
"""Lowercase letters, digits and dashes, not starting or ending with a dash."""
MAX_NAME_LENGTH = 64
NAME_RULE = f"lowercase letters, digits and dashes, not starting or ending with a dash, at most {MAX_NAME_LENGTH} characters"

VARIABLE_NAME_PATTERN = r"^[A-Za-z]([A-Za-z0-9_]*[A-Za-z0-9])?$"
MAX_VARIABLE_NAME_LENGTH = 64
VARIABLE_NAME_RULE = ("letters, digits and underscores, starting with a letter and not ending with an underscore, "
                      f"at most {MAX_VARIABLE_NAME_LENGTH} characters")
"""UbiOps' API documents "only letters and underscores, and not start or end with an underscore" (its
examples are lowercase) and the SDK at most 64 characters; digits after the first letter are an
assumption (`SYS_DEPLOYMENT_FILE_NAME`-style names with digits, such as `S3_BUCKET`, are common)."""
MAX_VARIABLE_VALUE_LENGTH = 64 * 1024
"""The emulator's own limit, in UTF-8 bytes: a value must fit in a process's environment (Linux takes
128 KiB per entry)."""
MAX_VARIABLES_BYTES = 1024 * 1024
"""The emulator's own limit on the variables an instance sees, all together, as its environment holds them
(`NAME=value` in UTF-8 and a NUL each): Linux starts a process only while its environment and command line
fit in ARG_MAX (2 MiB with the usual 8 MiB stack), and the other MiB is the margin for the machine's
variables and the command line. Forty values under the 64 KiB each answered 201, and the version then
failed to start (`Argument list too long`)."""


def is_name(text: str) -> bool:
    return len(text) <= MAX_NAME_LENGTH and re.fullmatch(NAME_PATTERN, text) is not None


def is_variable_name(text: str) -> bool:
    return len(text) <= MAX_VARIABLE_NAME_LENGTH and re.fullmatch(VARIABLE_NAME_PATTERN, text) is not None


def variable_value_problem(value: str) -> str | None:
    """Why an instance's environment cannot hold `value` as given (a NUL would end it early, a lone
    surrogate cannot be encoded), or None; UbiOps documents no rule, so the emulator refuses these."""
    if "\x00" in value:
        return "holds a NUL character, which no environment variable can"
    if not is_unicode_text(value):
        return "holds a lone surrogate, which is not text"
    if len(value.encode()) > MAX_VARIABLE_VALUE_LENGTH:  # bytes, as the kernel counts: 60 000 emoji are 240 000
        return f"is longer than {MAX_VARIABLE_VALUE_LENGTH} bytes in UTF-8"
    return None


def variables_size(variables: Mapping[str, str]) -> int:
    """The bytes `variables` take in a process's environment, as Linux counts them against ARG_MAX."""
    return sum(len(f"{name}={value}".encode()) + 1 for name, value in variables.items())


def variables_size_problem(variables: Mapping[str, str]) -> str | None:
    """Why a process could not start with all of `variables` in its environment, each fit on its own
    (`variable_value_problem`), or None."""
    size = variables_size(variables)
    if size > MAX_VARIABLES_BYTES:
        return f"{size} bytes together, more than the {MAX_VARIABLES_BYTES} (1 MiB) an instance's environment may hold"
    return None


def name_from(text: str) -> str:
    """The nearest valid name to `text` (a folder or file name): lowercase, other characters as dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_NAME_LENGTH].strip("-") or "deployment"
