"""W3C baggage for lanes: the inbound ``lane`` entry, and the outbound fields the forwarder
writes (client's lane entry removed, the lane used merged in, everything else byte for byte)."""

from __future__ import annotations

import pytest

from discovery.instance import ServiceInstance
from gateway.baggage import inbound_lane, member_key, outbound
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.exchange import Destination, Exchange, Request, Target
from gateway.forwarded import ForwardedHeaders
from gateway.forwarder import Forwarder
from gateway.headers import Headers

B = b"baggage"


@pytest.mark.parametrize(
    ("fields", "lane"),
    [
        ([(B, b"lane=canary")], "canary"),
        ([(b"Baggage", b"user=1, lane = canary ;ttl=3, x=y")], "canary"),
        ([(B, b"a=1"), (B, b"lane=blue")], "blue"),  # several fields are one list
        ([(B, b"lane=canary,lane=blue")], "canary"),  # the first one
        ([(B, b"lane=bad%20name,lane=blue")], "blue"),  # an invalid value is no lane
        ([(B, b"lane=")], None),
        ([(B, b"lane")], None),
        ([(B, b"Lane=canary")], None),  # keys are case-sensitive: not ours to honour
        ([(B, b"xlane=canary, lanes=blue")], None),
        ([(B, b"user=lane=canary")], None),
        ([(b"x-baggage", b"lane=canary")], None),
        ([], None),
    ],
)
def test_inbound_lane(fields: list[tuple[bytes, bytes]], lane: str | None) -> None:
    assert inbound_lane(fields) == lane


def test_member_key() -> None:
    assert member_key(b" a = 1 ;p") == b"a"
    assert member_key(b"k;p=1") == b"k"
    assert member_key(b"  ") == b""


def test_outbound_without_a_lane_keeps_fields_untouched() -> None:
    fields = [(b"Baggage", b"a=1,  b=2;p"), (B, b"c=%20")]
    assert outbound(fields, None) is fields
    assert outbound(None, None) == []


def test_outbound_strips_the_clients_lane_and_keeps_the_rest_byte_for_byte() -> None:
    assert outbound([(B, b"a=1, lane=canary, b=2;p=x")], None) == [(B, b"a=1, b=2;p=x")]
    assert outbound([(B, b"lane=canary, b=2")], None) == [(B, b"b=2")]
    assert outbound([(B, b"LANE=canary,b=2")], None) == [(B, b"b=2")]  # any spelling removed
    assert outbound([(B, b"lane=canary")], None) == []  # nothing left: no field
    assert outbound([(B, b"a=1"), (B, b" lane=x ;p")], None) == [(B, b"a=1")]
    # "lane" somewhere in a member that is not ours: kept (the fields merge, that is all).
    assert outbound([(B, b"userlane=1"), (B, b"b=lane")], None) == [(B, b"userlane=1,b=lane")]


def test_outbound_merges_the_lane_used_never_twice() -> None:
    assert outbound(None, "canary") == [(B, b"lane=canary")]
    assert outbound([(B, b"a=1")], "canary") == [(B, b"a=1,lane=canary")]
    assert outbound([(B, b"lane=canary")], "canary") == [(B, b"lane=canary")]
    assert outbound([(B, b"a=1,lane=blue;p"), (B, b"lane=x")], "canary") == [
        (B, b"a=1,lane=canary")
    ]
    assert outbound([(B, b" , a=1,,")], "c") == [(B, b"a=1,lane=c")]  # empty members dropped


# -- what the forwarder writes -----------------------------------------------------------------


def head(
    incoming: list[tuple[bytes, bytes]], target: Destination, lane: str | None = None
) -> list[tuple[str, str]]:
    ex = Exchange(Request("GET", "/x", "", Headers(incoming)), "10.0.0.9", 5555, "0.0.0.0", 8080)
    ex.lane = lane
    forwarder = Forwarder(ConnectionPool(PoolSettings()), ForwardedHeaders(), response_timeout=1)
    text = forwarder.head(ex, target).decode("latin-1")
    return [
        (name, value)
        for name, _, value in (line.partition(": ") for line in text.split("\r\n")[1:-2])
    ]


def baggage_of(fields: list[tuple[str, str]]) -> list[str]:
    return [value for name, value in fields if name.lower() == "baggage"]


def laned(lane: str | None) -> ServiceInstance:
    return ServiceInstance("svc", "i", "10.1.1.1", 80, metadata={"lane": lane} if lane else {})


def test_head_carries_the_picked_instances_lane() -> None:
    assert baggage_of(head([], laned("canary"), "canary")) == ["lane=canary"]
    assert baggage_of(head([(B, b"u=1,lane=blue")], laned("canary"), "canary")) == [
        "u=1,lane=canary"
    ]


def test_head_of_stable_traffic_carries_no_lane() -> None:
    assert baggage_of(head([], laned(None))) == []
    # A fallback: asked for canary, got stable: no lane entry, the client's removed.
    assert baggage_of(head([(B, b"lane=canary,u=1")], laned(None), "canary")) == ["u=1"]
    # Other baggage passes as it came.
    assert baggage_of(head([(b"Baggage", b"u=1,  v=2")], laned(None))) == ["u=1,  v=2"]


def test_head_to_a_fixed_address_carries_the_lane_asked_for() -> None:
    fixed = Target("10.9.9.9", 8000)
    assert baggage_of(head([], fixed, "canary")) == ["lane=canary"]
    assert baggage_of(head([], fixed, "stable")) == []
    assert baggage_of(head([(B, b"lane=evil")], fixed)) == []


def test_head_drops_baggage_the_client_named_hop_by_hop() -> None:
    fields = head([(b"Connection", b"baggage"), (B, b"u=1")], laned("canary"), "canary")
    assert baggage_of(fields) == ["lane=canary"]
