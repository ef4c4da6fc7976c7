"""OTLP/HTTP transport: encoded ``ExportTraceServiceRequest`` bodies to a collector.

Failures are not retried: the batch is dropped and counted, the next one tries again. A post
never waits on anything but its own socket. No OpenTelemetry import here: the exporter process
(:mod:`gateway.observability.span_exporter_process`) loads only this.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import threading
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

log = logging.getLogger("meshgate.tracing")


def parse_headers(text: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value`` pairs, comma-separated, URL-encoded."""
    headers: dict[str, str] = {}
    for item in text.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers


class OtlpHttpSender:
    """Posts encoded ``ExportTraceServiceRequest`` bodies to a collector over one kept-alive
    connection. It runs wherever exports run: the batch processor's thread, or the exporter
    process (:mod:`gateway.observability.span_exporter_process`)."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        compression: str | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/v1/traces"
        self._timeout = timeout
        self._gzip = compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        return self._connection

    def post(self, body: bytes, count: int) -> bool:
        """One batch of ``count`` spans; False when it was dropped (logged, not retried)."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)
        with self._lock:
            for attempt in (0, 1):  # a kept-alive connection the collector closed: once more
                connection = self._connect()
                try:
                    connection.request("POST", self._path, body, self._headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    self._connection = None
                    if attempt:
                        return self._failed(f"{type(exc).__name__}: {exc}", count)
                    continue
                if 200 <= response.status < 300:
                    if self.failures:
                        log.info("span export recovered after %d failed batches", self.failures)
                        self.failures = 0
                    return True
                return self._failed(f"collector answered {response.status}", count)
        return False  # pragma: no cover - the loop always returns

    def _failed(self, reason: str, count: int) -> bool:
        self.failures += 1
        # The first failure is news; later ones are the same outage (debug, not a log flood).
        level = logging.WARNING if self.failures == 1 else logging.DEBUG
        log.log(level, "dropped %d spans: %s", count, reason)
        return False

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
