"""Prometheus metrics (``GET /metrics``): what operators of Immich or Qdrant expect to
graph. Event metrics (embeddings, searches, requests, failures) live for the process;
the file counts and the queue are read from the service when scraped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

EMBED_SECONDS = Histogram(
    "msearch_embed_seconds",
    "Time of one call into the embedding engine, by input kind",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SEARCH_SECONDS = Histogram(
    "msearch_search_seconds",
    "Time to answer one search, embedding included, by query kind",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_REQUESTS = Counter(
    "msearch_http_requests",
    "HTTP requests answered, by route template and status",
    ["route", "status"],
    registry=REGISTRY,
)
INDEX_FAILURES = Counter(
    "msearch_index_failures", "Files that ended failed, by error code", ["code"], registry=REGISTRY
)


@contextmanager
def timed(histogram: Histogram, kind: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(kind=kind).observe(time.perf_counter() - started)


def exposition(files: dict[tuple[str, str], int], queue_depth: int) -> bytes:
    """The text format: the process's metrics plus this service's files and queue."""
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Snapshot(files, queue_depth))
    return generate_latest(REGISTRY) + generate_latest(gauges)


class _Snapshot:
    def __init__(self, files: dict[tuple[str, str], int], queue_depth: int) -> None:
        self._files = files
        self._queue_depth = queue_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        files = GaugeMetricFamily(
            "msearch_files",
            "Files known to the index, by status and media type",
            labels=["status", "media_type"],
        )
        for (status, media_type), count in sorted(self._files.items()):
            files.add_metric([status, media_type], count)
        yield files
        yield GaugeMetricFamily(
            "msearch_queue_depth", "Files queued or being processed", value=self._queue_depth
        )
