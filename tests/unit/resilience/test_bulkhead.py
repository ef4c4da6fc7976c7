from __future__ import annotations

import pytest

from resilience.bulkhead import Bulkhead


def test_limits_concurrency_and_counts_rejections() -> None:
    bh = Bulkhead(2)
    assert bh.try_enter() is True
    assert bh.try_enter() is True
    assert bh.active == 2
    assert bh.try_enter() is False
    assert bh.try_enter() is False
    assert bh.rejected == 2
    assert bh.active == 2


def test_leave_frees_a_slot() -> None:
    bh = Bulkhead(1)
    assert bh.try_enter() is True
    assert bh.try_enter() is False
    bh.leave()
    assert bh.active == 0
    assert bh.try_enter() is True
    assert bh.rejected == 1
    assert bh.retry_after() == 1


def test_unpaired_leave_is_an_error() -> None:
    bh = Bulkhead(1)
    with pytest.raises(RuntimeError):
        bh.leave()
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead(0)
