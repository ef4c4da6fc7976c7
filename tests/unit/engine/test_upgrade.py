"""The tunnel after a 101: bytes both ways, back-pressure across, done when it closes."""

from __future__ import annotations

import pytest

from gateway.engine.upgrade import Tunnel
from tests.unit.engine.fakes import FakeTransport


def test_bytes_are_spliced_both_ways_with_back_pressure() -> None:
    upstream, client = FakeTransport(), FakeTransport()
    tunnel = Tunnel(upstream, b"early")
    tunnel.from_upstream(b"more")
    tunnel.attach_client(client, b"hello")
    assert client.data == b"earlymore" and upstream.data == b"hello"
    tunnel.from_client(b"ping")
    assert upstream.data == b"helloping"
    tunnel.client_write_paused()
    assert not upstream.reading
    tunnel.client_write_resumed()
    assert upstream.reading


@pytest.mark.parametrize("end", ["client_lost", "upstream_lost", "abort"])
def test_a_tunnel_is_done_when_it_closes(end: str) -> None:
    upstream, client = FakeTransport(), FakeTransport()
    tunnel = Tunnel(upstream, b"")
    tunnel.attach_client(client, b"")
    calls: list[str] = []
    tunnel.when_done(lambda: calls.append("done"))
    tunnel.from_client(b"x")
    assert calls == []
    getattr(tunnel, end)()
    tunnel.client_lost()  # the other side's loss follows; still once
    assert calls == ["done"]
    assert upstream.closed and client.closed
    tunnel.when_done(lambda: calls.append("late"))  # already closed: at once
    assert calls == ["done", "late"]
