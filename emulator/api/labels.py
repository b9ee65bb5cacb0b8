"""The `labels` query filter of UbiOps' list endpoints: `key:value` pairs, comma-separated, all required."""

from __future__ import annotations

from emulator.api.errors import ApiError


def parse_label_filter(labels: str | None) -> dict[str, str]:
    """`team:vision,stage:prod` as a dict; a pair without `:` is a 400 naming it."""
    wanted: dict[str, str] = {}
    for pair in filter(None, (labels or "").split(",")):
        key, separator, value = pair.partition(":")
        if not separator or not key:
            raise ApiError(400, f"labels: {pair!r} is not written key:value")
        wanted[key.strip()] = value.strip()
    return wanted
