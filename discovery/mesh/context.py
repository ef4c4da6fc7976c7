"""The current call's context: its trace parent and gray-release lane, carried through a
service's own outbound calls.

A ``contextvars`` variable, so every asyncio task a request handler starts inherits it and
concurrent requests never see each other's. ``mesh_middleware`` sets it from an inbound
request; code outside a request (a job, a script) can set it with ``call_context``.

Outbound, a call carries:

- ``traceparent``: the attempt's CLIENT span when a tracer records one (``span_parent`` is its
  parent: the active OpenTelemetry span, else the inbound trace); without one, the trace of the
  active span, else the inbound trace, else a new (unsampled) trace, with a new span id: the
  parent of whatever the callee records;
- ``tracestate`` as it came in;
- ``baggage``: the inbound members (and the caller's own) with ``lane=NAME`` for the lane, in
  the gateway's wire format (``discovery.baggage``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceState

from discovery import baggage
from discovery.traceparent import format_traceparent, parse_traceparent, remote_parent
from resilience.lanes import STABLE, valid_lane


@dataclass(frozen=True, slots=True)
class CallContext:
    """``trace``: (trace id, parent span id, sampled) from the inbound ``traceparent``;
    ``lane``: the lane asked for (None: stable); ``baggage``: the inbound ``baggage`` field
    values, passed on with the lane merged in."""

    trace: tuple[int, int, bool] | None = None
    tracestate: str | None = None
    lane: str | None = None
    baggage: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.lane is not None and not valid_lane(self.lane):
            raise ValueError(f"{self.lane!r} is not a valid lane name")


_CURRENT: ContextVar[CallContext | None] = ContextVar("meshgate_call_context", default=None)


def current() -> CallContext | None:
    return _CURRENT.get()


@contextmanager
def call_context(context: CallContext) -> Iterator[CallContext]:
    """Make ``context`` the current one inside the ``with`` (and the tasks started there)."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def from_headers(headers: Mapping[str, str], *, trust_lane: bool = True) -> CallContext:
    """The context an inbound request carries. ``headers`` is a case-insensitive mapping
    (aiohttp's ``CIMultiDictProxy``: every ``baggage`` field counts)."""
    raw = headers.get("traceparent")
    parsed = parse_traceparent(raw) if raw else None
    values = _all(headers, "baggage")
    lane = None
    if trust_lane and values:
        lane = baggage.inbound_lane([(baggage.NAME, v.encode("latin-1")) for v in values])
    return CallContext(
        trace=parsed,
        tracestate=headers.get("tracestate") if parsed is not None else None,
        lane=None if lane == STABLE else lane,
        baggage=tuple(values),
    )


def _all(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        found: list[str] = getall(name, [])
        return found
    value = headers.get(name)
    return [value] if value is not None else []


def span_parent(context: CallContext | None) -> tuple[Context | None, int | None]:
    """The parent of a call's CLIENT spans and its span id: the active OpenTelemetry span (the
    current context: None), else the inbound trace as a remote parent, else none (a root)."""
    active = otel_trace.get_current_span().get_span_context()
    if active.is_valid:
        return None, active.span_id
    if context is None or context.trace is None:
        return None, None
    trace_id, parent_id, sampled = context.trace
    state = TraceState.from_header([context.tracestate]) if context.tracestate else None
    remote = remote_parent(trace_id, parent_id, sampled, state)
    return otel_trace.set_span_in_context(NonRecordingSpan(remote), Context()), parent_id


def outbound_headers(
    context: CallContext | None,
    rng: random.Random,
    own_baggage: Iterable[str] = (),
    span: SpanContext | None = None,
) -> list[tuple[str, str]]:
    """The propagation fields for one outbound attempt: ``traceparent`` (``span``'s, the
    attempt's CLIENT span, when given; else a new span id), ``tracestate`` when known, and
    ``baggage`` (the context's and ``own_baggage``, the caller's own fields, with the
    context's lane) when anything is left."""
    out: list[tuple[str, str]] = []
    active = otel_trace.get_current_span().get_span_context()
    if span is not None and span.is_valid:
        out.append(
            (
                "traceparent",
                format_traceparent(span.trace_id, span.span_id, span.trace_flags.sampled),
            )
        )
        if span.trace_state:
            out.append(("tracestate", span.trace_state.to_header()))
        elif not active.is_valid and context is not None and context.tracestate:
            out.append(("tracestate", context.tracestate))
        return _with_baggage(out, context, own_baggage)
    span_id = rng.getrandbits(64) or 1
    if active.is_valid:
        out.append(
            (
                "traceparent",
                format_traceparent(active.trace_id, span_id, active.trace_flags.sampled),
            )
        )
        if active.trace_state:
            out.append(("tracestate", active.trace_state.to_header()))
    elif context is not None and context.trace is not None:
        trace_id, _parent, sampled = context.trace
        out.append(("traceparent", format_traceparent(trace_id, span_id, sampled)))
        if context.tracestate:
            out.append(("tracestate", context.tracestate))
    else:
        # No trace yet: start one, unsampled (what the gateway does for an untraced request).
        out.append(("traceparent", format_traceparent(rng.getrandbits(128) or 1, span_id, False)))
    return _with_baggage(out, context, own_baggage)


def _with_baggage(
    out: list[tuple[str, str]], context: CallContext | None, own_baggage: Iterable[str]
) -> list[tuple[str, str]]:
    lane = context.lane if context is not None else None
    fields = [(baggage.NAME, v.encode("latin-1")) for v in own_baggage]
    if context is not None:
        fields.extend((baggage.NAME, v.encode("latin-1")) for v in context.baggage)
    merged = baggage.outbound(fields or None, lane)
    out.extend(("baggage", value.decode("latin-1")) for _name, value in merged)
    return out
