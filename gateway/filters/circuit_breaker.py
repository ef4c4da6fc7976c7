"""CircuitBreaker and FallbackHeaders, with Spring Cloud Gateway's arguments.

``CircuitBreaker=name`` or ``{name, fallbackUri: forward:/path, statusCodes, resumeWithoutError,
routeId}`` wraps the rest of the route in a breaker named ``name`` (routes naming the same
breaker share it); without a name, the breaker is the route's own, named by its id. ``routeId``
is accepted and has no effect, as in SCG 5.0.4: SCG overwrites it with the id of the route the
filter is on before building the filter (``HasRouteId``), so the route's own id is what names an
unnamed breaker (checked against the real SCG: on route ``cb`` with ``routeId: other``, the
breaker is ``cb``).

Failures are upstream errors (connect, reset, timeout) and responses whose status is in
``statusCodes``. On a failure or while the breaker is open:
- with ``fallbackUri`` the request is dispatched again inside the gateway at that path (the
  route it matches answers; ``FallbackHeaders`` there can tell the upstream what went wrong);
- without it, as SCG: open → 503, timeout → 504, other errors → their status, a failing status
  → that response; ``resumeWithoutError: true`` answers an empty 200 instead of an error.

The breaker is pybreaker behind ``resilience.breaker``: ``fail_max`` consecutive failures open
it for ``reset_timeout``; then a bounded number of probes decide. Settings (or the route's
metadata ``breaker-fail-max`` and ``breaker-reset-timeout`` in ms) size it.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.config.args import Args
from gateway.errors import BreakerOpen, GatewayError, from_call_error
from gateway.exchange import Exchange, Handler, ReplayableSource, ReplayFactory, Response
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    InternalForward,
    SyncFilter,
    WrappingFilter,
)
from gateway.filters.describe import filter_text
from gateway.filters.status import parse_status
from gateway.headers import Headers
from gateway.observability.tracing import Tracing
from resilience.breaker import Breaker, BreakerPolicy, CircuitOpen
from resilience.durations import parse_duration
from resilience.errors import CallError
from resilience.runtime import RuntimeSettings, ServiceRuntimes

log = logging.getLogger("meshgate.breaker")


class StatusCodeFailure(GatewayError):
    """A response whose status the route counts as a failure (SCG's
    CircuitBreakerStatusCodeException)."""

    status = 500
    error = "Internal Server Error"


class CircuitBreakerFilter(WrappingFilter):
    name = "CircuitBreaker"

    def __init__(
        self,
        breaker_name: str,
        *,
        written_name: str = "",
        fallback_path: str | None,
        fallback_text: str | None,
        status_codes: frozenset[int],
        resume_without_error: bool,
        breaker: Breaker | None,
        forward: InternalForward | None,
        replay_body: ReplayFactory | None,
        max_body: int,
    ) -> None:
        """``breaker`` None, ``forward`` None: built only to validate a file."""
        self.breaker_name = breaker_name
        self._written_name = written_name
        self._fallback_path = fallback_path
        self._fallback_text = fallback_text
        self._status_codes = status_codes
        self._resume = resume_without_error
        self._breaker = breaker
        self._forward = forward
        self._replay_body = replay_body
        # The body kept so the fallback can be sent it after a failed attempt: the same bound
        # as a retry's (GATEWAY_RETRY_MAX_BODY).
        self._max_body = max_body

    def describe(self) -> str:
        # SCG's text, from its Resilience4J factory: the name as written ('' when the route id
        # names the breaker) and the fallback URI unquoted ('' when there is none).
        fallback = self._fallback_text if self._fallback_text is not None else "''"
        return (
            f"[SpringCloudCircuitBreakerResilience4JFilterFactory name = '{self._written_name}',"
            f" fallback = {fallback}]"
        )

    def wrap(self, inner: Handler) -> Handler:
        breaker = self._breaker
        if breaker is None:
            raise RuntimeError("CircuitBreaker was built without the gateway's breakers")
        codes = self._status_codes
        keep_body = self._fallback_path is not None and self._replay_body is not None

        def failing(response: Response) -> bool:
            return response.status in codes

        async def guarded(exchange: Exchange) -> Response:
            # The state this request met, on its span when it is recorded.
            Tracing.annotate(exchange, "gateway.circuit_breaker.state", breaker.state)
            replay: ReplayableSource | None = None
            body = exchange.body
            if keep_body and body is not None and self._replay_body is not None:
                # Kept so the fallback can be sent the body the failed attempt consumed.
                replay = self._replay_body(body, self._max_body)
                exchange.body = replay
            try:
                response = await breaker.call(lambda: inner(exchange), failing if codes else None)
            except CircuitOpen as exc:
                error = BreakerOpen(str(exc) or "circuit open")
                return await self._failed(exchange, error, None, replay)
            except CallError as exc:
                return await self._failed(exchange, from_call_error(exc), None, replay)
            except GatewayError as exc:
                return await self._failed(exchange, exc, None, replay)
            if codes and response.status in codes:
                failure = StatusCodeFailure(f"upstream answered {response.status}")
                failure.status = response.status
                return await self._failed(exchange, failure, response, replay)
            return response

        return guarded

    async def _failed(
        self,
        exchange: Exchange,
        error: GatewayError,
        response: Response | None,
        replay: ReplayableSource | None,
    ) -> Response:
        exchange.failure = error
        if self._fallback_path is not None:
            if response is not None:
                response.discard()  # replaced by the fallback's answer
            if exchange.body is not None:
                exchange.body = replay.replay() if replay and replay.replayable else None
            if self._forward is None:
                raise GatewayError("fallback dispatch is not available")
            return await self._forward(self._fallback_path, exchange)
        if self._resume:
            if response is not None:
                response.discard()
            return Response(200, Headers(), b"")
        if response is not None:
            return response  # the failing status, as the upstream sent it
        raise error


class FallbackHeaders(SyncFilter):
    """Adds the circuit breaker's failure to the request a fallback route forwards."""

    name = "FallbackHeaders"

    def __init__(self, names: tuple[str, str, str, str]) -> None:
        self._names = names

    def pre(self, exchange: Exchange) -> Response | None:
        error = exchange.failure
        if error is None:
            return None
        type_name, message_name, root_type_name, root_message_name = self._names
        headers = exchange.request.headers
        headers.set(type_name, _type_name(error))
        headers.set(message_name, _single_line(str(error)))
        # SCG's root cause is the last of the cause chain, the failure itself when it has no
        # cause (a statusCodes failure): so both headers are always sent, as SCG sends them.
        root, seen = error, {id(error)}
        while root.__cause__ is not None and id(root.__cause__) not in seen:
            root = root.__cause__
            seen.add(id(root))
        headers.set(root_type_name, _type_name(root))
        headers.set(root_message_name, _single_line(str(root)))
        return None

    def describe(self) -> str:
        return filter_text(self.name, ("executionExceptionTypeHeaderName", self._names[0]))


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def _single_line(text: str) -> str:
    """Header values can't carry line breaks or control characters."""
    return "".join(c if c.isprintable() else " " for c in text)[:512]


