"""RequestRateLimiter as a filter: SCG's arguments (relaxed names), the key resolvers, the
headers and refusals, the backend failure policy; bad arguments are located config errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from gateway.config.args import Args, normalize_expanded
from gateway.config.schema import FilterSettings, RateLimiterSettings
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, GatewayFilter, SyncFilter, WrappingFilter
from gateway.filters.catalog import builtin_filters
from gateway.filters.rate_limit import KEY_RESOLVERS
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from resilience.ratelimit.local import LocalRateLimiters
from resilience.ratelimit.policy import BucketPolicy, Decision
from tests.support.clock import FakeClock
from tests.unit.filters.conftest import make_exchange

NOW = 1_700_000_000.0


class Counted:
    """``RateLimitEvents``: what the filter reported."""

    def __init__(self) -> None:
        self.decisions: list[tuple[str, str]] = []
        self.errors: list[str] = []

    def decision(self, scope: str, outcome: str) -> None:
        self.decisions.append((scope, outcome))

    def backend_error(self, reason: str) -> None:
        self.errors.append(reason)


def build(
    args: Mapping[str, Any],
    *,
    factory: Any = None,
    settings: RateLimiterSettings | None = None,
    route_id: str = "orders",
) -> GatewayFilter:
    checked = Args(normalize_expanded(args))
    ctx = BuildContext(
        now=lambda: NOW,
        route_id=route_id,
        rate_limiters=factory,
        filter_settings=FilterSettings(rate_limiter=settings or RateLimiterSettings()),
    )
    built = builtin_filters()["RequestRateLimiter"].build(checked, ctx)
    checked.finish()
    return built


def local(events: Counted | None = None) -> tuple[LocalRateLimiters, FakeClock]:
    clock = FakeClock()
    return LocalRateLimiters(clock, events=events), clock


LIMIT = {
    "redis-rate-limiter.replenishRate": 5,
    "redis-rate-limiter.burstCapacity": 10,
    "key-resolver": "header:X-Api-Key",
}


def call(gateway_filter: GatewayFilter, exchange: Exchange) -> Response:
    """One request through a synchronous filter: its pre, else an upstream 200 and its post."""
    assert isinstance(gateway_filter, SyncFilter)
    refused = gateway_filter.pre(exchange)
    if refused is not None:
        return refused
    response = Response(200, Headers([(b"Content-Type", b"text/plain")]), b"ok")
    gateway_filter.post(exchange, response)
    return response


def keyed(value: str | None = "k1", **extra: str) -> Exchange:
    headers: Iterable[tuple[str, str]] = [("X-Api-Key", value)] if value is not None else []
    return make_exchange(headers=[*headers, *extra.items()])


def test_a_burst_admits_the_capacity_with_scg_and_ietf_headers() -> None:
    factory, _ = local()
    limiter = build(LIMIT, factory=factory)
    responses = [call(limiter, keyed()) for _ in range(40)]
    statuses = [r.status for r in responses]
    assert statuses.count(200) == 10
    assert statuses[:10] == [200] * 10
    first, last_ok, refused = responses[0], responses[9], responses[10]
    assert first.headers.get("X-RateLimit-Remaining") == "9"
    assert first.headers.get("X-RateLimit-Replenish-Rate") == "5"
    assert first.headers.get("X-RateLimit-Burst-Capacity") == "10"
    assert first.headers.get("X-RateLimit-Requested-Tokens") == "1"
    assert first.headers.get("RateLimit-Policy") == '"default";q=10;w=2'
    assert first.headers.get("RateLimit") == '"default";r=9;t=1'
    assert last_ok.headers.get("X-RateLimit-Remaining") == "0"
    assert refused.status == 429
    assert refused.committed
    assert refused.headers.get("Retry-After") == "1"
    assert refused.headers.get("X-RateLimit-Remaining") == "0"
    assert refused.headers.get("RateLimit") == '"default";r=0;t=1'
    assert refused.headers.get("Content-Type") == "application/json"
    assert b'"status":429' in bytes(refused.body)  # type: ignore[arg-type]


def test_tokens_come_back_at_the_rate() -> None:
    factory, clock = local()
    limiter = build(LIMIT, factory=factory)
    for _ in range(10):
        call(limiter, keyed())
    assert call(limiter, keyed()).status == 429
    clock.advance(0.2)  # one token at 5/s
    assert call(limiter, keyed()).status == 200
    assert call(limiter, keyed()).status == 429


def test_keys_are_independent_and_routes_too() -> None:
    factory, _ = local()
    orders = build(LIMIT, factory=factory, route_id="orders")
    users = build(LIMIT, factory=factory, route_id="users")
    for _ in range(10):
        call(orders, keyed("alice"))
    assert call(orders, keyed("alice")).status == 429
    assert call(orders, keyed("bob")).status == 200
    assert call(users, keyed("alice")).status == 200


def test_an_empty_key_is_denied_with_403_by_default() -> None:
    events = Counted()
    factory, _ = local(events)
    limiter = build(LIMIT, factory=factory)
    for exchange in (keyed(None), keyed("")):
        response = call(limiter, exchange)
        assert response.status == 403
        assert response.committed
        assert "X-RateLimit-Remaining" not in response.headers
        assert b"X-Api-Key header" in bytes(response.body)  # type: ignore[arg-type]
    assert events.decisions == [("orders", "empty_key")] * 2


def test_deny_empty_key_false_lets_it_through_unlimited() -> None:
    factory, _ = local()
    limiter = build({**LIMIT, "deny-empty-key": False}, factory=factory)
    responses = [call(limiter, keyed(None)) for _ in range(30)]
    assert {r.status for r in responses} == {200}
    assert "X-RateLimit-Remaining" not in responses[0].headers  # as SCG: no limiter asked


def test_the_empty_key_status_and_the_refusal_status_can_be_set() -> None:
    factory, _ = local()
    limiter = build(
        {**LIMIT, "emptyKeyStatus": "UNAUTHORIZED", "statusCode": "SERVICE_UNAVAILABLE"},
        factory=factory,
    )
    assert call(limiter, keyed(None)).status == 401
    for _ in range(10):
        call(limiter, keyed())
    assert call(limiter, keyed()).status == 503


def test_the_principal_resolver_is_the_default_and_empty_without_authentication() -> None:
    factory, _ = local()
    limiter = build({"redis-rate-limiter.replenishRate": 1}, factory=factory)
    response = call(limiter, keyed("k1"))
    assert response.status == 403
    assert b"principal" in bytes(response.body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("resolver", "first", "second"),
    [
        ("query:user", make_exchange(query="user=ann&x=1"), make_exchange(query="user=bo")),
        ("query:user", make_exchange(query="user=a%20b"), make_exchange(query="user=a+b")),
        ("header:X-Api-Key", keyed("a"), keyed("b")),
    ],
)
def test_resolvers_tell_keys_apart(resolver: str, first: Exchange, second: Exchange) -> None:
    factory, _ = local()
    limiter = build(
        {"redis-rate-limiter.replenishRate": 1, "key-resolver": resolver}, factory=factory
    )
    assert call(limiter, first).status == 200
    assert call(limiter, first).status == 429
    assert call(limiter, second).status == 200


def test_remote_addr_and_route_resolvers() -> None:
    factory, _ = local()
    by_addr = build(
        {"redis-rate-limiter.replenishRate": 1, "key-resolver": "remote-addr"}, factory=factory
    )
    here, there = make_exchange(), make_exchange()
    there.client_host = "10.0.0.2"
    assert call(by_addr, here).status == 200
    assert call(by_addr, here).status == 429
    assert call(by_addr, there).status == 200
    whole = build(
        {"redis-rate-limiter.replenishRate": 1, "keyResolver": "route"},
        factory=factory,
        route_id="other",
    )
    assert call(whole, keyed("a")).status == 200
    assert call(whole, keyed("b")).status == 429  # one bucket for the whole route


def test_relaxed_names_bind_as_in_scg() -> None:
    factory, _ = local()
    limiter = build(
        {
            "redis-rate-limiter": {"replenish-rate": 2, "burst_capacity": 3, "REQUESTEDTOKENS": 1},
            "KeyResolver": "header:X-Api-Key",
            "deny_empty_key": "false",
            "throw-on-limit": "true",
        },
        factory=factory,
    )
    assert [call(limiter, keyed()).status for _ in range(4)] == [200, 200, 200, 429]
    assert call(limiter, keyed(None)).status == 200
    assert "replenishRate = 2, burstCapacity = 3" in limiter.describe()


def test_scg_defaults_burst_one_and_allows_it_below_the_rate() -> None:
    # SCG's own test (redisRateConfiguredFromEnvironmentMinimal): replenish-rate 2 alone
    # binds burstCapacity 1, requestedTokens 1.
    factory, _ = local()
    limiter = build(
        {"redis-rate-limiter.replenish-rate": 2, "key-resolver": "route"}, factory=factory
    )
    assert [call(limiter, keyed()).status for _ in range(2)] == [200, 429]


def test_requested_tokens_cost_more_than_one() -> None:
    factory, clock = local()
    limiter = build(
        {
            "redis-rate-limiter.replenishRate": 1,
            "redis-rate-limiter.burstCapacity": 60,
            "redis-rate-limiter.requestedTokens": 60,
            "key-resolver": "route",
        },
        factory=factory,
    )
    ok = call(limiter, keyed())
    assert ok.headers.get("RateLimit-Policy") == '"default";q=1;w=60'
    assert ok.headers.get("RateLimit") == '"default";r=0;t=60'
    refused = call(limiter, keyed())
    assert refused.headers.get("Retry-After") == "60"
    clock.advance(60)
    assert call(limiter, keyed()).status == 200


def test_a_full_bucket_has_no_reset_time() -> None:
    factory, clock = local()
    limiter = build({**LIMIT, "redis-rate-limiter.burstCapacity": 5}, factory=factory)
    clock.advance(10)
    # 4 left of 5: one request's worth comes back in 0.2 s (t rounds up to 1).
    assert call(limiter, keyed()).headers.get("RateLimit") == '"default";r=4;t=1'
    clock.advance(10)
    zero_cost = build(
        {**LIMIT, "redis-rate-limiter.burstCapacity": 0}, factory=factory, route_id="closed"
    )
    refused = call(zero_cost, keyed())
    assert refused.status == 429
    assert "Retry-After" not in refused.headers  # burstCapacity 0: never


def test_header_names_and_include_headers_come_from_the_properties() -> None:
    factory, _ = local()
    renamed = RateLimiterSettings(remaining_header="X-Left", burst_capacity_header="X-Burst")
    limiter = build(LIMIT, factory=factory, settings=renamed)
    response = call(limiter, keyed())
    assert response.headers.get("X-Left") == "9"
    assert response.headers.get("X-Burst") == "10"
    assert "X-RateLimit-Remaining" not in response.headers
    quiet = build(
        LIMIT, factory=factory, settings=RateLimiterSettings(include_headers=False), route_id="q"
    )
    ok = call(quiet, keyed())
    assert [name for name, _ in ok.headers] == ["Content-Type"]
    for _ in range(10):
        refused = call(quiet, keyed())
    assert refused.status == 429
    assert [name for name, _ in refused.headers] == ["Content-Type", "Retry-After"]


def test_the_deny_empty_key_property_is_the_default() -> None:
    factory, _ = local()
    settings = RateLimiterSettings(deny_empty_key=False, empty_key_status=400)
    assert call(build(LIMIT, factory=factory, settings=settings), keyed(None)).status == 200
    strict = RateLimiterSettings(empty_key_status=400)
    assert call(build(LIMIT, factory=factory, settings=strict), keyed(None)).status == 400
    # The route's arguments win over the properties.
    mine = build({**LIMIT, "denyEmptyKey": True}, factory=factory, settings=settings)
    assert call(mine, keyed(None)).status == 400
    status = build({**LIMIT, "emptyKeyStatus": 429}, factory=factory, settings=strict)
    assert call(status, keyed(None)).status == 429


def test_decisions_are_counted() -> None:
    events = Counted()
    factory, _ = local(events)
    limiter = build({**LIMIT, "redis-rate-limiter.burstCapacity": 1}, factory=factory)
    call(limiter, keyed())
    call(limiter, keyed())
    call(limiter, keyed(None))
    assert events.decisions == [
        ("orders", "allowed"),
        ("orders", "denied"),
        ("orders", "empty_key"),
    ]


# -- a limiter that awaits (Redis's shape), with its failure decisions ----------------------
class Answers:
    """``RateLimiterFactory`` whose limiters answer what the test says (the Redis backend's
    shape: no ``try_acquire``, so the filter awaits)."""

    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.keys: list[str] = []
        self.events = Counted()

    def limiter(self, scope: str, policy: BucketPolicy) -> Answers:
        self._policy = policy
        return self

    @property
    def policy(self) -> BucketPolicy:
        return self._policy

    async def acquire(self, key: str) -> Decision:
        self.keys.append(key)
        return self.decisions.pop(0)

    def retain(self, scopes: Iterable[str]) -> None: ...

    async def close(self) -> None: ...


async def run(gateway_filter: GatewayFilter, exchange: Exchange) -> tuple[Response, int]:
    assert isinstance(gateway_filter, WrappingFilter)
    calls = 0

    async def upstream(exchange: Exchange) -> Response:
        nonlocal calls
        calls += 1
        return Response(200, Headers(), b"ok")

    response = await gateway_filter.wrap(upstream)(exchange)
    return response, calls


async def test_an_awaiting_limiter_decides_the_same_way() -> None:
    answers = Answers(Decision(True, 3.0), Decision(False, 0.5))
    limiter = build(LIMIT, factory=answers)
    ok, calls = await run(limiter, keyed("k9"))
    assert (ok.status, calls) == (200, 1)
    assert ok.headers.get("X-RateLimit-Remaining") == "3"
    refused, calls = await run(limiter, keyed("k9"))
    assert (refused.status, calls) == (429, 0)
    assert refused.headers.get("Retry-After") == "1"
    empty, calls = await run(limiter, keyed(None))
    assert (empty.status, calls) == (403, 0)
    assert answers.keys == ["k9", "k9"]
    assert answers.events.decisions == [
        ("orders", "allowed"),
        ("orders", "denied"),
        ("orders", "empty_key"),
    ]


async def test_a_failed_backend_fails_open_with_scg_headers() -> None:
    answers = Answers(Decision(True, -1.0, "timeout"))
    response, calls = await run(build(LIMIT, factory=answers), keyed())
    assert (response.status, calls) == (200, 1)
    assert response.headers.get("X-RateLimit-Remaining") == "-1"  # SCG's "unknown"
    assert "RateLimit" not in response.headers  # r must be non-negative: not sent
    assert response.headers.get("RateLimit-Policy") == '"default";q=10;w=2'
    assert answers.events.decisions == [("orders", "backend_error")]


async def test_a_failed_backend_fails_closed_with_503() -> None:
    answers = Answers(Decision(False, -1.0, "connection"))
    response, calls = await run(build(LIMIT, factory=answers), keyed())
    assert (response.status, calls) == (503, 0)
    assert response.headers.get("Retry-After") == "1"
    assert answers.events.decisions == [("orders", "backend_error")]


# -- bad arguments ---------------------------------------------------------------------------
BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"key-resolver": "route"}, "redis-rate-limiter.replenishRate", "is required"),
    ({"redis-rate-limiter.replenishRate": 0}, "redis-rate-limiter.replenishRate", "between 1"),
    ({"redis-rate-limiter.replenishRate": "fast"}, "replenishRate", "expected an integer"),
    ({"redis-rate-limiter.replenishRate": 1.5}, "replenishRate", "expected an integer"),
    (
        {"redis-rate-limiter.replenishRate": 1, "redis-rate-limiter.burstCapacity": -1},
        "redis-rate-limiter.burstCapacity",
        "between 0",
    ),
    (
        {"redis-rate-limiter.replenishRate": 1, "redis-rate-limiter.burstCapacity": 2**53},
        "burstCapacity",
        "between 0 and 9007199254740991",
    ),
    (
        {"redis-rate-limiter.replenishRate": 1, "redis-rate-limiter.requestedTokens": 0},
        "redis-rate-limiter.requestedTokens",
        "between 1",
    ),
    (
        {
            "redis-rate-limiter.replenishRate": 1,
            "redis-rate-limiter.burstCapacity": 5,
            "redis-rate-limiter.requestedTokens": 6,
        },
        "redis-rate-limiter.requestedTokens",
        "no request could ever pass",
    ),
    ({"redis-rate-limiter.replenishRate": 1, "redis-rate-limiter.rate": 1}, "rate", "unknown"),
    ({"redisRateLimiter.replenishRate": 1}, "redisRateLimiter", "only under redis-rate-limiter."),
    ({"bucket4j-rate-limiter.capacity": 1}, "bucket4j-rate-limiter", "Bucket4j"),
    (
        {"redis-rate-limiter.replenishRate": 1, "key-resolver": "#{@userKeyResolver}"},
        "key-resolver",
        f"use one of its key resolvers: {KEY_RESOLVERS}",
    ),
    (
        {"redis-rate-limiter.replenishRate": 1, "keyResolver": "cookie:session"},
        "keyResolver",
        "unknown key resolver 'cookie:session'; use one of: principal, remote-addr",
    ),
    ({"redis-rate-limiter.replenishRate": 1, "key-resolver": "header:"}, "key-resolver", "name"),
    ({"redis-rate-limiter.replenishRate": 1, "key-resolver": "query:"}, "key-resolver", "name"),
    (
        {"redis-rate-limiter.replenishRate": 1, "rate-limiter": "#{@myRateLimiter}"},
        "rate-limiter",
        "RateLimiter bean",
    ),
    (
        {"redis-rate-limiter.replenishRate": 1, "key-resolver": "route", "keyResolver": "route"},
        "keyResolver",
        "also written as 'key-resolver'",
    ),
    ({"redis-rate-limiter.replenishRate": 1, "deny-empty-key": "maybe"}, "deny-empty-key", "bool"),
    ({"redis-rate-limiter.replenishRate": 1, "statusCode": "NOPE"}, "statusCode", "unknown"),
    ({"redis-rate-limiter.replenishRate": 1, "emptyKeyStatus": "1000"}, "emptyKeyStatus", "1000"),
    (
        {"redis-rate-limiter.replenishRate": 1, "empty-key-status-code": 401},
        "empty-key-status-code",
        "emptyKeyStatus",
    ),
    ({"redis-rate-limiter.replenishRate": 1, "routeIdx": "a"}, "routeIdx", "unknown argument"),
]


@pytest.mark.parametrize(("args", "name", "reason"), BAD)
def test_bad_arguments_name_the_argument(args: dict[str, Any], name: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(args)  # no factory: validation only, as `meshgate validate` builds
    message = str(caught.value)
    assert name in message
    assert reason in message


def test_a_bad_argument_in_a_file_is_located() -> None:
    text = """\
