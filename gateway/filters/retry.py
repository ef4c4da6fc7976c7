"""Retry: Spring Cloud Gateway's arguments and defaults, on tenacity, with what SCG lacks:

- each retry goes to an instance not tried yet, when there is one (the balancer skips the
  instances in the exchange's tried set);
- request bodies up to ``GATEWAY_RETRY_MAX_BODY`` are replayed intact; a larger body is not
  retried once any of it was sent;
- a method outside ``methods`` is retried only when the connection failed before anything was
  sent (nothing reached the upstream, so nothing can be repeated);
- retries are paid from the service's retry budget, so a failing service never receives more
  than (1 + ratio) * its requests, plus a small floor;
- filters after Retry run again on each attempt from the request as it was when Retry first
  saw it (they edit the request in place, so it is restored, not re-edited).

A response is only ever retried before anything of it reached the client: Retry decides on
the status line, and a retried response's body is dropped unread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import tenacity

from gateway.config.args import Args, parse_bool, parse_duration
from gateway.engine.replay import ReplayableBody
from gateway.errors import (
    GatewayError,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.exchange import Exchange, Handler, Request, Response
from gateway.filters.base import FilterFactory, GatewayFilter, WrappingFilter
from gateway.filters.describe import filter_text
from gateway.filters.status import parse_status
from gateway.headers import Headers
from gateway.routing.context import BuildContext
from gateway.service_runtime import TRIED_INSTANCES, ServiceRuntimes
from resilience.backoff import Backoff, BackoffWait

log = logging.getLogger("meshgate.retry")

ATTEMPT = "meshgate.retry_attempt"

_SERIES = {
    "INFORMATIONAL": 1,
    "SUCCESSFUL": 2,
    "REDIRECTION": 3,
    "CLIENT_ERROR": 4,
    "SERVER_ERROR": 5,
}
# SCG's exception names (and short forms) → the failures they stand for here.
_EXCEPTIONS: dict[str, tuple[type[GatewayError], ...]] = {
    "java.io.IOException": (UpstreamConnectError, UpstreamProtocolError),
    "IOException": (UpstreamConnectError, UpstreamProtocolError),
    "java.net.ConnectException": (UpstreamConnectError,),
    "ConnectException": (UpstreamConnectError,),
    "java.util.concurrent.TimeoutException": (UpstreamTimeout,),
    "org.springframework.cloud.gateway.support.TimeoutException": (UpstreamTimeout,),
    "TimeoutException": (UpstreamTimeout,),
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


class _Snapshot:
    """The request as Retry first saw it; filters after Retry edit the request in place."""

    __slots__ = ("headers", "method", "path", "query", "variables")

    def __init__(self, exchange: Exchange) -> None:
        request = exchange.request
        self.method = request.method
        self.path = request.path
        self.query = request.query
        self.headers = list(request.headers.raw)
        self.variables = dict(exchange.uri_variables)

    def restore(self, exchange: Exchange) -> None:
        exchange.request = Request(
            self.method,
            self.path,
            self.query,
            Headers(list(self.headers)),
            exchange.request.version,
        )
        exchange.uri_variables = dict(self.variables)


class Retry(WrappingFilter):
    name = "Retry"

    def __init__(
        self,
        *,
        retries: int,
        statuses: frozenset[int],
        series: frozenset[int],
        methods: frozenset[str],
        exceptions: tuple[type[GatewayError], ...],
        exception_names: tuple[str, ...],
        backoff: Backoff | None,
        timeout: float | None,
        runtimes: ServiceRuntimes | None,
        max_body: int,
    ) -> None:
        self.retries = retries
        self.statuses = statuses
        self.series = series
        self.methods = methods
        self.exceptions = exceptions
        self._exception_names = exception_names
        self.backoff = backoff
        self.timeout = timeout
        self._runtimes = runtimes or ServiceRuntimes()
        self._max_body = max_body

    def describe(self) -> str:
        return filter_text(
            self.name,
            ("retries", self.retries),
            ("statuses", sorted(self.statuses)),
            ("series", sorted(self.series)),
            ("methods", sorted(self.methods)),
            ("exceptions", list(self._exception_names)),
        )

    def retryable_status(self, status: int) -> bool:
        return status in self.statuses or status // 100 in self.series

    def wrap(self, inner: Handler) -> Handler:
        async def retry(exchange: Exchange) -> Response:
            return await self._run(inner, exchange)

        return retry

    async def _run(self, inner: Handler, exchange: Exchange) -> Response:
        method_ok = exchange.request.method in self.methods
        body = exchange.body
        replay: ReplayableBody | None = None
        if body is not None:
            replay = ReplayableBody(body, self._max_body)
            exchange.body = replay
        snapshot = _Snapshot(exchange)
        route = exchange.route
        service = route.uri.service if route is not None else None
        budget = self._runtimes.get(service).budget if service else None
        if budget is not None:
            budget.record_request()
        tried: set[str] = set()
        exchange.attributes[TRIED_INSTANCES] = tried

        def should_retry(state: tenacity.RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None or state.attempt_number > self.retries:
                return False
            elapsed = state.seconds_since_start
            if self.timeout is not None and elapsed is not None and elapsed >= self.timeout:
                return False  # tenacity would stop anyway; don't spend budget on it
            if outcome.failed:
                exc = outcome.exception()
                if not isinstance(exc, self.exceptions):
                    return False
                # Nothing was sent on a failed connect: safe to repeat whatever the method.
                if not method_ok and not isinstance(exc, UpstreamConnectError):
                    return False
            else:
                response: Response = outcome.result()
                if not method_ok or not self.retryable_status(response.status):
                    return False
            if replay is not None and not replay.replayable:
                return False  # part of a body too large to keep was sent
            metrics = self._runtimes.metrics
            if budget is not None and not budget.try_retry():
                if metrics is not None and service:
                    metrics.budget_exhausted(service)
                return False
            if metrics is not None:
                metrics.retry(service or "")
            return True

        def prepare_next(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            if outcome is not None and not outcome.failed:
                dropped: Response = outcome.result()
                if not isinstance(dropped.body, bytes):
                    dropped.body.abort()  # unread: the connection can't be reused
            log.info(
                "retrying %s %s (attempt %d of %d) after %s",
                exchange.request.method,
                snapshot.path,
                state.attempt_number + 1,
                self.retries + 1,
                _outcome_text(state),
            )
            snapshot.restore(exchange)
            if replay is not None:
                exchange.body = replay.replay()

        stop: Any = tenacity.stop_never
        if self.timeout is not None:
            stop = tenacity.stop_after_delay(self.timeout)
        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=BackoffWait(self.backoff, self._runtimes.rng)
            if self.backoff is not None
            else tenacity.wait_none(),
            retry=_Predicate(should_retry),
            before_sleep=prepare_next,
            retry_error_callback=_last_outcome,
            sleep=asyncio.sleep,
        )
        last: Response | None = None
        attempt_number = 0
        # tenacity's iterator raises the final error itself; when it stops on a response, that
        # response (``last``) is the answer.
        async for attempt in retrying:
            with attempt:
                attempt_number += 1
                exchange.attributes[ATTEMPT] = attempt_number
                try:
                    last = await inner(exchange)
                finally:
                    target = exchange.target
                    if target is not None and target.instance_id is not None:
                        tried.add(target.instance_id)
            outcome = attempt.retry_state.outcome
            if outcome is not None and not outcome.failed:
                attempt.retry_state.set_result(last)
        assert last is not None
        return last


class _Predicate(tenacity.retry_base):
    def __init__(self, decide: Callable[[tenacity.RetryCallState], bool]) -> None:
        self._decide = decide

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._decide(retry_state)


def _last_outcome(state: tenacity.RetryCallState) -> Any:
    """Out of time or attempts: the last answer stands (a response, or its error)."""
    outcome = state.outcome
    assert outcome is not None
    return outcome.result()


def _outcome_text(state: tenacity.RetryCallState) -> str:
    outcome = state.outcome
    if outcome is None:
        return "nothing"
    if outcome.failed:
        exc = outcome.exception()
        return f"{type(exc).__name__}: {exc}"
    return f"status {outcome.result().status}"


def _statuses(args: Args) -> frozenset[int]:
    raw = args.raw("statuses", [])
    items = raw if isinstance(raw, list) else [raw]
    out: set[int] = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            out.add(parse_status(text))
        except ValueError as exc:
            args.fail("statuses", str(exc))
    return frozenset(out)


def _series(args: Args) -> frozenset[int]:
    if not args.has("series"):
        return frozenset({5})  # SCG: SERVER_ERROR unless series is given
    raw = args.raw("series")
    items = raw if isinstance(raw, list) else [raw]
    out: set[int] = set()
    for item in items:
        text = str(item).strip().upper()
        if not text:
            continue
        if text in _SERIES:
            out.add(_SERIES[text])
        elif text.isdigit() and 1 <= int(text) <= 5:
            out.add(int(text))
        else:
            args.fail("series", f"unknown series {item!r} (use e.g. SERVER_ERROR or 5)")
    return frozenset(out)


def _methods(args: Args) -> frozenset[str]:
    raw = args.raw("methods", ["GET"])
    items = raw if isinstance(raw, list) else str(raw).split(",")
    methods = {str(m).strip().upper() for m in items if str(m).strip()}
    unknown = sorted(methods - _METHODS)
    if unknown:
        args.fail("methods", f"unknown method(s) {', '.join(unknown)}")
    if not methods:
        args.fail("methods", "may not be empty")
    return frozenset(methods)


def _exceptions(args: Args) -> tuple[tuple[type[GatewayError], ...], tuple[str, ...]]:
    raw = args.raw("exceptions", ["java.io.IOException", "java.util.concurrent.TimeoutException"])
    items = raw if isinstance(raw, list) else str(raw).split(",")
    names = tuple(str(i).strip() for i in items if str(i).strip())
    classes: list[type[GatewayError]] = []
    for name in names:
        mapped = _EXCEPTIONS.get(name)
        if mapped is None:
            args.fail(
                "exceptions",
                f"unknown exception {name!r} (known: {', '.join(sorted(_EXCEPTIONS))})",
            )
        classes.extend(mapped)
    return tuple(dict.fromkeys(classes)), names


def _backoff(args: Args) -> Backoff | None:
    nested = args.raw("backoff", None)
    values: dict[str, Any] = dict(nested) if isinstance(nested, dict) else {}
    if nested is not None and not isinstance(nested, dict):
        args.fail("backoff", f"expected a mapping, got {nested!r}")
    for key in ("firstBackoff", "maxBackoff", "factor", "basedOnPreviousValue"):
        dotted = args.raw(f"backoff.{key}", None)  # the shortcut form's positional values
        if dotted is not None and str(dotted).strip():
            values[key] = dotted
    jitter = args.raw("jitter", None)
    if jitter is not None and not isinstance(jitter, dict):
        args.fail("jitter", f"expected a mapping, got {jitter!r}")
    if not values:
        if jitter is not None:
            args.fail("jitter", "needs a backoff to apply to")
        return None
    unknown = sorted(set(values) - {"firstBackoff", "maxBackoff", "factor", "basedOnPreviousValue"})
    if unknown:
        args.fail("backoff", f"unknown key(s) {', '.join(unknown)}")
    try:
        first = parse_duration(values.get("firstBackoff", "5ms"))
        maximum = parse_duration(values["maxBackoff"]) if "maxBackoff" in values else None
        factor = float(values.get("factor", 2))
        based = parse_bool(values.get("basedOnPreviousValue", True))
        random_factor = (
            float((jitter or {}).get("randomFactor", 0.5)) if jitter is not None else 0.0
        )
    except ValueError as exc:
        args.fail("backoff", str(exc))
    if first <= 0 or factor < 1 or (maximum is not None and maximum < first):
        args.fail("backoff", "needs firstBackoff > 0, factor >= 1 and maxBackoff >= firstBackoff")
    if not 0 <= random_factor <= 1:
        args.fail("jitter", "randomFactor must be between 0 and 1")
    return Backoff(first, maximum, factor, based, random_factor)


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    retries = args.int("retries", 3)
    if retries < 1:
        args.fail("retries", "must be at least 1")
    statuses = _statuses(args)
    series = _series(args)
    methods = _methods(args)
    exceptions, names = _exceptions(args)
    backoff = _backoff(args)
    timeout = args.duration("timeout", None)
    args.finish()
    if not statuses and not series and not exceptions:
        args.fail("statuses", "statuses, series and exceptions may not all be empty")
    runtimes = ctx.runtimes if isinstance(ctx.runtimes, ServiceRuntimes) else None
    max_body = runtimes.settings.retry_max_body if runtimes is not None else 1024 * 1024
    return Retry(
        retries=retries,
        statuses=statuses,
        series=series,
        methods=methods,
        exceptions=exceptions,
        exception_names=names,
        backoff=backoff,
        timeout=timeout,
        runtimes=runtimes,
        max_body=max_body,
    )


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory(
        "Retry",
        (
            "retries",
            "statuses",
            "methods",
            "backoff.firstBackoff",
            "backoff.maxBackoff",
            "backoff.factor",
            "backoff.basedOnPreviousValue",
        ),
        _build,
    ),
)
