"""The load-balancer contract."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class LoadBalancer(Protocol):
    """Picks one of ``candidates`` for a request. ``key`` identifies the request for balancers
    that care (consistent hashing); others ignore it. Must be synchronous and cheap: it runs on
    every request. Returns None only when ``candidates`` is empty."""

    def choose(self, candidates: Sequence[T], key: Hashable | None = None) -> T | None: ...
