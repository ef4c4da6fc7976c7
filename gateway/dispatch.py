"""The request path's outer two positions, one per route table rather than per route:

    2. error mapping — outermost, so it sees every failure and maps it to a JSON response once
    3. route match   — the table decides which route's compiled chain runs (404 when none)

and the one internal-forward routine (``forward:`` URIs and CircuitBreaker fallbacks) that
re-enters route matching, bounded against loops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.cors import CorsVerdict
from gateway.errors import GatewayError, NotFound, from_call_error
from gateway.exchange import Exchange, Request, Response
from gateway.filters.local_response import json_error
from gateway.headers import Headers
from gateway.routing.route import Route
from gateway.routing.table import RouteTable
from resilience.errors import CallError

log = logging.getLogger("meshgate.dispatch")

# Internal forwards one request may take before it is a loop (a fallback that forwards to a
# route whose breaker forwards back, say).
MAX_FORWARDS = 8


def error_response(exchange: Exchange | None, error: GatewayError) -> Response:
    """The one place errors become HTTP: SCG's JSON error body, plus ``message`` for 4xx (the
    client needs to know what to fix; 5xx details stay in the log, not in the response: a 5xx
    says at most its error's fixed ``public_message``)."""
    status = error.status
    message = error.message if status < 500 else error.public_message
    if exchange is None:
        # Refused before a request existed (unparseable head): no id to report, the path
        # only when the target was read that far.
        exchange = Exchange(Request("", error.path, "", Headers()), "", 0, "", 0)
    response = json_error(exchange, status, message)
    if error.retry_after is not None:
        # Load shedding (a full bulkhead): tell well-behaved clients when to come back.
        response.headers.set("Retry-After", str(max(1, round(error.retry_after))))
    return response


class Dispatcher:
    """Routes an exchange to its route's chain. ``table`` is swapped whole on reload, so a
    request sees either the old table or the new one, never a mix."""

    def __init__(
        self, table: RouteTable, client_address: Callable[[Exchange], str] | None = None
    ) -> None:
        self.table = table
        # GATEWAY_TRUSTED_PROXIES' resolver (security.client_address.ClientAddresses), run once
        # before routing so every predicate and filter reads the same client; None: the peer.
        self._client_address = client_address

    async def __call__(self, exchange: Exchange) -> Response:
        if self._client_address is not None:
            exchange.resolved_client = self._client_address(exchange)
        # ``dispatch`` inlined: one coroutine frame fewer on every request.
        try:
            route = self.table.match(exchange)
            if route is None:
                raise NotFound(f"no route for {exchange.request.method} {exchange.request.path}")
            exchange.route = route
            # The build's CORS table travels with its routes (None: no CORS configured).
            cors = route.policy.cors
            if cors is not None:
                verdict = cors.check(exchange)
                if verdict is not None:
                    return await self._cors(route, exchange, verdict)
            return await route.handler(exchange)
        except CallError as exc:
            return self._failed(exchange, from_call_error(exc))
        except GatewayError as error:
            return self._failed(exchange, error)

    async def _cors(self, route: Route, exchange: Exchange, verdict: CorsVerdict) -> Response:
        """A request CORS had a say on: refused, a preflight answered here, or forwarded with
        the CORS headers put before the upstream's own (on an error response too, as SCG)."""
        if verdict.status == 403:
            response = self._failed(exchange, GatewayError(verdict.reason, status=403))
        elif verdict.status is not None:
            response = Response(verdict.status, Headers(), b"")  # a preflight: never forwarded
        else:
            try:
                response = await route.handler(exchange)
            except CallError as exc:
                response = self._failed(exchange, from_call_error(exc))
            except GatewayError as error:
                response = self._failed(exchange, error)
        if verdict.headers:
            response.headers = Headers([*verdict.headers, *response.headers.raw])
        return response

    async def dispatch(self, exchange: Exchange) -> Response:
        """Route matching without the error boundary (internal forwards run inside it)."""
        route = self.table.match(exchange)
        if route is None:
            raise NotFound(f"no route for {exchange.request.method} {exchange.request.path}")
        exchange.route = route
        return await route.handler(exchange)

    async def forward(self, path: str, exchange: Exchange) -> Response:
        """Dispatch again at ``path`` inside the gateway, as SCG forwards to a local handler
        (the path replaces the request path; template variables start afresh)."""
        exchange.forwards += 1
        if exchange.forwards > MAX_FORWARDS:
            raise GatewayError(f"forward loop: more than {MAX_FORWARDS} internal forwards")
        exchange.request.path = path
        exchange.uri_variables = {}
        response = await self.dispatch(exchange)
        # The forwarded-to route wrote it: the routes it passes back through find it
        # committed, as SCG's do after its ForwardRoutingFilter.
        response.committed = True
        return response

    @staticmethod
    def _failed(exchange: Exchange, error: GatewayError) -> Response:
        if error.status >= 500:
            log.warning(
                "%s %s -> %d: %s",
                exchange.request.method,
                exchange.request.path,
                error.status,
                error.message,
            )
        return error_response(exchange, error)
