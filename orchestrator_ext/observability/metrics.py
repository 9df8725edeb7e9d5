"""Prometheus metrics of one server: the four golden signals plus pool and executions.

A registry per server instance (no process-global state), rendered by the
metrics handler in the Prometheus text format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

#: the ``application_name`` prefix of a worker's queue connection: the server counts live workers by it
WORKER_APPLICATION_NAME = "orchestrator-worker"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PoolCollector(Collector):
    """Reads the database pool's state at scrape time."""

    def __init__(self, status: Callable[[], dict[str, int]]) -> None:
        self.status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "orchestrator_db_pool_connections", "Database pool connections by state.", labels=["state"]
        )
        for state, value in self.status().items():
            family.add_metric([state], float(value))
        yield family


class RuntimeCollector(Collector):
    """The frameworks' figures (steps, model calls, tokens, step time), as counters by framework."""

    FAMILIES = (
        ("orchestrator_runtime_runs", "Framework runs that recorded steps, by framework.", "runs"),
        ("orchestrator_runtime_steps", "Steps (nodes, tasks, agent runs) of framework runs, by framework.", "steps"),
        ("orchestrator_runtime_model_calls", "Model calls of framework runs, by framework.", "model_calls"),
        (
            "orchestrator_runtime_step_seconds",
            "Time spent in the steps of framework runs, by framework.",
            "step_seconds",
        ),
    )

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        totals = self.metrics.runtime_totals
        for name, help_text, key in self.FAMILIES:
            family = CounterMetricFamily(name, help_text, labels=["framework"])
            for framework, figures in sorted(totals.items()):
                family.add_metric([framework], figures.get(key, 0.0))
            yield family
        tokens = CounterMetricFamily(
            "orchestrator_runtime_tokens",
            "Model tokens of framework runs, by framework and kind.",
            labels=["framework", "kind"],
        )
        for framework, figures in sorted(totals.items()):
            tokens.add_metric([framework, "prompt"], figures.get("prompt_tokens", 0.0))
            tokens.add_metric([framework, "completion"], figures.get("completion_tokens", 0.0))
        yield tokens


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "orchestrator_http_requests",
            "API requests by route, method and status code (traffic and errors).",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "orchestrator_http_request_duration_seconds",
            "API request latency by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "orchestrator_http_requests_in_flight", "API requests being handled (saturation).", registry=self.registry
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.executions = Gauge(
            "orchestrator_executions", "Executions by status, all organizations.", ["status"], registry=self.registry
        )
        self.database_up = Gauge(
            "orchestrator_database_up",
            "1 when the last scrape's queries reached the database, else 0.",
            registry=self.registry,
        )
        self.queue_oldest = Gauge(
            "orchestrator_queue_oldest_seconds",
            "How long the oldest queued execution that is due has waited (0 when none waits).",
            registry=self.registry,
        )
        self.stuck = Gauge(
            "orchestrator_executions_stuck",
            "Running executions past their lease or a minute past their timeout, all organizations.",
            registry=self.registry,
        )
        self.workers = Gauge(
            "orchestrator_workers_connected",
            "Workers holding their queue connection to the database (live workers).",
            registry=self.registry,
        )
        #: per framework: runs, steps, model_calls, prompt_tokens, completion_tokens, step_seconds (from the database)
        self.runtime_totals: dict[str, dict[str, float]] = {}
        self.registry.register(RuntimeCollector(self))

    def watch_pool(self, status: Callable[[], dict[str, int]]) -> None:
        self.registry.register(PoolCollector(status))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # label children are looked up once per (route, method, status), not per request
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
