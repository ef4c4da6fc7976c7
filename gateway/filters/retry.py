"""Retry: Spring Cloud Gateway's arguments and defaults, adapted to the call path's budgeted
retry loop (``resilience.retry``, on tenacity), with what SCG lacks:

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

import logging
import random
from collections.abc import Callable
from typing import Any

from gateway.config.args import Args, parse_bool
from gateway.errors import (
    GatewayError,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.exchange import Exchange, Handler, ReplayableSource, ReplayFactory, Request, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, WrappingFilter
from gateway.filters.describe import filter_text
from gateway.filters.status import parse_status
from gateway.headers import Headers
from resilience.backoff import Backoff
from resilience.durations import parse_duration
from resilience.retry import Retrier, RetryPolicy
from resilience.runtime import RuntimeSettings, ServiceRuntimes

log = logging.getLogger("meshgate.retry")

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
    """SCG's arguments parsed into two ``resilience.retry.Retrier``s made at load time: one
    for the listed ``methods`` (statuses, series and exceptions retried) and one for the rest
    (only a failed connect, where nothing was sent)."""

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
        rng: random.Random,
        service: str | None,
        runtimes: ServiceRuntimes | None,
        replay_body: ReplayFactory | None,
    ) -> None:
        self.retries = retries
        self.statuses = statuses
        self.series = series
        self.methods = methods
        self.exceptions = exceptions
        self._exception_names = exception_names
        self.backoff = backoff
        self.timeout = timeout
        self._service = service
        # The service's retry budget (None when only validating: nothing is sent then).
        self._budget = runtimes.get(service).budget if runtimes and service else None
        self._max_body = (runtimes.settings if runtimes else RuntimeSettings()).retry_max_body
        self._replay_body = replay_body
        events = runtimes.events if runtimes is not None else None

        def listed_error(exc: BaseException) -> bool:
            return isinstance(exc, exceptions)

        def other_error(exc: BaseException) -> bool:
            # Nothing was sent on a failed connect: safe to repeat whatever the method.
            return isinstance(exc, exceptions) and isinstance(exc, UpstreamConnectError)

        def retrier(
            on_result: Callable[[Response], bool], on_error: Callable[[BaseException], bool]
        ) -> Retrier[Response]:
            policy = RetryPolicy(retries, on_result, on_error, backoff, timeout)
            return Retrier(
                policy, rng=rng, drop=Response.discard, events=events, describe=_describe
            )

        self._listed = retrier(self.retryable_response, listed_error)
        self._other = retrier(_never, other_error)

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

    def retryable_response(self, response: Response) -> bool:
        return self.retryable_status(response.status)

    def wrap(self, inner: Handler) -> Handler:
        async def retry(exchange: Exchange) -> Response:
            return await self._run(inner, exchange)

        return retry

    async def _run(self, inner: Handler, exchange: Exchange) -> Response:
        body = exchange.body
        replay: ReplayableSource | None = None
        if body is not None:
            if self._replay_body is None:
                return await inner(exchange)  # nothing can send the body again
            replay = self._replay_body(body, self._max_body)
            exchange.body = replay
        retrier = self._listed if exchange.request.method in self.methods else self._other
        snapshot = _Snapshot(exchange)
        exchange.tried = set()

        async def attempt(number: int) -> Response:
            exchange.attempt = number
            return await inner(exchange)

        def before_retry(number: int, why: str) -> None:
            log.info(
                "retrying %s %s (attempt %d of %d) after %s",
                exchange.request.method,
                snapshot.path,
                number,
                self.retries + 1,
                why,
            )
            snapshot.restore(exchange)
            if replay is not None:
                exchange.body = replay.replay()

        return await retrier.run(
            attempt,
            service=self._service,
            budget=self._budget,
            replay=replay,
            before_retry=before_retry,
        )


def _never(response: Response) -> bool:
    return False


def _describe(response: Response) -> str:
    return f"status {response.status}"


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
    return Retry(
        retries=retries,
        statuses=statuses,
        series=series,
        methods=methods,
        exceptions=exceptions,
        exception_names=names,
        backoff=backoff,
        timeout=timeout,
        rng=ctx.rng,
        service=ctx.service,
        runtimes=ctx.runtimes,
        replay_body=ctx.replay_body,
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
