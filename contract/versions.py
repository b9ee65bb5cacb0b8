"""A deployment version's instance settings: what UbiOps gives a version whose create call leaves
them out, and the range of its idle time [SDK `DeploymentVersionCreate`, docs: scaling]."""

from __future__ import annotations

MINIMUM_INSTANCES = 0
MAXIMUM_INSTANCES = 5
MAXIMUM_IDLE_TIME = 300
"""Seconds an instance waits for a request before it is stopped."""
IDLE_TIME_RANGE = (10, 3600)
