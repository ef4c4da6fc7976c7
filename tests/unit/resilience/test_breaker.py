from __future__ import annotations

import asyncio

import pytest

from resilience.breaker import Breaker, BreakerPolicy, BreakerRegistry, CircuitOpen
from tests.support.clock import FakeClock


class Boom(Exception):
    pass


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise Boom


async def status_503() -> int:
    return 503


def is_5xx(status: int) -> bool:
    return status >= 500


Changes = list[tuple[str, str, str]]


def make(
    fail_max: int = 3, reset_timeout: float = 30.0, probes: int = 1
) -> tuple[Breaker, FakeClock, Changes]:
    clock = FakeClock()
    changes: Changes = []
    policy = BreakerPolicy(fail_max=fail_max, reset_timeout=reset_timeout, half_open_probes=probes)
    breaker = Breaker("svc", policy, clock, lambda *c: changes.append(c))
    return breaker, clock, changes


async def trip(breaker: Breaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            await breaker.call(boom)


async def test_closed_passes_results_and_errors_through() -> None:
    breaker, _, changes = make()
    assert await breaker.call(ok) == "ok"
    await trip(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.snapshot()["failures"] == 2
    assert await breaker.call(ok) == "ok"  # a success resets the count
    assert breaker.snapshot()["failures"] == 0
    assert changes == []


async def test_opens_after_fail_max_exceptions_with_the_original_error() -> None:
    breaker, _, changes = make(fail_max=3)
    await trip(breaker, 3)  # the tripping call raises Boom too, not pybreaker's error
    assert breaker.state == "open"
    assert changes == [("svc", "closed", "open")]


async def test_is_failure_results_count_but_are_returned() -> None:
    breaker, _, _ = make(fail_max=3)
    assert await breaker.call(status_503, is_5xx) == 503
    await trip(breaker, 1)
    assert breaker.state == "closed"
    assert await breaker.call(status_503, is_5xx) == 503  # the tripping call still gets it
    assert breaker.state == "open"


async def test_open_refuses_without_calling() -> None:
    breaker, clock, _ = make(fail_max=1)
    await trip(breaker, 1)
    called = False

    async def spy() -> str:
        nonlocal called
        called = True
        return "ok"

    clock.advance(10)
    with pytest.raises(CircuitOpen) as refused:
        await breaker.call(spy)
    assert called is False
    assert refused.value.name == "svc"
    assert refused.value.retry_after == pytest.approx(20.0)
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["opened_seconds_ago"] == pytest.approx(10.0)


async def test_half_open_admits_one_probe_and_success_closes() -> None:
    breaker, clock, changes = make(fail_max=2)
    await trip(breaker, 2)
    clock.advance(29.999)
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    clock.advance(0.001)  # reset_timeout reached on the injected clock, no sleeping

    entered = asyncio.Event()
    release = asyncio.Event()

    async def probe() -> str:
        entered.set()
        await release.wait()
        return "probed"

    task = asyncio.create_task(breaker.call(probe))
    await entered.wait()
    assert breaker.state == "half-open"
    with pytest.raises(CircuitOpen) as refused:
        await breaker.call(ok)  # the only probe slot is taken
    assert refused.value.retry_after == 0.0
    release.set()
    assert await task == "probed"
    assert breaker.state == "closed"
    assert await breaker.call(ok) == "ok"
    assert changes == [
        ("svc", "closed", "open"),
        ("svc", "open", "half-open"),
        ("svc", "half-open", "closed"),
    ]


async def test_half_open_admits_exactly_half_open_probes() -> None:
    breaker, clock, _ = make(fail_max=1, probes=2)
    await trip(breaker, 1)
    clock.advance(30)
    release = asyncio.Event()
    started = 0

    async def probe() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "probed"

    tasks = [asyncio.create_task(breaker.call(probe)) for _ in range(2)]
    await asyncio.sleep(0)  # let both probes start
    assert started == 2
    assert breaker.snapshot()["probes_in_flight"] == 2
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    release.set()
    assert await asyncio.gather(*tasks) == ["probed", "probed"]
    assert breaker.snapshot()["probes_in_flight"] == 0
    assert breaker.state == "closed"


async def test_probe_failure_reopens_for_another_timeout() -> None:
    breaker, clock, changes = make(fail_max=1)
    await trip(breaker, 1)
    clock.advance(30)
    with pytest.raises(Boom):
        await breaker.call(boom)
    assert breaker.state == "open"
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    clock.advance(1)
    assert await breaker.call(status_503, is_5xx) == 503  # a failed probe by result
    assert breaker.state == "open"
    clock.advance(30)
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"
    assert changes == [
        ("svc", "closed", "open"),
        ("svc", "open", "half-open"),
        ("svc", "half-open", "open"),
        ("svc", "open", "half-open"),
        ("svc", "half-open", "open"),
        ("svc", "open", "half-open"),
        ("svc", "half-open", "closed"),
    ]


async def test_cancelled_probe_gives_its_slot_back() -> None:
    breaker, clock, _ = make(fail_max=1)
    await trip(breaker, 1)
    clock.advance(30)
    entered = asyncio.Event()

    async def hang() -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(breaker.call(hang))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.snapshot()["probes_in_flight"] == 0
    assert breaker.state == "open"  # cancellation counts as a failure


async def test_registry_one_breaker_per_name() -> None:
    clock = FakeClock()
    changes: Changes = []
    registry = BreakerRegistry(BreakerPolicy(fail_max=1), clock, lambda *c: changes.append(c))
    a = registry.get("a")
    assert registry.get("a") is a
    b = registry.get("b", BreakerPolicy(fail_max=7))
    assert b.policy.fail_max == 7
    assert a.policy.fail_max == 1
    await trip(a, 1)
    assert changes == [("a", "closed", "open")]
    assert registry.snapshot()["a"]["state"] == "open"
    assert registry.snapshot()["b"]["state"] == "closed"


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="half_open_probes"):
        BreakerPolicy(half_open_probes=0)
