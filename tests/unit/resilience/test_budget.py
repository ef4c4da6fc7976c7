from __future__ import annotations

import pytest

from resilience.budget import BudgetPolicy, RetryBudget
from tests.support.clock import FakeClock


def retries_allowed(budget: RetryBudget, limit: int = 10_000) -> int:
    n = 0
    while n < limit and budget.try_retry():
        n += 1
    return n


def test_ratio_plus_floor_per_window() -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.2, min_retries_per_window=10), FakeClock())
    for _ in range(100):
        budget.record_request()
    assert retries_allowed(budget) == 30
    assert budget.try_retry() is False
    assert budget.stats() == {"requests": 100, "retries": 30, "exhausted": 2}


def test_floor_alone_without_traffic() -> None:
    budget = RetryBudget(BudgetPolicy(), FakeClock())
    assert retries_allowed(budget) == 10


def test_window_slides() -> None:
    clock = FakeClock()
    budget = RetryBudget(BudgetPolicy(window=10.0), clock)
    for _ in range(100):
        budget.record_request()
    assert retries_allowed(budget) == 30
    clock.advance(5.0)
    for _ in range(50):
        budget.record_request()
    # Still the first 100 requests' retries in the window: 150 * 0.2 + 10 = 40 allowed.
    assert retries_allowed(budget) == 10
    clock.advance(5.0)  # the first batch has left the window, the second has not
    assert budget.stats()["requests"] == 50
    assert budget.stats()["retries"] == 10
    assert retries_allowed(budget) == 10  # 50 * 0.2 + 10 = 20, 10 taken
    clock.advance(10.0)
    assert budget.stats() == {"requests": 0, "retries": 0, "exhausted": 3}
    assert retries_allowed(budget) == 10


def test_long_idle_clears_everything() -> None:
    clock = FakeClock()
    budget = RetryBudget(BudgetPolicy(), clock)
    budget.record_request()
    budget.try_retry()
    clock.advance(1e6)
    assert budget.stats()["requests"] == 0
    assert budget.stats()["retries"] == 0


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_failing_upstream_adds_at_most_ratio_plus_floor(n: int) -> None:
    clock = FakeClock()
    policy = BudgetPolicy(ratio=0.2, window=10.0, min_retries_per_window=10)
    budget = RetryBudget(policy, clock)
    attempts = 0
    for _ in range(n):
        clock.advance(5.0 / n)  # all within one window
        budget.record_request()
        attempts += 1  # the original attempt fails...
        for _retry in range(3):  # ...and so does every retry
            if not budget.try_retry():
                break
            attempts += 1
    assert attempts <= (1 + policy.ratio) * n + policy.min_retries_per_window
    assert attempts > n  # the budget did allow some retries


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="window"):
        BudgetPolicy(window=0)