def _breaker_policy(ctx: BuildContext, base: BreakerPolicy) -> BreakerPolicy | None:
    metadata: Any = ctx.metadata
    fail_max = metadata.get("breaker-fail-max")
    reset = metadata.get("breaker-reset-timeout")
    if fail_max is None and reset is None:
        return None
    try:
        fail = int(fail_max) if fail_max is not None else base.fail_max
        reset_s = parse_duration(reset, "ms") if reset is not None else base.reset_timeout
    except (TypeError, ValueError) as exc:
        raise ValueError(f"breaker metadata: {exc}") from exc
    if fail < 1 or reset_s <= 0:
        raise ValueError("breaker-fail-max must be >= 1 and breaker-reset-timeout > 0")
    return BreakerPolicy(
        fail_max=fail, reset_timeout=reset_s, half_open_probes=base.half_open_probes
    )


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    written: str = args.str("name", "")
    args.raw("routeId", None)  # read, so it is not "unknown"; SCG replaces it by the route's id
    # SCG's Config.getId(): the name when it has text, else the route id.
    name = written if written.strip() else (ctx.route_id or "default")
    fallback = args.str("fallbackUri", None)
    fallback_path: str | None = None
    if fallback is not None:
        if not fallback.startswith("forward:"):
            args.fail("fallbackUri", "only forward: URIs are supported, as in SCG")
        fallback_path = fallback[len("forward:") :] or "/"
        if not fallback_path.startswith("/"):
            args.fail("fallbackUri", "forward: needs a path starting with /")
    raw_codes = args.raw("statusCodes", [])
    items = raw_codes if isinstance(raw_codes, list) else str(raw_codes).split(",")
    codes: set[int] = set()
    for item in items:
        if str(item).strip():
            try:
                codes.add(parse_status(str(item)))
            except ValueError as exc:
                args.fail("statusCodes", str(exc))
    resume = args.bool("resumeWithoutError", False)
    args.finish()
    runtimes: ServiceRuntimes | None = ctx.runtimes
    base = runtimes.settings.breaker if runtimes is not None else BreakerPolicy()
    try:
        policy = _breaker_policy(ctx, base)
    except ValueError as exc:
        args.fail("name", str(exc))
    # Routes naming the same breaker share it; it outlives reloads in the runtimes.
    breaker = runtimes.breakers.get(name, policy) if runtimes is not None else None
    return CircuitBreakerFilter(
        name,
        written_name=written,
        fallback_path=fallback_path,
        fallback_text=fallback,
        status_codes=frozenset(codes),
        resume_without_error=resume,
        breaker=breaker,
        forward=ctx.forward,
        replay_body=ctx.replay_body,
        max_body=(runtimes.settings if runtimes is not None else RuntimeSettings()).retry_max_body,
    )


def _build_fallback_headers(args: Args, ctx: BuildContext) -> GatewayFilter:
    names = (
        args.str("executionExceptionTypeHeaderName", "Execution-Exception-Type"),
        args.str("executionExceptionMessageHeaderName", "Execution-Exception-Message"),
        args.str("rootCauseExceptionTypeHeaderName", "Root-Cause-Exception-Type"),
        args.str("rootCauseExceptionMessageHeaderName", "Root-Cause-Exception-Message"),
    )
    args.finish()
    return FallbackHeaders(names)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("CircuitBreaker", ("name", "fallbackUri"), _build),
    FilterFactory(
        "FallbackHeaders", ("executionExceptionTypeHeaderName",), _build_fallback_headers
    ),
)
