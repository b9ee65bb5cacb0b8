"""The emulator's metrics, served at `/metrics` in Prometheus' text format (README, "Metrics and health").

Each is counted where its event is already known, with one call: a request ending (the request
runner), an instance starting or being lost (each pool, through the runtime's `InstanceEvents`), a
build ending (the builder). Queue lengths are read from the pools when Prometheus scrapes. Each app
has a `CollectorRegistry` of its own, never the library's global one, so two emulators in one
process never share or clash over a metric. A version's label sets follow it when it is renamed and
go when it is deleted (`emulator.registry.Registry` says so).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from emulator.registry import Registry
from emulator.runtime.instance import Instance
from emulator.runtime.manager import Runtime

PREFIX = "ubiops_emulator"
REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""A request lasts from milliseconds (a small model) to its timeout (at most an hour, batches aside)."""
BUILD_SECONDS_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 2400)
"""A build is its environment's install (at most `python_envs.BUILD_SECONDS`, 30 minutes) and its
instances' start (at most `builds.BUILD_TIMEOUT_SECONDS`, 10 minutes)."""
VERSION = ("project", "deployment", "version")
"""Every metric's labels: one data folder can hold several projects with the same deployment names."""


class Metrics:
    """The metrics of one emulator (its `CollectorRegistry` is `collectors`)."""

    def __init__(self) -> None:
        self.collectors = CollectorRegistry()
        self._requests = Counter(f"{PREFIX}_requests", "Deployment requests ended, by final status",
                                 (*VERSION, "status"), registry=self.collectors)
        self._request_seconds = Histogram(f"{PREFIX}_request_duration_seconds",
                                          "Time from a request's creation to its end", VERSION,
                                          buckets=REQUEST_SECONDS_BUCKETS, registry=self.collectors)
        self._instance_starts = Counter(f"{PREFIX}_instance_starts",
                                        "Instances (worker processes) started: first starts and restarts",
                                        VERSION, registry=self.collectors)
        self._instance_restarts = Counter(f"{PREFIX}_instance_restarts",
                                          "Instances started to replace one that was lost", VERSION,
                                          registry=self.collectors)
        self._instance_crashes = Counter(f"{PREFIX}_instance_crashes",
                                         "Instances lost, by reason: timeout, memory, crash, cancelled (its request "
                                         "was), or start (it could not start)",
                                         (*VERSION, "reason"), registry=self.collectors)
        self._build_seconds = Histogram(f"{PREFIX}_build_duration_seconds",
                                        "Time a revision's build took, by outcome (success, failed)",
                                        (*VERSION, "outcome"), buckets=BUILD_SECONDS_BUCKETS, registry=self.collectors)
        self._by_version: tuple[MetricWrapperBase, ...] = (
            self._requests, self._request_seconds, self._instance_starts, self._instance_restarts,
            self._instance_crashes, self._build_seconds)
        """Every metric labelled by VERSION (the queue lengths are read from the registry)."""

    def watch_queues(self, registry: Registry, runtime: Runtime) -> None:
        """Report each version's queue length, read from `runtime` at each scrape."""
        self.collectors.register(QueueLengths(registry, runtime))

    def exposition(self) -> bytes:
        """Every metric, in Prometheus' text format."""
        return generate_latest(self.collectors)

    def forget(self, project: str, deployment: str, version: str | None = None) -> None:
        """Drop the label sets of a deleted deployment (or, named, version): they stayed for good, and the
        lines of versions long gone made most of /metrics."""
        labels = {"project": project, "deployment": deployment, **({"version": version} if version is not None else {})}
        for metric in self._by_version:
            metric.remove_by_labels(labels)

    def rename(self, project: str, deployment: str, version: str | None, new_name: str) -> None:
        """Move the label sets of a renamed deployment (or, named, version) to its new name, where its
        counts go on."""
        old = (project, deployment) if version is None else (project, deployment, version)
        for metric in self._by_version:
            with metric._lock:  # prometheus_client (pinned) keeps each label set's child in `_metrics`, by its values
                children = metric._metrics
                for labels in [labels for labels in children if tuple(labels[:len(old)]) == old]:
                    children[(*old[:-1], new_name, *labels[len(old):])] = children.pop(labels)

    def request_ended(self, project: str, deployment: str, version: str, status: str, seconds: float) -> None:
        self._requests.labels(project, deployment, version, status).inc()
        self._request_seconds.labels(project, deployment, version).observe(seconds)

    def instance_started(self, instance: Instance, restart: bool) -> None:
        launch = instance.launch
        self._instance_starts.labels(launch.project, launch.deployment, launch.version).inc()
        if restart:
            self._instance_restarts.labels(launch.project, launch.deployment, launch.version).inc()

    def instance_ready(self, instance: Instance) -> None:
        """Not counted: every start is, and each loss by its reason."""

    def instance_lost(self, instance: Instance, reason: str, detail: str) -> None:
        launch = instance.launch
        self._instance_crashes.labels(launch.project, launch.deployment, launch.version, reason).inc()

    def instance_stopped(self, instance: Instance) -> None:
        """Not counted: a stop that was asked for is no loss."""

    def build_ended(self, project: str, deployment: str, version: str, outcome: str, seconds: float) -> None:
        self._build_seconds.labels(project, deployment, version, outcome).observe(seconds)


class QueueLengths(Collector):
    """`ubiops_emulator_queue_length`: the requests waiting for a free instance, per version, now."""

    def __init__(self, registry: Registry, runtime: Runtime) -> None:
        self._registry = registry
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(f"{PREFIX}_queue_length", "Requests waiting for a free instance", labels=VERSION)
        for project, deployment, version in self._registry.versions():
            family.add_metric((project.name, deployment.name, version.name), self._runtime.pool(version).queued)
        yield family
