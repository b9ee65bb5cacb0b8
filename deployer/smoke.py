"""The smoke request after a push: the sample input sent to the new version, its output compared
field by field with the emulator's output for the same input."""

from __future__ import annotations

import math
from typing import Any

from contract.spec import Spec

RELATIVE_TOLERANCE = 1e-3
ABSOLUTE_TOLERANCE = 1e-6


def compare_outputs(spec: Spec, expected: Any, actual: Any) -> list[str]:
    """The differences between the emulator's output (`expected`) and UbiOps' (`actual`), one line each.

    Numbers may differ within a small tolerance (another machine, another float path); file fields
    only need to be present in both or absent in both, as their URIs always differ.
    """
    if not spec.fields:
        return [] if expected == actual else [f"output: emulator {expected!r}, UbiOps {actual!r}"]
    if not isinstance(actual, dict):
        return [f"output: UbiOps answered {type(actual).__name__}, not an object"]
    differences: list[str] = []
    for field in spec.fields:
        wanted, got = expected.get(field.name), actual.get(field.name)
        if field.name not in actual:
            differences.append(f"{field.name}: missing in UbiOps' output")
        elif field.is_file:
            if (wanted is None) != (got is None):
                differences.append(f"{field.name}: emulator {'no file' if wanted is None else 'a file'}, "
                                   f"UbiOps {'no file' if got is None else 'a file'}")
        elif not _same(wanted, got):
            differences.append(f"{field.name}: emulator {wanted!r}, UbiOps {got!r}")
    return differences


def _same(wanted: Any, got: Any) -> bool:
    if isinstance(wanted, list) and isinstance(got, list):
        return len(wanted) == len(got) and all(_same(w, g) for w, g in zip(wanted, got, strict=True))
    if isinstance(wanted, dict) and isinstance(got, dict):
        return wanted.keys() == got.keys() and all(_same(wanted[k], got[k]) for k in wanted)
    numbers = (int, float)
    if isinstance(wanted, numbers) and isinstance(got, numbers) and not isinstance(wanted, bool) and not isinstance(got, bool):
        return math.isclose(wanted, got, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE)
    return wanted == got
