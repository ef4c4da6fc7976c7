"""The cost guard: calls per proxied request must stay within 10 % of the recorded budget.

A deterministic stand-in for a timing (see tests/support/cost.py): a change that makes the
request path do more work fails here the day it lands. After an intended change, re-record
with ``python -m tests.support.cost --record`` and say why in the commit.
"""

from __future__ import annotations

import pytest

from tests.support.cost import load_budget, measure

TOLERANCE = 1.10


@pytest.mark.parametrize("kind", ["minimal", "typical"])
async def test_calls_per_request_within_budget(kind: str) -> None:
    budget = load_budget()[kind]
    calls = await measure(kind)
    assert calls <= budget * TOLERANCE, (
        f"{kind}: {calls:.1f} calls/request, budget {budget:.1f} (+10 % allowed); "
        "if the extra work is intended, re-record with `python -m tests.support.cost --record`"
    )
