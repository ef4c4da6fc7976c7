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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceState

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
    return Propagation(context).span_parent()


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
    return Propagation(context, own_baggage).fields(rng, span)


class Propagation:
    """``span_parent`` and ``outbound_headers`` for every attempt of one call, worked out once
    per call: the active span (the current OpenTelemetry context is the task's, the same for
    all of a call's attempts), the trace an attempt without a span of its own joins, and the
    fields after its ``traceparent`` (``shared``: the same for every such attempt); such an
    attempt adds only its new span id (``traceparent``)."""

    __slots__ = ("_active", "_context", "_own_baggage", "_prefix", "_shared", "_state", "_suffix")

    def __init__(
        self,
        context: CallContext | None,
        own_baggage: Iterable[str] = (),
        *,
        active: SpanContext | None = None,
    ) -> None:
        """``active``: the active span's context when the caller has it (else looked up)."""
        self._context = context
        self._own_baggage = own_baggage
        if active is None:
            # ``get_current_span()``'s span context; an empty current context (no span, the
            # usual case without an SDK) has none to look up.
            current = otel_context.get_current()
            active = (
                otel_trace.get_current_span(current).get_span_context()
                if current
                else INVALID_SPAN_CONTEXT
            )
        self._active = active
        # The trace of an attempt without a span of its own: the active span's, else the
        # inbound one, else (prefix None) a new, unsampled one per attempt.
        self._prefix: str | None = None
        self._suffix = "-00"
        self._state: str | None = None
        if active.is_valid:
            self._prefix = f"00-{active.trace_id:032x}-"
            self._suffix = "-01" if active.trace_flags.sampled else "-00"
            if active.trace_state:
                self._state = active.trace_state.to_header()
        elif context is not None and context.trace is not None:
            trace_id, _parent, sampled = context.trace
            self._prefix = f"00-{trace_id:032x}-"
            self._suffix = "-01" if sampled else "-00"
            self._state = context.tracestate or None
        # Nothing to send after the traceparent (no tracestate, no baggage: nothing that could
        # fail to encode either) is known now; else ``shared`` makes it on the first attempt.
        self._shared: tuple[tuple[str, str], ...] | None = (
            () if self._state is None and context is None and not own_baggage else None
        )

    @classmethod
    def of(cls, context: CallContext | None, own_baggage: Sequence[str] = ()) -> Propagation:
        """A call's propagation: one shared by every call with nothing to carry on (no
        context, no baggage of its own, no active span: only new ids), else its own."""
        if context is None and not own_baggage and not otel_context.get_current():
            return _NOTHING
        return cls(context, own_baggage)

    def span_parent(self) -> tuple[Context | None, int | None]:
        """``span_parent(context)``."""
        active = self._active
        if active.is_valid:
            return None, active.span_id
        context = self._context
        if context is None or context.trace is None:
            return None, None
        trace_id, parent_id, sampled = context.trace
        state = TraceState.from_header([context.tracestate]) if context.tracestate else None
        remote = remote_parent(trace_id, parent_id, sampled, state)
        return otel_trace.set_span_in_context(NonRecordingSpan(remote), Context()), parent_id

    def fields(self, rng: random.Random, span: SpanContext | None = None) -> list[tuple[str, str]]:
        """``outbound_headers(context, rng, own_baggage, span)`` for one attempt."""
        if span is None or not span.is_valid:
            out = [("traceparent", self.traceparent(rng))]
            out.extend(self.shared())
            return out
        out = [
            (
                "traceparent",
                format_traceparent(span.trace_id, span.span_id, span.trace_flags.sampled),
            )
        ]
        context = self._context
        if span.trace_state:
            out.append(("tracestate", span.trace_state.to_header()))
        elif not self._active.is_valid and context is not None and context.tracestate:
            out.append(("tracestate", context.tracestate))
        out.extend(self._baggage())
        return out

    def traceparent(self, rng: random.Random) -> str:
        """The ``traceparent`` of an attempt without a span of its own: a new span id in the
        call's trace (``format_traceparent``'s form), in a new trace when it has none."""
        # ``int.to_bytes(...).hex()``: the same zero-padded lowercase hex as ``:016x`` and
        # ``:032x`` (the ids fit: 64 and 128 bits), for less than a format spec costs.
        span_id = rng.getrandbits(64) or 1
        prefix = self._prefix
        if prefix is None:
            # No trace yet: start one, unsampled (what the gateway does for an untraced
            # request).
            trace_id = rng.getrandbits(128) or 1
            return (
                "00-"
                + trace_id.to_bytes(16, "big").hex()
                + "-"
                + span_id.to_bytes(8, "big").hex()
                + "-00"
            )
        return prefix + span_id.to_bytes(8, "big").hex() + self._suffix

    def shared(self) -> tuple[tuple[str, str], ...]:
        """The fields after an attempt's ``traceparent`` when it has no span of its own:
        ``tracestate`` when known, then ``baggage``."""
        shared = self._shared
        if shared is None:
            state = self._state
            baggage_fields = self._baggage()
            shared = self._shared = (
                (("tracestate", state), *baggage_fields) if state else tuple(baggage_fields)
            )
        return shared

    def _baggage(self) -> list[tuple[str, str]]:
        # Made when the first attempt builds its request, like every other field: a value that
        # cannot be sent fails that attempt.
        return _baggage_fields(self._context, self._own_baggage)


# Read-only: its ``shared`` fields are known (none) from the start.
_NOTHING = Propagation(None, (), active=INVALID_SPAN_CONTEXT)


def _baggage_fields(
    context: CallContext | None, own_baggage: Iterable[str]
) -> list[tuple[str, str]]:
    lane = context.lane if context is not None else None
    if lane is None and not own_baggage and (context is None or not context.baggage):
        return []  # nothing to send (what ``baggage.outbound(None, None)`` says)
    fields = [(baggage.NAME, v.encode("latin-1")) for v in own_baggage]
    if context is not None:
        fields.extend((baggage.NAME, v.encode("latin-1")) for v in context.baggage)
    merged = baggage.outbound(fields or None, lane)
    return [("baggage", value.decode("latin-1")) for _name, value in merged]
