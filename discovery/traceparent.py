"""The W3C ``traceparent`` header (https://www.w3.org/TR/trace-context/): parsed, and written
for a child span, and the remote parent it names. The one reading of it: the gateway's tracing
and the in-process mesh client (``discovery.mesh``) both use this module."""

from __future__ import annotations

from opentelemetry.trace import SpanContext, TraceFlags, TraceState

_HEX = frozenset("0123456789abcdef")


def parse_traceparent(value: str) -> tuple[int, int, bool] | None:
    """W3C ``version-traceid-parentid-flags`` → ``(trace id, parent span id, sampled)``; None
    when malformed (then the caller starts a trace)."""
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    version, trace_hex, span_hex, flags = parts[:4]
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags) != 2:
        return None
    if not (set(trace_hex) <= _HEX and set(span_hex) <= _HEX and set(flags) <= _HEX):
        return None
    if version == "00" and len(parts) != 4:
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """Version 00, as every hop writes it."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def remote_parent(
    trace_id: int, span_id: int, sampled: bool, state: TraceState | None
) -> SpanContext:
    """The span an inbound ``traceparent`` (and ``tracestate``) names, as OpenTelemetry's
    remote parent of the spans this hop makes."""
    return SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
        trace_state=state,
    )
