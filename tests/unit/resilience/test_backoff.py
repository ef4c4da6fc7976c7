from __future__ import annotations

import random

import pytest
import tenacity

from resilience.backoff import Backoff, BackoffWait


def chain(backoff: Backoff, n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    out: list[float] = []
    previous: float | None = None
    for attempt in range(1, n + 1):
        previous = backoff.delay(attempt, previous, rng)
        out.append(previous)
    return out


def test_scg_exponential_not_based_on_previous() -> None:
    b = Backoff(first=0.010, maximum=0.050, factor=2.0, based_on_previous=False)
    assert chain(b, 5) == pytest.approx([0.010, 0.020, 0.040, 0.050, 0.050])


def test_based_on_previous() -> None:
    b = Backoff(first=0.010, maximum=0.100, factor=3.0, based_on_previous=True)
    assert chain(b, 4) == pytest.approx([0.010, 0.030, 0.090, 0.100])
    rng = random.Random(0)
    assert b.delay(7, None, rng) == pytest.approx(0.010)  # no previous: first
    assert b.delay(2, 0.020, rng) == pytest.approx(0.060)


def test_defaults_and_no_maximum() -> None:
    assert chain(Backoff(), 4) == pytest.approx([0.005, 0.010, 0.020, 0.040])
    b = Backoff(first=1.0, based_on_previous=False)
    assert b.delay(2000, None, random.Random(0)) == float("inf")


def test_jitter_stays_within_bounds() -> None:
    b = Backoff(first=0.100, factor=1.0, based_on_previous=False, random_factor=0.5)
    rng = random.Random(42)
    samples = [b.delay(1, None, rng) for _ in range(1000)]
    assert all(0.050 <= s <= 0.150 for s in samples)
    assert max(samples) - min(samples) > 0.08  # actually spread out
    full = Backoff(first=0.100, based_on_previous=False, random_factor=1.0)
    assert all(full.delay(1, None, rng) >= 0.0 for _ in range(1000))


def test_jitter_applies_after_the_cap() -> None:
    b = Backoff(first=1.0, maximum=2.0, based_on_previous=False, random_factor=0.1)
    rng = random.Random(7)
    assert all(1.8 <= b.delay(10, None, rng) <= 2.2 for _ in range(200))


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    b = Backoff(first=0.010, maximum=1.0, random_factor=0.5)
    assert chain(b, 6, seed=3) == chain(b, 6, seed=3)
    delays = chain(b, 6, seed=3)
    previous = None
    for d in delays:
        base = 0.010 if previous is None else min(previous * 2.0, 1.0)
        assert base * 0.5 <= d <= base * 1.5
        previous = d


def test_invalid_values() -> None:
    with pytest.raises(ValueError, match="random_factor"):
        Backoff(random_factor=1.5)
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(0, None, random.Random(0))


async def test_tenacity_adapter_in_async_retrying() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    backoff = Backoff(first=0.010, maximum=0.050, factor=2.0, based_on_previous=True)
    retrying = tenacity.AsyncRetrying(
        sleep=fake_sleep,
        wait=BackoffWait(backoff, random.Random(0)),
        stop=tenacity.stop_after_attempt(6),
        reraise=True,
    )
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 6:
            raise ConnectionError("nope")
        return "ok"

    assert await retrying(flaky) == "ok"
    assert slept == pytest.approx([0.010, 0.020, 0.040, 0.050, 0.050])

    # The same retrying object again: each retry loop starts from ``first``.
    slept.clear()
    calls = 3
    assert await retrying(flaky) == "ok"
    assert slept == pytest.approx([0.010, 0.020])


async def test_tenacity_adapter_with_jitter_and_async_for() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    backoff = Backoff(first=0.010, based_on_previous=False, random_factor=0.5)
    attempts = 0

    async def always_down() -> None:
        nonlocal attempts
        async for attempt in tenacity.AsyncRetrying(
            sleep=fake_sleep,
            wait=BackoffWait(backoff, random.Random(1)),
            stop=tenacity.stop_after_attempt(4),
        ):
            with attempt:
                attempts += 1
                raise ConnectionError("still down")

    with pytest.raises(tenacity.RetryError):
        await always_down()
    assert attempts == 4
    assert len(slept) == 3
    for n, s in enumerate(slept, start=1):
        base = 0.010 * 2 ** (n - 1)
        assert base * 0.5 <= s <= base * 1.5
