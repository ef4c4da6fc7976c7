"""Optional layers a route's metadata adds: an overall deadline and hedged attempts."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.errors import UpstreamTimeout
from gateway.exchange import Exchange, Handler, Response
from gateway.service_runtime import TRIED_INSTANCES

log = logging.getLogger("meshgate.layers")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


def with_deadline(inner: Handler, seconds: float) -> Handler:
    """The whole request, retries and fallbacks included, must have its response head within
    ``seconds`` (route metadata ``deadline``); after that the client gets a 504."""

    async def deadline(exchange: Exchange) -> Response:
        try:
            async with asyncio.timeout(seconds):
                return await inner(exchange)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"request deadline of {seconds:g}s exceeded") from exc

    return deadline


def hedged(attempt: Handler, delay: float) -> Handler:
    """Envoy-style hedging for idempotent, bodiless requests: if the first attempt has no
    response head after ``delay``, a second goes to another instance; the first good answer
    wins and the other attempt is cancelled (its connection is dropped, not reused)."""

    async def hedge(exchange: Exchange) -> Response:
        request = exchange.request
        if exchange.body is not None or exchange.upgrade is not None:
            return await attempt(exchange)
        if request.method not in IDEMPOTENT:
            return await attempt(exchange)
        first: asyncio.Future[Response] = asyncio.ensure_future(attempt(exchange))
        pending: set[asyncio.Future[Response]] = {first}
        try:
            done, _ = await asyncio.wait(pending, timeout=delay)
            if done:
                return first.result()
            target = exchange.target
            if target is not None and target.instance_id is not None:
                tried: set[str] = exchange.attributes.setdefault(TRIED_INSTANCES, set())
                tried.add(target.instance_id)
            pending.add(asyncio.ensure_future(attempt(exchange)))
            last_error: BaseException | None = None
            fallback: Response | None = None
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                winner: Response | None = None
                for task in done:
                    error = task.exception()
                    if error is not None:
                        last_error = error
                        continue
                    response = task.result()
                    if winner is None and (response.status < 500 or not pending):
                        winner = response
                    elif fallback is None and response.status >= 500:
                        fallback = response  # a 5xx kept in case nothing better comes
                    else:
                        _discard(response)
                if winner is not None:
                    if fallback is not None:
                        _discard(fallback)
                    return winner
            if fallback is not None:
                return fallback
            assert last_error is not None
            raise last_error
        finally:
            # Losers (and, if we were cancelled, everything): stop them, drop their answers.
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(BaseException):
                    _discard(await task)

    return hedge


def _discard(response: Response) -> None:
    if not isinstance(response.body, bytes):
        response.body.abort()
