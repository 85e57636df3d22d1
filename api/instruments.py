"""What the API tells Prometheus (``GET /metrics``): requests by endpoint and status, each model's time per request,
images per network run (dynamic batching at work), requests queued per model and the ones refused when a queue is
full. prometheus_client's own instruments, in a registry of the app's own (no process-global state)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Instruments:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "imgbench_requests", "prediction requests by endpoint and HTTP status", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.model_seconds = Histogram(
            "imgbench_model_seconds", "one model's time for one request: waiting for the network and running it",
            ["model"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_images = Histogram(
            "imgbench_network_batch_images", "images per network run (requests batched together share one run)",
            ["model"], buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.queued = Gauge(
            "imgbench_model_queue", "requests admitted to a model and not finished yet", ["model"],
            registry=self.registry,
        )  # fmt: skip
        self.rejected = Counter(
            "imgbench_rejected", "requests refused with 503 (queue full or timed out waiting)", ["model", "reason"],
            registry=self.registry,
        )  # fmt: skip

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
