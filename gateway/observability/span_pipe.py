"""Encoded spans from a worker to its exporter process, through a pipe.

The event loop's part is an append to a deque (the span already encoded by the caller); a
flusher thread wakes when a batch is full or every schedule delay, joins the batch into one
``ExportTraceServiceRequest`` and writes it to the pipe: one syscall that releases the GIL,
where the batch processor's thread held it for the encoding, ``http.client`` and the collector's
answer. Posting, gzip and the collector's slowness are the exporter process's.

Bounded everywhere, so a collector outage costs dropped spans, never memory or a request: the
queue holds at most ``queue_size`` spans (more are dropped and counted); a slow collector fills
the pipe, which blocks the flusher thread, never the loop. A dead exporter process is started
again at the next flush, no more than once per ``respawn_interval``; the batches in between are
dropped and counted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

from gateway.observability.otlp_exporter import request_body
from gateway.observability.span_exporter_process import batch_frame, frame

log = logging.getLogger("meshgate.tracing")

PROCESS_MODULE = "gateway.observability.span_exporter_process"


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """What the exporter process posts with (sent as its first frame, not on its command line:
    the headers may carry credentials)."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    compression: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"

    def encode(self) -> bytes:
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "headers": dict(self.headers),
                "timeout": self.timeout,
                "compression": self.compression,
                "log_level": self.log_level,
                "log_format": self.log_format,
            }
        ).encode()


def start_exporter_process() -> subprocess.Popen[bytes]:
    """The exporter process with its standard input piped; it shares the worker's stderr, so its
    log lines land with the worker's."""
    return subprocess.Popen(
        [sys.executable, "-m", PROCESS_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        close_fds=True,  # never the listening sockets
    )


class SpanPipe:
    def __init__(
        self,
        config: ExporterConfig,
        *,
        resource: bytes,
        scope: bytes,
        batch_size: int = 512,
        queue_size: int = 2048,
        schedule_delay: float = 5.0,
        respawn_interval: float = 10.0,
        spawn: Callable[[], subprocess.Popen[bytes]] = start_exporter_process,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config.encode()
        self._resource = resource
        self._scope = scope
        self._batch_size = batch_size
        self._queue_size = queue_size
        self._delay = schedule_delay
        self._respawn_interval = respawn_interval
        self._spawn = spawn
        self._clock = clock
        # deque: append (loop) and popleft (flusher) are atomic under the GIL, no lock needed.
        self._queue: deque[bytes] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._child: subprocess.Popen[bytes] | None = None
        # The dead process already logged (its exit is reported once, not once per batch).
        self._mourned: subprocess.Popen[bytes] | None = None
        self._spawned_at: float | None = None
        self.dropped = 0  # spans refused by a full queue (the loop's count)
        self.lost = 0  # spans in batches the exporter process never got (the flusher's count)
        self.sent = 0  # spans written to the exporter process
        self._warned_full = False
        self._thread = threading.Thread(target=self._run, name="meshgate-spans", daemon=True)
        self._thread.start()

    # -- the loop's side ----------------------------------------------------------------------
    def add(self, entry: bytes) -> None:
        """One span, already a ``ScopeSpans.spans`` entry (``otlp_exporter.scope_span``)."""
        queue = self._queue
        size = len(queue)
        if size >= self._queue_size:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "span queue full (%d): dropping spans until the exporter catches up",
                    self._queue_size,
                )
            return
        queue.append(entry)
        if size + 1 == self._batch_size:
            self._wake.set()

    # -- the flusher thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self._delay)
                self._wake.clear()
                stopping = self._stopping
                self._drain()
                if stopping:
                    break
        except Exception:  # the boundary of this thread: spans are lost, requests never
            log.exception("span flusher stopped")
        finally:
            self._close_stdin()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch = []
            popleft = queue.popleft
            for _ in range(min(self._batch_size, len(queue))):
                batch.append(popleft())
            self._warned_full = False
            body = request_body(self._resource, self._scope, b"".join(batch))
            self._write(batch_frame(len(batch), body), len(batch))

    def _write(self, data: bytes, count: int) -> None:
        stdin = self._ensure_child()
        if stdin is None:
            self.lost += count
            return
        try:
            _write_all(stdin.fileno(), data)
        except OSError as exc:  # BrokenPipeError: the process died
            self.lost += count
            log.warning("span exporter process gone (%s): %d spans dropped", exc, count)
            self._close_stdin()
            return
        self.sent += count

    def _ensure_child(self) -> IO[bytes] | None:
        child = self._child
        if child is not None and child.poll() is None and not _closed(child):
            return child.stdin
        if child is not None and child is not self._mourned:
            # Once per process: until the respawn interval is over every batch comes here,
            # and a warning per batch would flood the log under load.
            self._mourned = child
            log.warning("span exporter process exited with %s", child.returncode)
            self._close_stdin()
        now = self._clock()
        if self._spawned_at is not None and now - self._spawned_at < self._respawn_interval:
            return None
        self._spawned_at = now
        try:
            child = self._spawn()
        except OSError as exc:
            log.warning("cannot start the span exporter process: %s", exc)
            return None
        assert child.stdin is not None
        self._child = child
        try:
            _write_all(child.stdin.fileno(), frame(self._config))
        except OSError:
            self._close_stdin()
            return None
        return child.stdin

    def _close_stdin(self) -> None:
        child = self._child
        if child is not None and child.stdin is not None:
            with contextlib.suppress(OSError):  # a broken pipe's buffer: nothing to keep
                child.stdin.close()  # closing twice is a no-op

    # -- shutdown -----------------------------------------------------------------------------
    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush what is queued, close the pipe and wait for the exporter process to post it:
        True when it finished within ``timeout``; otherwise it is killed (those spans lost)."""
        deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        child = self._child
        if child is None:
            return not self._thread.is_alive()
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("span exporter process still posting after %gs: stopped", timeout)
            child.kill()
            child.wait()
            return False
        return not self._thread.is_alive()


def _closed(child: subprocess.Popen[bytes]) -> bool:
    """Whether the pipe to ``child`` is closed (by us: after a write failed, or at the end)."""
    return child.stdin is None or child.stdin.closed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
