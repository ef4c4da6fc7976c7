"""The access log: one JSON object per line for every proxied request, on by default.

Why it looks the way it does:

* **Cost on the request path.** A whole proxied request costs about 50 µs of CPU; the access
  log may spend 1-2 µs of that. Building a dict and ``json.dumps``-ing it costs ~4 µs, so the
  event loop does none of it: :meth:`AccessLog.record` takes plain positional values, packs them
  into one tuple and appends it to a :class:`collections.deque` (atomic under the GIL, no lock).
* **Never blocking the event loop.** A single daemon writer thread drains the queue in batches,
  formats each tuple with a hand-rolled template (strings escaped by the C
  ``encode_basestring_ascii`` that ``json`` itself uses, numbers with ``%``) and writes the batch
  as one string with one ``write`` + ``flush``. It wakes every ``flush_interval`` or as soon as
  ``batch_size`` records are waiting; a slow or stuck stdout only ever stalls that thread.
* **Bounded memory.** If the output is stuck (a blocked pipe, a paused collector) the queue stops
  at ``max_pending`` records; later records are dropped and counted, never blocking or raising,
  and a ``{"accessLogDropped":N}`` line is written once the writer catches up.
* **Nothing lost on a graceful shutdown.** :meth:`AccessLog.close` lets the writer drain what is
  left (bounded by a timeout) before it returns.

Lines are formatted from the values passed in only (``start_time`` is ``time.time()`` at request
start), so the output is deterministic for a given record.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Final, Protocol

__all__ = ["AccessLog", "AccessTuple", "TextSink", "format_record"]

logger = logging.getLogger(__name__)

#: ``(start_time, request_id, route_id, method, path, status, duration, upstream, bytes_in,
#: bytes_out, client, trace_id, span_id, lane, lane_fallback, principal)`` — what
#: :meth:`AccessLog.record` queues.
AccessTuple = tuple[
    float,
    str,
    str | None,
    str,
    str,
    int,
    float,
    str | None,
    int,
    int,
    str,
    str | None,
    str | None,
    str | None,
    bool,
    str | None,
]

#: The JSON fields of a line, in order.
FIELDS: Final = (
    "time",
    "requestId",
    "route",
    "method",
    "path",
    "status",
    "durationMs",
    "upstream",
    "bytesIn",
    "bytesOut",
    "client",
    "traceId",
    "spanId",
    "lane",
    "laneFallback",
    "principal",
)

_LINE: Final = (
    '{"time":"%s.%03d+00:00","requestId":%s,"route":%s,"method":%s,"path":%s,"status":%d,'
    '"durationMs":%.3f,"upstream":%s,"bytesIn":%d,"bytesOut":%d,"client":%s,"traceId":%s,'
    '"spanId":%s,"lane":%s,"laneFallback":%s,"principal":%s}\n'
)


class TextSink(Protocol):
    """Where lines go: ``sys.stdout`` or anything else with ``write(str)`` and ``flush()``."""

    def write(self, s: str, /) -> object: ...

    def flush(self) -> object: ...


@lru_cache(maxsize=8)
def _second_prefix(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def format_record(record: AccessTuple) -> str:
    """One access-log line (with its newline) for a queued record.

    ``time`` is exactly ``datetime.fromtimestamp(start_time, UTC).isoformat(timespec=
    "milliseconds")`` (same rounding), as in the JSON process log. Values of the wrong type, or
    a non-finite duration, take a slower path that still yields one valid JSON line."""
    (
        start_time,
        request_id,
        route_id,
        method,
        path,
        status,
        duration,
        upstream,
        bytes_in,
        bytes_out,
        client,
        trace_id,
        span_id,
        lane,
        lane_fallback,
        principal,
    ) = record
    enc = encode_basestring_ascii
    try:
        # datetime.fromtimestamp's rounding: microseconds rounded half-even from the fraction.
        fraction, whole = math.modf(start_time)
        micros = round(fraction * 1e6)
        second = int(whole)
        if micros >= 1_000_000:
            second += 1
            micros -= 1_000_000
        elif micros < 0:
            second -= 1
            micros += 1_000_000
        duration_ms = duration * 1000.0
        if not math.isfinite(duration_ms):
            raise ValueError(duration)
        return _LINE % (
            _second_prefix(second),
            micros // 1000,
            enc(request_id),
            "null" if route_id is None else enc(route_id),
            enc(method),
            enc(path),
            status,
            duration_ms,
            "null" if upstream is None else enc(upstream),
            bytes_in,
            bytes_out,
            enc(client),
            "null" if trace_id is None else enc(trace_id),
            "null" if span_id is None else enc(span_id),
            "null" if lane is None else enc(lane),
            "true" if lane_fallback is True else "false",
            "null" if principal is None else enc(principal),
        )
    except Exception:
        return _format_fallback(record)


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int):
        return value  # bool is an int
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        return repr(value)
    except Exception:
        return "<unrepresentable>"


def _format_fallback(record: tuple[object, ...]) -> str:
    """The slow path for records the template cannot take: still one JSON object per line."""
    entry = {name: _plain(value) for name, value in zip(FIELDS, record, strict=False)}
    try:
        stamp = datetime.fromtimestamp(float(record[0]), UTC)  # type: ignore[arg-type]
        entry["time"] = stamp.isoformat(timespec="milliseconds")
    except Exception:
        pass
    try:
        duration_ms = round(float(record[6]) * 1000.0, 3)  # type: ignore[arg-type]
        entry["durationMs"] = duration_ms if math.isfinite(duration_ms) else None
    except Exception:
        pass
    return json.dumps(entry, separators=(",", ":"), default=repr) + "\n"


class AccessLog:
    """Queues one record per proxied request and writes JSON lines from a writer thread.

    :meth:`record` is meant for the event-loop thread (calls from other threads are safe, but the
    ``dropped`` count may then under-count). Call :meth:`start` once, :meth:`close` at shutdown.
    Records queued before :meth:`start` are kept (up to ``max_pending``) and written once it runs;
    records after :meth:`close` are ignored."""

    __slots__ = (
        "_accepting",
        "_batch_size",
        "_closed",
        "_dropped",
        "_enabled",
        "_flush_interval",
        "_lost",
        "_max_pending",
        "_queue",
        "_reported",
        "_stopping",
        "_stream",
        "_wake",
        "_wake_at",
        "_write_failing",
        "_writer",
    )

    def __init__(
        self,
        *,
        stream: TextSink | None = None,
        enabled: bool = True,
        flush_interval: float = 0.1,
        max_pending: int = 100_000,
        batch_size: int = 1024,
    ) -> None:
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be > 0, not {flush_interval!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, not {max_pending!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size!r}")
        self._stream: TextSink = sys.stdout if stream is None else stream
        self._enabled = enabled
        self._accepting = enabled
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._batch_size = batch_size
        # record() sees the length *before* its append: waking at batch_size - 1 means the
        # writer is told once, when the batch_size-th record arrives.
        self._wake_at = batch_size - 1
        self._queue: deque[AccessTuple] = deque()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._dropped = 0  # written by record() only
        self._lost = 0  # written by the writer only: records in batches whose write failed
        self._reported = 0  # written by the writer only: drops already reported in the log
        self._write_failing = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def dropped(self) -> int:
        """Records that never made it into the output: refused because ``max_pending`` records
        were waiting, or in a batch whose ``write``/``flush`` raised."""
        return self._dropped + self._lost

    @property
    def pending(self) -> int:
        """Records queued and not yet formatted."""
        return len(self._queue)

    def record(
        self,
        start_time: float,
        request_id: str,
        route_id: str | None,
        method: str,
        path: str,
        status: int,
        duration: float,
        upstream: str | None,
        bytes_in: int,
        bytes_out: int,
        client: str,
        trace_id: str | None,
        span_id: str | None,
        lane: str | None = None,
        lane_fallback: bool = False,
        principal: str | None = None,
    ) -> None:
        """Queue one request's line. ``start_time`` is ``time.time()`` at request start,
        ``duration`` is in seconds; ``lane``: the lane of the instance the request went to
        (None: no discovered instance), ``lane_fallback``: its own lane had none, so stable
        took it; ``principal``: who an authentication filter found the client to be (None:
        not authenticated). Never blocks, never formats, never raises."""
        if not self._accepting:
            return
        queue = self._queue
        n = len(queue)
        if n >= self._max_pending:
            self._dropped += 1
            return
        queue.append(
            (
                start_time,
                request_id,
                route_id,
                method,
                path,
                status,
                duration,
                upstream,
                bytes_in,
                bytes_out,
                client,
                trace_id,
                span_id,
                lane,
                lane_fallback,
                principal,
            )
        )
        if n == self._wake_at:
            self._wake.set()

    def start(self) -> None:
        """Start the writer thread (idempotent; nothing happens when the log is disabled)."""
        if self._closed:
            raise RuntimeError("the access log is closed")
        if self._enabled and self._writer is None:
            self._start_thread()

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting records, let the writer write everything queued and stop it. Waits at
        most ``timeout`` seconds (a stuck output must not hang shutdown); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._accepting = False
        if self._writer is None:
            if not self._queue:
                return
            self._start_thread()  # records were queued but start() never ran: write them now
        assert self._writer is not None
        self._stopping = True
        self._wake.set()
        self._writer.join(timeout)
        if self._writer.is_alive():
            logger.warning(
                "access log: output still blocked after %.1fs at shutdown; "
                "%d queued records not written",
                timeout,
                len(self._queue),
            )

    # -- the writer thread ---------------------------------------------------------------------

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name="meshgate-access-log", daemon=True)
        self._writer = thread
        thread.start()

    def _run(self) -> None:
        wake = self._wake
        interval = self._flush_interval
        while not self._stopping:
            wake.wait(interval)
            wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Write everything queued, ``batch_size`` lines per write, then any drop report."""
        queue = self._queue
        popleft = queue.popleft
        batch_size = self._batch_size
        while True:
            n = min(len(queue), batch_size)
            lines = [format_record(popleft()) for _ in range(n)]
            caught_up = n < batch_size
            unreported = 0
            if caught_up:
                unreported = self._dropped + self._lost - self._reported
                if unreported:
                    lines.append(f'{{"accessLogDropped":{unreported}}}\n')
            if lines:
                self._write("".join(lines), n, unreported)
            if caught_up:
                return

    def _write(self, text: str, records: int, unreported: int) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except Exception:
            self._lost += records
            if not self._write_failing:
                self._write_failing = True
                logger.warning("access log: writing to the output failed", exc_info=True)
            return
        self._reported += unreported
        self._write_failing = False
