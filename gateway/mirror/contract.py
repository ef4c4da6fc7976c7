"""What a ``Mirror`` filter is given (``BuildContext.mirror``): the running gateway's mirror
sender, which binds one filter's spec to its route once, at build time."""

from __future__ import annotations

import random
from typing import Protocol

from gateway.exchange import Exchange, Handler, Response
from gateway.mirror.spec import MirrorSpec


class MirrorChannel(Protocol):
    """One route's Mirror filter, bound to the gateway: it runs the rest of the route's chain
    and sends the copy."""

    async def handle(self, inner: Handler, exchange: Exchange) -> Response:
        """``inner(exchange)``'s response, unchanged but for its body, which may be teed; a
        copy of the request goes to the mirror once the primary has answered."""
        ...


class MirrorSender(Protocol):
    def channel(self, route_id: str, spec: MirrorSpec, rng: random.Random) -> MirrorChannel:
        """The channel for one Mirror filter of ``route_id``; ``rng`` draws the sampled
        share. Counts survive reloads (they are kept by route id and mirror URI)."""
        ...
