"""The load-balancer contract: the one protocol every balancer and balancer decorator meets."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from resilience.endpoint import E


class LoadBalancer(Protocol):
    """Picks one of ``candidates`` for a request. ``key`` identifies the request for balancers
    that care (consistent hashing); others ignore it. Must be synchronous and cheap: it runs on
    every request. Returns None only when ``candidates`` is empty.

    Generic over the endpoint type so a balancer that reads ``weight`` or ``zone`` and one that
    reads nothing (round-robin, random) share one contract, and the caller gets back the type
    it passed in."""

    def choose(self, candidates: Sequence[E], key: Hashable | None = None) -> E | None: ...
