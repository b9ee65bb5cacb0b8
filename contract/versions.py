"""A deployment version's instance settings: what UbiOps gives a version whose create call leaves
them out (its instance type group too), the range of its idle time, the order of its minimum and
maximum instances [SDK `DeploymentVersionCreate`, docs: scaling; the wording of the last refusal is
the emulator's own], and the memory an instance type group's name gives its instances."""

from __future__ import annotations

import re

DEFAULT_INSTANCE_TYPE_GROUP = "512 MB + 0.125 vCPU"
"""UbiOps' default instance type group: the deployer's default (`[tool.deployer] instance_type_group`), and
the group the emulator reports for a version created without one (its instances get this machine's
resources, whatever their group)."""
MINIMUM_INSTANCES = 0
MAXIMUM_INSTANCES = 5
MAXIMUM_IDLE_TIME = 300
"""Seconds an instance waits for a request before it is stopped."""
IDLE_TIME_RANGE = (10, 3600)
GROUP_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(MB|MiB|GB|GiB)(?![A-Za-z])", re.IGNORECASE)
"""The memory at the start of an instance type group's name: `2048 MB + 0.5 vCPU`, `16 GB + 4 vCPU`."""


def instance_range_problem(minimum: int, maximum: int) -> str | None:
    """UbiOps scales a version between its minimum and maximum instances: the first cannot pass the
    second. One rule for the emulator's API and the deployer's config and flags."""
    if minimum > maximum:
        return f"minimum_instances ({minimum}) exceeds maximum_instances ({maximum})"
    return None


def instance_type_memory_mb(group: str) -> int | None:
    """The memory, in MB (MiB, as `--instance-memory-mb` counts it), of each instance of
    the instance type group `group`, read from its name as UbiOps names its groups: `2048 MB + 0.5 vCPU`
    → 2048, `16 GB + 4 vCPU` → 16384, `16384 MB + 4 vCPU + NVIDIA Tesla T4` → 16384. None for a name that
    does not start with a memory (a group an organisation made and named itself)."""
    found = GROUP_MEMORY.match(group)
    if found is None:
        return None
    megabytes = round(float(found[1]) * (1024 if found[2].lower().startswith("g") else 1))
    return megabytes or None
