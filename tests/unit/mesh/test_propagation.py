"""``Propagation``: a call's propagation fields worked out once, against the per-attempt
reading they stand for (``reference`` below: the active span, the context and the baggage
looked at afresh for every attempt): the same fields, in the same order, from the same random
draws, for every kind of call (no context, an inbound trace with or without tracestate, a
lane, baggage, the caller's own baggage, an active span with or without tracestate, an
attempt span), over several attempts."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from discovery import baggage
from discovery.mesh.context import CallContext, Propagation, outbound_headers, span_parent
from discovery.traceparent import format_traceparent

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT = 0x00F067AA0BA902B7


def reference(
    context: CallContext | None,
    rng: random.Random,
    own_baggage: Iterable[str] = (),
    span: SpanContext | None = None,
) -> list[tuple[str, str]]:
    """One attempt's fields, everything read at the attempt."""
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
    else:
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
            out.append(
                ("traceparent", format_traceparent(rng.getrandbits(128) or 1, span_id, False))
            )
    lane = context.lane if context is not None else None
    fields = [(baggage.NAME, v.encode("latin-1")) for v in own_baggage]
    if context is not None:
        fields.extend((baggage.NAME, v.encode("latin-1")) for v in context.baggage)
    merged = baggage.outbound(fields or None, lane)
    out.extend(("baggage", value.decode("latin-1")) for _name, value in merged)
    return out


CONTEXTS = {
    "none": None,
    "empty": CallContext(),
    "trace": CallContext(trace=(TRACE, PARENT, True)),
    "trace-unsampled-state": CallContext(trace=(TRACE, PARENT, False), tracestate="vendor=1"),
    "lane": CallContext(lane="canary"),
    "everything": CallContext(
        trace=(TRACE, PARENT, True),
        tracestate="vendor=1",
        lane="canary",
        baggage=("tenant=t1,lane=blue", "user=u"),
    ),
}
ACTIVE = {
    "no-active-span": None,
    "active": SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)),
    "active-with-state": SpanContext(
        0xABC,
        0xDEF,
        is_remote=True,
        trace_flags=TraceFlags(0),
        trace_state=TraceState([("k", "v")]),
    ),
}
SPANS = {
    "no-span": None,
    "span": SpanContext(0x123, 0x456, is_remote=False, trace_flags=TraceFlags(1)),
    "span-with-state": SpanContext(
        0x123,
        0x456,
        is_remote=False,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("s", "1")]),
    ),
}
OWN = {"no-own-baggage": [], "own-baggage": ["tenant=t2"]}


@pytest.mark.parametrize(
    ("context", "active", "span", "own"),
    list(itertools.product(CONTEXTS, ACTIVE, SPANS, OWN)),
)
def test_a_calls_fields_are_the_per_attempt_fields(
    context: str, active: str, span: str, own: str
) -> None:
    ctx, active_span, attempt_span, own_baggage = (
        CONTEXTS[context],
        ACTIVE[active],
        SPANS[span],
        OWN[own],
    )

    def run() -> tuple[list[list[tuple[str, str]]], list[list[tuple[str, str]]]]:
        ours, theirs = random.Random(5), random.Random(5)
        propagation = Propagation.of(ctx, own_baggage)
        got = [propagation.fields(ours, attempt_span) for _ in range(3)]
        want = [reference(ctx, theirs, own_baggage, attempt_span) for _ in range(3)]
        # The no-span fields in the client's two steps are the same fields.
        untraced = random.Random(5)
        stepped = [
            [
                ("traceparent", Propagation.of(ctx, own_baggage).traceparent(untraced)),
                *Propagation.of(ctx, own_baggage).shared(),
            ]
            for _ in range(3)
        ]
        if attempt_span is None:
            assert stepped == want
        return got, want

    if active_span is None:
        got, want = run()
    else:
        with otel_trace.use_span(NonRecordingSpan(active_span)):
            got, want = run()
    assert got == want
    if attempt_span is None:
        # Every attempt has a span id of its own.
        assert len({fields[0][1] for fields in got}) == 3


def test_the_traceparent_is_format_traceparents_for_every_id() -> None:
    class Draws(random.Random):
        def __init__(self, values: list[int]) -> None:
            super().__init__(0)
            self.values = values

        def getrandbits(self, k: int) -> int:
            return self.values.pop(0)

    for span_id, trace_id in [(1, 1), (2**64 - 1, 2**128 - 1), (0, 0), (0xABC, 0x1)]:
        got = Propagation(None).traceparent(Draws([span_id, trace_id]))
        assert got == format_traceparent(trace_id or 1, span_id or 1, False)
    inbound = Propagation(CallContext(trace=(TRACE, PARENT, True)))
    assert inbound.traceparent(Draws([7])) == format_traceparent(TRACE, 7, True)


def test_only_a_call_with_nothing_to_carry_shares_one() -> None:
    assert Propagation.of(None) is Propagation.of(None, [])
    assert Propagation.of(None, ["tenant=t1"]) is not Propagation.of(None)
    assert Propagation.of(CallContext()) is not Propagation.of(None)
    active = ACTIVE["active"]
    assert active is not None
    with otel_trace.use_span(NonRecordingSpan(active)):
        assert Propagation.of(None) is not Propagation.of(None)
        assert span_parent(None) == (None, 0xDEF)


def test_outbound_headers_is_one_attempt_of_a_call() -> None:
    ctx = CONTEXTS["everything"]
    assert outbound_headers(ctx, random.Random(3), ["a=b"]) == reference(
        ctx, random.Random(3), ["a=b"]
    )


def test_a_value_that_cannot_be_sent_fails_when_the_fields_are_made() -> None:
    propagation = Propagation.of(None, ["tenant=\u20ac"])  # not latin-1
    with pytest.raises(UnicodeEncodeError):
        propagation.shared()
