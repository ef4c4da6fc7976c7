"""The call path driven through a fake transport (an async function that answers per
instance), with a fake clock and a seeded rng: picker, retry loop, budget, hedge, deadline."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from discovery.instance import ServiceInstance
from resilience.balancer.round_robin import RoundRobin
from resilience.budget import BudgetPolicy
from resilience.deadline import within
from resilience.errors import DeadlineExceeded, NoInstanceAvailable, ServiceOverloaded
from resilience.hedge import hedged
from resilience.outlier import OutlierPolicy
from resilience.picker import InstancePicker
from resilience.retry import Retrier, RetryPolicy
from resilience.runtime import AttemptHooks, RuntimeSettings, ServiceRuntimes
from tests.support.clock import FakeClock


@dataclass
class Reply:
    status: int
    instance: str


class Transport:
    """Answers with the status configured per instance; records every call."""

    def __init__(self, statuses: dict[str, int]) -> None:
        self.statuses = statuses
        self.calls: list[str] = []

    async def send(self, instance: ServiceInstance) -> Reply:
        self.calls.append(instance.instance_id)
        status = self.statuses[instance.instance_id]
        if status == 0:
            raise ConnectionRefusedError(instance.instance_id)
        return Reply(status, instance.instance_id)


def instances(*ids: str) -> list[ServiceInstance]:
    return [ServiceInstance("svc", i, "127.0.0.1", 9000 + n) for n, i in enumerate(ids)]


def setup(
    ids: tuple[str, ...], *, per_instance: int | None = None, budget: BudgetPolicy | None = None
) -> tuple[ServiceRuntimes, InstancePicker[ServiceInstance], AttemptHooks]:
    clock = FakeClock()
    settings = RuntimeSettings(
        outlier=OutlierPolicy(consecutive_failures=2), budget=budget or BudgetPolicy()
    )
    runtimes = ServiceRuntimes(settings, clock=clock, rng=random.Random(1))
    runtime = runtimes.get("svc")
    members = instances(*ids)
    picker = InstancePicker(
        "svc", lambda name: members, runtime, RoundRobin(random.Random(3)), per_instance
    )
    return runtimes, picker, AttemptHooks(runtime, picker.count)


def retrier(retries: int = 2) -> Retrier[Reply]:
    policy: RetryPolicy[Reply] = RetryPolicy(
        retries,
        retry_on_result=lambda r: r.status >= 500,
        retry_on_error=lambda e: isinstance(e, ConnectionError),
    )
    return Retrier(policy, rng=random.Random(0))


async def call(
    picker: InstancePicker[ServiceInstance],
    hooks: AttemptHooks,
    transport: Transport,
    runtimes: ServiceRuntimes,
    retries: int = 2,
) -> Reply:
    tried: set[str] = set()

    async def attempt(number: int) -> Reply:
        instance = picker.pick(tried, None)
        entered = hooks.begin(instance.instance_id)
        ok = False
        try:
            reply = await transport.send(instance)
            ok = reply.status < 500
            return reply
        finally:
            hooks.outcome(instance.instance_id, ok)
            hooks.release(instance.instance_id, entered)

    budget = runtimes.get("svc").budget
    return await retrier(retries).run(attempt, service="svc", budget=budget)


# -- picker --------------------------------------------------------------------------------------
def test_picker_avoids_tried_instances_while_any_is_left() -> None:
    _, picker, _ = setup(("a", "b", "c"))
    tried: set[str] = set()
    picks = [picker.pick(tried, None).instance_id for _ in range(3)]
    assert sorted(picks) == ["a", "b", "c"]
    assert tried == {"a", "b", "c"}
    # Everything tried: the balancer chooses among all again rather than failing.
    assert picker.pick(tried, None).instance_id in {"a", "b", "c"}


def test_picker_without_a_tried_set_keeps_none() -> None:
    _, picker, _ = setup(("a", "b"))
    assert {picker.pick(None, None).instance_id for _ in range(4)} == {"a", "b"}


def test_picker_refuses_when_every_instance_is_at_its_limit() -> None:
    _, picker, hooks = setup(("a", "b"), per_instance=1)
    first = picker.pick(None, None)
    hooks.begin(first.instance_id)
    second = picker.pick(None, None)
    assert second.instance_id != first.instance_id
    hooks.begin(second.instance_id)
    with pytest.raises(ServiceOverloaded):
        picker.pick(None, None)
    hooks.release(first.instance_id, None)
    assert picker.pick(None, None).instance_id == first.instance_id


def test_picker_with_no_instances() -> None:
    _, picker, _ = setup(())
    with pytest.raises(NoInstanceAvailable):
        picker.pick(None, None)


# -- retry loop ----------------------------------------------------------------------------------
async def test_retry_goes_to_an_untried_instance() -> None:
    runtimes, picker, hooks = setup(("a", "b", "c"))
    transport = Transport({"a": 503, "b": 503, "c": 200})
    for _ in range(5):
        transport.calls.clear()
        reply = await call(picker, hooks, transport, runtimes)
        assert reply.status == 200
        assert len(transport.calls) == len(set(transport.calls))  # never the same twice


async def test_retry_stops_at_the_last_attempt_with_its_answer() -> None:
    runtimes, picker, hooks = setup(("a", "b"))
    transport = Transport({"a": 503, "b": 503})
    reply = await call(picker, hooks, transport, runtimes, retries=2)
    assert reply.status == 503
    assert len(transport.calls) == 3


async def test_retry_raises_the_last_error() -> None:
    runtimes, picker, hooks = setup(("a",))
    transport = Transport({"a": 0})
    with pytest.raises(ConnectionRefusedError):
        await call(picker, hooks, transport, runtimes, retries=1)
    assert transport.calls == ["a", "a"]


async def test_budget_caps_retries_of_a_failing_service() -> None:
    runtimes, picker, hooks = setup(
        ("a", "b"), budget=BudgetPolicy(ratio=0.1, min_retries_per_window=2)
    )
    transport = Transport({"a": 503, "b": 503})
    for _ in range(50):
        await call(picker, hooks, transport, runtimes, retries=3)
    # 50 calls, 10 % of them plus the floor of 2 may be retried: 50 + 5 + 2 attempts.
    assert len(transport.calls) == 57
    assert runtimes.get("svc").budget.stats()["exhausted"] > 0


async def test_outlier_accounting_ejects_a_failing_instance() -> None:
    runtimes, picker, hooks = setup(("a", "b", "c"))
    transport = Transport({"a": 200, "b": 500, "c": 200})
    for _ in range(12):
        assert (await call(picker, hooks, transport, runtimes)).status == 200
    assert list(runtimes.get("svc").outlier.ejected()) == ["b"]


async def test_a_body_that_cannot_be_replayed_is_not_retried() -> None:
    class Gone:
        replayable = False

    transport = Transport({"a": 503})
    _, picker, _ = setup(("a",))

    async def attempt(number: int) -> Reply:
        return await transport.send(picker.pick(None, None))

    reply = await retrier(3).run(attempt, replay=Gone())
    assert reply.status == 503
    assert transport.calls == ["a"]


async def test_before_retry_and_drop_see_each_retried_answer() -> None:
    seen: list[tuple[int, str]] = []
    dropped: list[Reply] = []
    policy: RetryPolicy[Reply] = RetryPolicy(2, lambda r: r.status >= 500, lambda e: False)
    loop: Retrier[Reply] = Retrier(
        policy, rng=random.Random(0), drop=dropped.append, describe=lambda r: f"s{r.status}"
    )
    answers = iter([Reply(503, "a"), Reply(502, "b"), Reply(200, "c")])

    async def attempt(number: int) -> Reply:
        return next(answers)

    reply = await loop.run(attempt, before_retry=lambda n, why: seen.append((n, why)))
    assert reply.instance == "c"
    assert seen == [(2, "s503"), (3, "s502")]
    assert [r.status for r in dropped] == [503, 502]


# -- hedge and deadline --------------------------------------------------------------------------
async def test_hedge_sends_a_second_attempt_after_the_delay_and_takes_the_first_good() -> None:
    started: list[int] = []
    discarded: list[int] = []

    async def attempt() -> int:
        started.append(len(started))
        if len(started) == 1:
            await asyncio.sleep(1)  # a stalled first attempt: cancelled when the hedge wins
            return 1
        return 2

    result = await hedged(attempt, 0.01, failed=lambda r: False, discard=discarded.append)
    assert result == 2
    assert started == [0, 1]


async def test_hedge_not_needed_when_the_first_answers_in_time() -> None:
    calls: list[None] = []

    async def attempt() -> int:
        calls.append(None)
        return 7

    assert await hedged(attempt, 1.0, failed=lambda r: False, discard=lambda r: None) == 7
    assert len(calls) == 1


async def test_hedge_keeps_a_failed_answer_only_when_nothing_better_comes() -> None:
    discarded: list[int] = []
    order = iter([503, 200])

    async def attempt() -> int:
        status = next(order)
        if status == 503:
            await asyncio.sleep(0.02)
        return status

    assert await hedged(attempt, 0.005, failed=lambda r: r >= 500, discard=discarded.append) == 200


async def test_deadline_bounds_the_whole_call() -> None:
    async def slow() -> int:
        await asyncio.sleep(1)
        return 1

    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.01s"):
        await within(0.01, slow)
    assert await within(1.0, lambda: asyncio.sleep(0, 5)) == 5


# -- the fast path -------------------------------------------------------------------------------
async def test_an_answer_not_worth_retrying_never_enters_tenacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tenacity

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tenacity entered for an answer nobody retries")

    monkeypatch.setattr(tenacity, "AsyncRetrying", refuse)

    async def ok(number: int) -> Reply:
        return Reply(200, "a")

    async def refused(number: int) -> Reply:
        raise ValueError("not a retried error")

    assert (await retrier().run(ok)).status == 200
    with pytest.raises(ValueError, match="not a retried error"):
        await retrier().run(refused)


async def test_the_retry_timeout_counts_from_the_first_attempt() -> None:
    # The first attempt runs before tenacity's loop starts; its time still counts.
    policy: RetryPolicy[Reply] = RetryPolicy(
        5, retry_on_result=lambda r: r.status >= 500, retry_on_error=lambda e: False, timeout=0.1
    )
    calls: list[int] = []

    async def slow_503(number: int) -> Reply:
        calls.append(number)
        await asyncio.sleep(0.15)
        return Reply(503, "a")

    reply = await Retrier(policy, rng=random.Random(0)).run(slow_503)
    assert reply.status == 503
    assert calls == [1]  # out of time after the first: no retry
