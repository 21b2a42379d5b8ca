"""Prometheus metrics: uploads, bytes, failures, request latency (one registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.uploads = Counter(
            "stowage_uploads_total", "Completed uploads", ["kind"], registry=self.registry
        )
        self.upload_bytes = Counter(
            "stowage_upload_bytes_total",
            "Bytes stored by uploads",
            ["kind"],
            registry=self.registry,
        )
        self.failures = Counter(
            "stowage_request_failures_total",
            "Requests that ended in an error, by error code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stowage_request_duration_seconds",
            "Request latency by route",
            ["method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )

    def uploaded(self, kind: str, size: int) -> None:
        self.uploads.labels(kind).inc()
        self.upload_bytes.labels(kind).inc(size)

    def failed(self, code: str) -> None:
        self.failures.labels(code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
