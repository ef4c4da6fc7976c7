"""``GATEWAY_MAX_INFLIGHT``: the global safety valve at the front door.

Beyond that many requests in flight in this worker, a new one is answered 503 with
``Retry-After`` at once, before routing: an overloaded gateway sheds load cheaply instead of
queueing it until everything times out. A request is in flight from its complete head to the
last byte of its response (or until its client leaves), as the engine's ``ExchangeListener``
sees it — the same span as ``meshgate_requests_in_flight`` — so a long download holds its
place for as long as it lasts.

It exists only when the cap is set (``app`` installs it then): with 0, the default, there is
nothing on the request path at all.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.engine.listener import ExchangeListener
from gateway.exchange import Exchange, Handler, Response


class InflightLimit:
    """The handler and the listener the engine is given: counts requests as the listener,
    refuses beyond ``limit`` as the handler, and passes everything else on."""

    __slots__ = ("_handler", "_limit", "_listener", "_on_reject", "_refuse", "in_flight")

    def __init__(
        self,
        limit: int,
        handler: Handler,
        listener: ExchangeListener | None,
        refuse: Callable[[Exchange], Response],
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._handler = handler
        self._listener = listener
        self._refuse = refuse
        self._on_reject = on_reject
        self.in_flight = 0

    # -- ExchangeListener ----------------------------------------------------------------------
    def started(self, exchange: Exchange) -> None:
        self.in_flight += 1
        if self._listener is not None:
            self._listener.started(exchange)

    def finished(self, exchange: Exchange, status: int, bytes_in: int, bytes_out: int) -> None:
        self.in_flight -= 1
        if self._listener is not None:
            self._listener.finished(exchange, status, bytes_in, bytes_out)

    # -- Handler -------------------------------------------------------------------------------
    async def __call__(self, exchange: Exchange) -> Response:
        # This request is already counted (its head is in): refuse it when it is one too many.
        if self.in_flight > self._limit:
            if self._on_reject is not None:
                self._on_reject()
            return self._refuse(exchange)
        return await self._handler(exchange)
