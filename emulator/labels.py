"""The `labels` filter of UbiOps' list calls, as every backend applies it: an object matches when it
carries each `key:value` asked (no filter matches everything). `emulator.api.labels` reads it from the query."""

from __future__ import annotations

from collections.abc import Mapping


def has_labels(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether `labels` holds every key of `wanted`, with its value."""
    return all(labels.get(key) == value for key, value in wanted.items())
