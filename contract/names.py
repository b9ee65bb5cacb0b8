"""The names UbiOps gives projects, deployments and versions (an assumption the emulator enforces)."""

from __future__ import annotations

import re

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
"""Lowercase letters, digits and dashes, not starting or ending with a dash."""
MAX_NAME_LENGTH = 64


def is_name(text: str) -> bool:
    return len(text) <= MAX_NAME_LENGTH and re.fullmatch(NAME_PATTERN, text) is not None


def name_from(text: str) -> str:
    """The nearest valid name to `text` (a folder or file name): lowercase, other characters as dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_NAME_LENGTH].strip("-") or "deployment"
