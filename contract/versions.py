"""A deployment version's instance settings: what UbiOps gives a version whose create call leaves
them out, the range of its idle time, and the order of its minimum and maximum instances [SDK
`DeploymentVersionCreate`, docs: scaling; the wording of the last refusal is the emulator's own]."""

from __future__ import annotations

MINIMUM_INSTANCES = 0
MAXIMUM_INSTANCES = 5
MAXIMUM_IDLE_TIME = 300
"""Seconds an instance waits for a request before it is stopped."""
IDLE_TIME_RANGE = (10, 3600)


def instance_range_problem(minimum: int, maximum: int) -> str | None:
    """UbiOps scales a version between its minimum and maximum instances: the first cannot pass the
    second. One rule for the emulator's API and the deployer's config and flags."""
    if minimum > maximum:
        return f"minimum_instances ({minimum}) exceeds maximum_instances ({maximum})"
    return None
