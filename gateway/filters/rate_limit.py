"""RequestRateLimiter: SCG's token-bucket rate limiter, keyed by something of the request.

Written as SCG writes it (expanded form only; SCG has no shortcut form for it)::

    - name: RequestRateLimiter
      args:
        redis-rate-limiter.replenishRate: 10     # tokens a second
        redis-rate-limiter.burstCapacity: 20     # the bucket's size (SCG's default: 1)
        redis-rate-limiter.requestedTokens: 1    # what one request costs
        key-resolver: header:X-Api-Key           # default: principal
        deny-empty-key: true                     # default: true (then 403)

Arguments bind with Spring's relaxed names, as SCG's do (``keyResolver`` = ``key-resolver``,
``redis-rate-limiter.replenish-rate`` = ``…replenishRate``). SCG's key resolvers and rate
limiters are Java beans named by SpEL (``#{@userKeyResolver}``); meshgate's key resolvers are
named instead: ``principal`` (the identity an authentication filter — JwtAuth, ApiKey,
BasicAuth — established: ``exchange.principal``; empty on a route without one, where
``deny-empty-key`` decides), ``remote-addr`` (the client's address as the connection shows it),
``header:NAME``, ``query:NAME`` (the first value) and ``route`` (one bucket for the route).

The buckets (``resilience.ratelimit``) are per (route id, key), in Redis with
``GATEWAY_REDIS_URL`` (shared by every gateway process using that Redis) or in each worker.
Every decided response carries SCG's ``X-RateLimit-*`` headers and the IETF draft's
(draft-ietf-httpapi-ratelimit-headers-10: ``RateLimit-Policy: "default";q=20;w=2`` — a full
bucket's requests, and the seconds it takes to fill — and ``RateLimit: "default";r=7;t=1`` —
requests left, and seconds until another one is); a refused one also ``Retry-After``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from gateway.config.args import Args
from gateway.config.schema import RateLimiterSettings
from gateway.config.spring import canonical
from gateway.exchange import Exchange, Handler, Response
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    NotPreviewed,
    SyncFilter,
    WrappingFilter,
)
from gateway.filters.describe import filter_text
from gateway.filters.local_response import json_error
from gateway.filters.status import parse_status
from resilience.ratelimit.base import RateLimiter, RateLimitEvents, SyncRateLimiter
from resilience.ratelimit.local import LocalRateLimiters
from resilience.ratelimit.policy import MAX_SAFE_INTEGER, BucketPolicy, Decision

NAME = "RequestRateLimiter"
KEY_RESOLVERS = "principal, remote-addr, header:NAME, query:NAME, route"
# The limiter's arguments are read under this prefix exactly as SCG's AbstractRateLimiter
# reads them (a key starting "redis-rate-limiter."); the names under it bind relaxed.
LIMITER = "redis-rate-limiter"
_LIMITER_FIELDS = ("replenishRate", "burstCapacity", "requestedTokens")
_JAVA_INT = 2**31 - 1
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
POLICY_NAME = '"default"'  # the IETF fields' policy item: one policy per response
_POLICY = POLICY_NAME.encode()
# What a refusal the backend caused (fail closed) tells the client to wait.
UNAVAILABLE_RETRY_AFTER = 1

KeyResolver = Callable[[Exchange], str]


# -- key resolvers -----------------------------------------------------------------------------
def _principal(exchange: Exchange) -> str:
    # Set by the route's authentication filter, which runs before every other filter
    # (filters/authentication.py); none on the route: empty, so deny-empty-key decides.
    return exchange.principal or ""


def _remote_addr(exchange: Exchange) -> str:
    return exchange.client_address


def _header(name: str) -> KeyResolver:
    def resolve(exchange: Exchange) -> str:
        return exchange.request.headers.get(name) or ""

    return resolve


def _query(name: str) -> KeyResolver:
    def resolve(exchange: Exchange) -> str:
        query = exchange.request.query
        if not query:
            return ""
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            if unquote(key) == name:
                return unquote(value)
        return ""

    return resolve


def _route(route_id: str) -> KeyResolver:
    return lambda exchange: route_id


@dataclass(frozen=True, slots=True)
class _Resolver:
    text: str  # as written
    resolve: KeyResolver
    missing: str  # what the client lacked when the key is empty


def parse_key_resolver(text: str, route_id: str) -> _Resolver:
    """``principal`` | ``remote-addr`` | ``header:NAME`` | ``query:NAME`` | ``route``; raises
    ValueError with the reason."""
    spec = text.strip()
    if spec.startswith(("#{", "${")):
        raise ValueError(
            f"{spec!r} names a Spring bean (SpEL), which meshgate cannot run; "
            f"use one of its key resolvers: {KEY_RESOLVERS}"
        )
    kind, colon, name = spec.partition(":")
    kind = kind.strip().lower()
    name = name.strip()
    if not colon:
        if kind == "principal":
            return _Resolver(
                spec,
                _principal,
                "authenticated principal (put JwtAuth, ApiKey or BasicAuth on the route)",
            )
        if kind == "remote-addr":
            return _Resolver(spec, _remote_addr, "a client address")
        if kind == "route":
            return _Resolver(spec, _route(route_id), "a route")
    elif kind == "header":
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header:NAME needs a header name, got {name!r}")
        return _Resolver(spec, _header(name), f"a {name} header")
    elif kind == "query":
        if not name:
            raise ValueError("query:NAME needs a parameter name")
        return _Resolver(spec, _query(name), f"a {name} query parameter")
    raise ValueError(f"unknown key resolver {spec!r}; use one of: {KEY_RESOLVERS}")


# -- what the filter answers -------------------------------------------------------------------
def _b(text: str) -> bytes:
    return text.encode("latin-1")


class _Verdicts:
    """Everything of one filter but the limiter: resolving the key, counting the outcome,
    the headers and the refusals. Shared by the synchronous and the awaiting variant."""

    __slots__ = (
        "_burst",
        "_deny_empty",
        "_empty_status",
        "_events",
        "_include_headers",
        "_now",
        "_policy",
        "_remaining",
        "_route_id",
        "_static",
        "_status",
        "resolver",
    )

    def __init__(
        self,
        spec: _Spec,
        route_id: str,
        headers: RateLimiterSettings,
        events: RateLimitEvents | None,
        now: Callable[[], float],
    ) -> None:
        self.resolver = spec.resolver
        self._policy = spec.policy
        self._route_id = route_id
        self._deny_empty = spec.deny_empty_key
        self._empty_status = spec.empty_key_status
        self._status = spec.status
        self._events = events
        self._now = now
        self._include_headers = headers.include_headers
        self._remaining = _b(headers.remaining_header)
        policy = spec.policy
        quota = policy.quota()
        window = max(1, math.ceil(policy.fill_time))
        self._burst = policy.burst_capacity
        # The same on every response of this filter: built once.
        self._static: list[tuple[bytes, bytes]] = [
            (_b(headers.replenish_rate_header), b"%d" % policy.replenish_rate),
            (_b(headers.burst_capacity_header), b"%d" % policy.burst_capacity),
            (_b(headers.requested_tokens_header), b"%d" % policy.requested_tokens),
            (b"RateLimit-Policy", _b(f"{POLICY_NAME};q={quota};w={window}")),
        ]

    def _count(self, outcome: str) -> None:
        if self._events is not None:
            self._events.decision(self._route_id, outcome)

    def empty_key(self, exchange: Exchange) -> Response | None:
        """The key resolver found nothing: refused (SCG's deny-empty-key) or let through
        unlimited, without rate-limit headers, as SCG does."""
        self._count("empty_key")
        if not self._deny_empty:
            return None
        response = json_error(
            exchange,
            self._empty_status,
            f"no rate limit key: the request has no {self.resolver.missing} "
            f"(RequestRateLimiter key-resolver {self.resolver.text})",
            now=self._now,
        )
        response.committed = True
        return response

    def refusal(self, exchange: Exchange, decision: Decision) -> Response | None:
        """None when ``decision`` lets the request through; else the response it gets."""
        if decision.allowed and decision.error is None:  # the common case first
            events = self._events
            if events is not None:
                events.decision(self._route_id, "allowed")
            return None
        if decision.error is not None:
            self._count("backend_error")
            if decision.allowed:
                return None
            # Fail closed: the limiter's backend is down. A 5xx body keeps its details out.
            response = json_error(exchange, 503, "", now=self._now)
            response.headers.raw.append((b"Retry-After", b"%d" % UNAVAILABLE_RETRY_AFTER))
            self.add_headers(response, decision)
            response.committed = True
            return response
        self._count("denied")
        response = json_error(
            exchange, self._status, "rate limit exceeded for this key", now=self._now
        )
        wait = self._policy.retry_after(decision.remaining)
        if wait is not None:
            response.headers.raw.append((b"Retry-After", b"%d" % max(1, math.ceil(wait))))
        self.add_headers(response, decision)
        response.committed = True  # SCG's setComplete(): no response filter adds to it
        return response

    def add_headers(self, response: Response, decision: Decision) -> None:
        if not self._include_headers:
            return
        raw = response.headers.raw
        remaining = decision.remaining
        if remaining < 0:  # the backend did not answer: SCG's -1, and no RateLimit field
            raw.append((self._remaining, b"-1"))
            raw.extend(self._static)
            return
        raw.append((self._remaining, b"%d" % remaining))  # %d truncates: floor, as >= 0
        raw.extend(self._static)
        policy = self._policy
        requested = policy.requested_tokens
        left = remaining // requested
        # Seconds until one more request's worth is in the bucket (none while it is full);
        # -(a // b) is ceil(-a / b), without a call.
        wanted = requested * (left + 1)
        if wanted <= self._burst:
            reset = -((remaining - wanted) // policy.replenish_rate)
            raw.append((b"RateLimit", b"%s;r=%d;t=%d" % (_POLICY, left, reset)))
        else:
            raw.append((b"RateLimit", b"%s;r=%d" % (_POLICY, left)))


# -- the two shapes ----------------------------------------------------------------------------
class LocalRequestRateLimiter(SyncFilter):
    """In-process buckets decide without waiting: a synchronous filter, folded with its
    neighbours into one layer (no coroutine of its own)."""

    name = NAME

    def __init__(self, verdicts: _Verdicts, limiter: SyncRateLimiter, text: str) -> None:
        self._verdicts = verdicts
        self._limiter = limiter
        self._text = text
        self._slot = f"{NAME}:{id(self)}"  # this filter's decision, from pre to post

    def pre(self, exchange: Exchange) -> Response | None:
        verdicts = self._verdicts
        key = verdicts.resolver.resolve(exchange)
        if not key:
            return verdicts.empty_key(exchange)
        decision = self._limiter.try_acquire(key)
        refusal = verdicts.refusal(exchange, decision)
        if refusal is None:
            exchange.attributes[self._slot] = decision
        return refusal

    def preview(self, exchange: Exchange) -> Response | None:
        # A decision takes a token (and is counted): the explain API must not spend one.
        key = self._verdicts.resolver.resolve(exchange)
        said = f"the bucket of key {key!r}" if key else "no key (the empty-key rule decides)"
        raise NotPreviewed(f"not run: it would take a token from {said}")

    def post(self, exchange: Exchange, response: Response) -> None:
        decision = exchange.attributes.get(self._slot)
        if decision is not None:
            self._verdicts.add_headers(response, decision)

    def describe(self) -> str:
        return self._text


class RequestRateLimiter(WrappingFilter):
    """Buckets elsewhere (Redis): the decision is awaited, so the filter is a layer."""

    name = NAME

    def __init__(self, verdicts: _Verdicts, limiter: RateLimiter, text: str) -> None:
        self._verdicts = verdicts
        self._limiter = limiter
        self._text = text

    def wrap(self, inner: Handler) -> Handler:
        verdicts = self._verdicts
        resolve = verdicts.resolver.resolve
        acquire = self._limiter.acquire

        async def rate_limit(exchange: Exchange) -> Response:
            key = resolve(exchange)
            if not key:
                refusal = verdicts.empty_key(exchange)
                return refusal if refusal is not None else await inner(exchange)
            decision = await acquire(key)
            refusal = verdicts.refusal(exchange, decision)
            if refusal is not None:
                return refusal
            response = await inner(exchange)
            if not response.committed:
                verdicts.add_headers(response, decision)
            return response

        return rate_limit

    def describe(self) -> str:
        return self._text


# -- arguments ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Spec:
    policy: BucketPolicy
    resolver: _Resolver
    deny_empty_key: bool
    empty_key_status: int
    status: int


_TOP = {
    canonical(name): name
    for name in (
        "keyResolver",
        "denyEmptyKey",
        "emptyKeyStatus",
        "statusCode",
        "throwOnLimit",
        "rateLimiter",
    )
}


def _spellings(args: Args, known: Mapping[str, str], where: str = "") -> dict[str, str]:
    """Each known argument's name as written, by its SCG name (Spring's relaxed binding: case,
    dashes and underscores don't tell names apart); two spellings of one are an error."""
    found: dict[str, str] = {}
    values = args.values if not where else args.values[where]
    for written in values:
        name = known.get(canonical(str(written)))
        if name is None:
            continue
        if name in found:
            shown = f"{where}.{written}" if where else str(written)
            args.fail(shown, f"also written as {found[name]!r}; keep one")
        found[name] = str(written)
    return found


def _limiter_int(args: Args, written: str, raw: Any, low: int, high: int) -> int:
    name = f"{LIMITER}.{written}"
    if isinstance(raw, bool | Mapping | list):
        args.fail(name, f"expected an integer, got {raw!r}")
    try:
        value = int(str(raw).strip())
    except ValueError:
        args.fail(name, f"expected an integer, got {raw!r}")
    if not low <= value <= high:
        args.fail(name, f"must be between {low} and {high}, got {value}")
    return value


def _policy(args: Args) -> BucketPolicy:
    for written in args.values:
        text = str(written)
        if canonical(text) == canonical(LIMITER) and text != LIMITER:
            args.fail(text, f"SCG reads the limiter's arguments only under {LIMITER}. (so spelt)")
        if canonical(text) == "emptykeystatuscode":
            args.fail(
                text, "the argument is emptyKeyStatus (empty-key-status-code is the property)"
            )
        if canonical(text) == "bucket4jratelimiter":
            args.fail(
                text,
                "the Bucket4j rate limiter is not available; meshgate's token bucket takes "
                f"{LIMITER}.replenishRate, burstCapacity and requestedTokens",
            )
    nested = args.raw(LIMITER, None)
    if nested is None:
        args.fail(f"{LIMITER}.replenishRate", "is required (tokens a second, at least 1)")
    if not isinstance(nested, Mapping):
        args.fail(LIMITER, f"expected {LIMITER}.replenishRate and friends, got {nested!r}")
    fields = _spellings(args, {canonical(f): f for f in _LIMITER_FIELDS}, LIMITER)
    unknown = sorted(str(k) for k in nested if str(k) not in fields.values())
    if unknown:
        args.fail(
            f"{LIMITER}.{unknown[0]}",
            f"unknown; the limiter takes {', '.join(_LIMITER_FIELDS)}",
        )
    if "replenishRate" not in fields:
        args.fail(f"{LIMITER}.replenishRate", "is required (tokens a second, at least 1)")
    # SCG's RedisRateLimiter.Config: int replenishRate >= 1, long burstCapacity >= 0 (default
    # 1; its Java-only check against replenishRate does not run when bound from properties),
    # int requestedTokens >= 1 (default 1).
    rate = _limiter_int(
        args, fields["replenishRate"], nested[fields["replenishRate"]], 1, _JAVA_INT
    )
    burst = 1
    if "burstCapacity" in fields:
        written = fields["burstCapacity"]
        burst = _limiter_int(args, written, nested[written], 0, MAX_SAFE_INTEGER)
    requested = 1
    if "requestedTokens" in fields:
        written = fields["requestedTokens"]
        requested = _limiter_int(args, written, nested[written], 1, _JAVA_INT)
    if 0 < burst < requested:
        args.fail(
            f"{LIMITER}.requestedTokens",
            f"{requested} is more than burstCapacity ({burst}): no request could ever pass "
            "(burstCapacity: 0 refuses every request, if that is what is meant)",
        )
    return BucketPolicy(float(rate), float(burst), float(requested))


def _status(args: Args, written: str) -> int:
    text: str = args.str(written)
    try:
        return parse_status(text)
    except ValueError as exc:
        args.fail(written, str(exc))


def parse_spec(args: Args, route_id: str, settings: RateLimiterSettings) -> _Spec:
    policy = _policy(args)
    top = _spellings(args, _TOP)
    if "rateLimiter" in top:
        args.fail(
            top["rateLimiter"],
            "SCG's RateLimiter bean can't be named here; the limiter is meshgate's token "
            f"bucket, set by {LIMITER}.* (in Redis with GATEWAY_REDIS_URL, else per worker)",
        )
    resolver_text = "principal"  # SCG's default: PrincipalNameKeyResolver
    if "keyResolver" in top:
        resolver_text = args.str(top["keyResolver"])
    try:
        resolver = parse_key_resolver(resolver_text, route_id)
    except ValueError as exc:
        args.fail(top.get("keyResolver", "keyResolver"), str(exc))
    deny = settings.deny_empty_key
    if "denyEmptyKey" in top:
        deny = args.bool(top["denyEmptyKey"])
    empty_status = settings.empty_key_status
    if "emptyKeyStatus" in top:
        empty_status = _status(args, top["emptyKeyStatus"])
    status = 429
    if "statusCode" in top:
        status = _status(args, top["statusCode"])
    if "throwOnLimit" in top:
        # Either value: a refusal always has the JSON error body (SCG's, when it throws).
        args.bool(top["throwOnLimit"])
    return _Spec(policy, resolver, deny, empty_status, status)


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    settings = ctx.filter_settings.rate_limiter
    spec = parse_spec(args, ctx.route_id, settings)
    args.finish()
    # Validation only (no running gateway): in-process buckets stand in.
    factory = ctx.rate_limiters if ctx.rate_limiters is not None else LocalRateLimiters()
    limiter = factory.limiter(ctx.route_id, spec.policy)
    verdicts = _Verdicts(spec, ctx.route_id, settings, factory.events, ctx.now)
    policy = spec.policy
    text = filter_text(
        NAME,
        ("replenishRate", int(policy.replenish_rate)),
        ("burstCapacity", int(policy.burst_capacity)),
        ("requestedTokens", int(policy.requested_tokens)),
        ("keyResolver", spec.resolver.text),
        ("denyEmptyKey", spec.deny_empty_key),
    )
    if isinstance(limiter, SyncRateLimiter):
        return LocalRequestRateLimiter(verdicts, limiter, text)
    return RequestRateLimiter(verdicts, limiter, text)


# SCG declares no shortcut fields: its documentation calls the shortcut form invalid.
FACTORIES: tuple[FilterFactory, ...] = (FilterFactory(NAME, (), _build),)

__all__ = ["FACTORIES", "KEY_RESOLVERS", "LocalRequestRateLimiter", "RequestRateLimiter"]
