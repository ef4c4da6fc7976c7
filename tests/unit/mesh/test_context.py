"""The call context: read from an inbound request, written onto each outbound attempt."""

from __future__ import annotations

import asyncio
import random

import pytest
from multidict import CIMultiDict
from opentelemetry import trace as otel_trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from discovery.mesh.context import (
    CallContext,
    call_context,
    current,
    from_headers,
    outbound_headers,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def headers(*items: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(items)


def fields(out: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in out if k == name]


def test_inbound_trace_lane_and_baggage() -> None:
    ctx = from_headers(
        headers(
            ("traceparent", f"00-{TRACE}-{PARENT}-01"),
            ("tracestate", "vendor=x"),
            ("baggage", "user=42"),
            ("Baggage", "lane=canary;p=1"),
        )
    )
    assert ctx.trace == (int(TRACE, 16), int(PARENT, 16), True)
    assert ctx.tracestate == "vendor=x"
    assert ctx.lane == "canary"
    assert ctx.baggage == ("user=42", "lane=canary;p=1")


def test_untrusted_lane_and_malformed_trace_are_dropped() -> None:
    ctx = from_headers(
        headers(("traceparent", "00-zz-1-01"), ("baggage", "lane=canary")), trust_lane=False
    )
    assert ctx.trace is None and ctx.lane is None
    out = outbound_headers(ctx, random.Random(1))
    assert fields(out, "baggage") == []  # the lane entry is not passed on either


def test_outbound_is_a_child_of_the_inbound_trace_with_the_lane_merged() -> None:
    ctx = from_headers(
        headers(("traceparent", f"00-{TRACE}-{PARENT}-01"), ("baggage", "user=42,lane=blue"))
    )
    ctx = CallContext(ctx.trace, None, "canary", ctx.baggage)
    out = outbound_headers(ctx, random.Random(1), own_baggage=["tenant=t1"])
    (traceparent,) = fields(out, "traceparent")
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != PARENT and len(span_id) == 16
    assert fields(out, "baggage") == ["tenant=t1,user=42,lane=canary"]
    # Each attempt gets its own span id.
    again = fields(outbound_headers(ctx, random.Random(2)), "traceparent")[0]
    assert again.split("-")[2] != span_id


def test_no_context_starts_an_unsampled_trace_and_sends_no_baggage() -> None:
    out = outbound_headers(None, random.Random(1))
    (traceparent,) = fields(out, "traceparent")
    assert traceparent.startswith("00-") and traceparent.endswith("-00")
    assert fields(out, "baggage") == []


def test_an_active_otel_span_wins_over_the_inbound_trace() -> None:
    active = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    ctx = from_headers(headers(("traceparent", f"00-{TRACE}-{PARENT}-00")))
    with otel_trace.use_span(NonRecordingSpan(active)):
        out = outbound_headers(ctx, random.Random(1))
    (traceparent,) = fields(out, "traceparent")
    _, trace_id, span_id, flags = traceparent.split("-")
    assert int(trace_id, 16) == 0xABC and flags == "01"
    assert int(span_id, 16) != 0xDEF


async def test_context_is_per_task_and_reset_after_the_block() -> None:
    seen: list[str | None] = []

    async def child() -> None:
        await asyncio.sleep(0)
        got = current()
        seen.append(got.lane if got is not None else None)

    with call_context(CallContext(lane="canary")):
        task = asyncio.create_task(child())  # inherits the context it was started in
    await task
    await child()
    assert seen == ["canary", None]
    assert current() is None


def test_invalid_lane_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid lane name"):
        CallContext(lane="bad lane")
