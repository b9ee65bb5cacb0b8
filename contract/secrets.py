"""Masking secret values in text shown to a person or kept by CI (a failing check's or test's log
tail): shared by the deployer, the emulator's launcher and pytest fixture, the instances' log relay,
the installer's output and the console log. Standard library only."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 8
"""Shorter values are not masked: they would mask ordinary words, and say little about the value."""
MASK = "***"


def _spellings(value: str) -> set[str]:
    """How a program may print `value`: as written, in a JSON body (quotes, backslashes and non-ASCII
    escaped), URL-encoded (`quote`, `quote_plus`: a requests error quoting a URL whose query holds it),
    and as Python's `repr`/`ascii`/`unicode_escape` spell it."""
    return {value, json.dumps(value)[1:-1], quote(value), quote(value, safe=""), quote_plus(value),
            quote_plus(value, safe="/"), repr(value)[1:-1], ascii(value)[1:-1],
            value.encode("unicode_escape").decode("ascii")}


def secret_forms(values: Iterable[str]) -> list[str]:
    """The spellings of each value of at least MIN_SECRET_LENGTH, and of each of its lines that long
    (a multi-line secret, a PEM key, is logged line by line), the longest first, so one holding
    another is masked whole."""
    wanted = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
    wanted |= {line.strip() for v in wanted for line in v.splitlines()}
    forms = {form for v in wanted if len(v) >= MIN_SECRET_LENGTH for form in _spellings(v)}
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def masked(text: str, values: Iterable[str]) -> str:
    """`text` with every spelling (`secret_forms`) of each of `values` replaced by MASK."""
    return masked_forms(text, secret_forms(values))


def masked_forms(text: str, forms: Iterable[str]) -> str:
    """`text` with each of `forms` (made once by `secret_forms`, for many texts masked alike) replaced by MASK."""
    for form in forms:
        text = text.replace(form, MASK)
    return text