routes:
  - id: limited
    uri: http://127.0.0.1:9
    filters:
      - name: RequestRateLimiter
        args:
          redis-rate-limiter.replenishRate: 10
          key-resolver: "#{@userKeyResolver}"
"""
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "routes.yml", builtin_predicates(), builtin_filters())
    assert str(caught.value).startswith(
        "routes.yml: routes[0] (limited) filters[0] (RequestRateLimiter): argument "
        "'key-resolver': '#{@userKeyResolver}' names a Spring bean (SpEL)"
    ), str(caught.value)


def test_the_shortcut_form_is_refused() -> None:
    text = """\
routes:
  - id: limited
    uri: http://127.0.0.1:9
    filters:
      - RequestRateLimiter=2, 2, #{@userkeyresolver}
"""
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "routes.yml", builtin_predicates(), builtin_filters())
    assert "RequestRateLimiter" in str(caught.value)
    assert "takes at most 0 argument" in str(caught.value)


def test_a_validation_build_needs_no_backend() -> None:
    built = build(LIMIT)
    assert isinstance(built, SyncFilter)
    assert built.describe() == (
        "[RequestRateLimiter replenishRate = 5, burstCapacity = 10, requestedTokens = 1, "
        "keyResolver = 'header:X-Api-Key', denyEmptyKey = true]"
    )
