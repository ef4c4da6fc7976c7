"""RewriteRequestParameter, SetStatus's original-status header, CircuitBreaker's routeId and
RewriteResponseHeader's four-token shortcut, each as SCG 5.0.4 does it.

The expected values were first observed on the real SCG 5.0.4 (the same filter arguments, an
upstream that reports its exact request line)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.args import Args, normalize_expanded
from gateway.config.schema import FilterSettings
from gateway.config.shortcut import parse_filter
from gateway.errors import BadRequest, ConfigError
from gateway.exchange import Response
from gateway.extension import BuildContext, GatewayFilter, SyncFilter
from gateway.filters.catalog import builtin_filters
from gateway.filters.circuit_breaker import CircuitBreakerFilter
from gateway.headers import Headers
from tests.unit.filters.conftest import make_exchange


def built(entry: object, ctx: BuildContext | None = None) -> GatewayFilter:
    """A filter built from a route entry (shortcut text or expanded mapping), as config does."""
    factories = builtin_filters()
    definition = parse_filter(entry, factories)
    args = Args(normalize_expanded(definition.args))
    result = factories[definition.name].build(args, ctx or BuildContext())
    args.finish()
    return result


def sync(entry: object, ctx: BuildContext | None = None) -> SyncFilter:
    result = built(entry, ctx)
    assert isinstance(result, SyncFilter)
    return result


# -- RewriteRequestParameter -------------------------------------------------------------------

REWRITE = "RewriteRequestParameter=a, new value&x+/y~z"
ENCODED = "new%20value%26x%2B%2Fy~z"


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("a=1", f"a={ENCODED}"),
        # every value of the parameter goes; the one new value moves to the end
        ("b=2&a=1&c=3&a=4", f"b=2&c=3&a={ENCODED}"),
        # all parameters are decoded and encoded anew, also those left alone
        ("b=x+y&c=%2F&d=%41&e&f=&a=z", f"b=x%20y&c=%2F&d=A&e&f=&a={ENCODED}"),
        # grouped by name even when the parameter is absent
        ("c=1&b=2&c=3", "c=1&c=3&b=2"),
        ("b=%E2%82%AC&%62=5", "b=%E2%82%AC&b=5"),
        ("a", f"a={ENCODED}"),
        ("a=", f"a={ENCODED}"),
        ("=x&a=1", f"x&a={ENCODED}"),  # Spring's pattern reads "=x" as a bare "x"
        ("x=a%2Bb&a=1", f"x=a%2Bb&a={ENCODED}"),
        ("k=1=2&a=1", f"k=1%3D2&a={ENCODED}"),
        ("b=caf%C3%A9", "b=caf%C3%A9"),
        ("b=%FF", "b=%EF%BF%BD"),  # not UTF-8: U+FFFD, as Java decodes it
        ("", ""),
        ("&&", ""),
    ],
)
def test_rewrite_request_parameter_as_scg(query: str, sent: str) -> None:
    exchange = make_exchange(path="/rrp/p", query=query)
    assert sync(REWRITE).pre(exchange) is None
    assert exchange.request.query == sent
    assert exchange.request.path == "/rrp/p"


def test_rewrite_request_parameter_names_compare_decoded_and_exactly() -> None:
    exchange = make_exchange(query="%61=1&A=2")
    sync("RewriteRequestParameter=a, z").pre(exchange)
    assert exchange.request.query == "A=2&a=z"


def test_rewrite_request_parameter_refuses_a_malformed_escape() -> None:
    # SCG's server answers 400 for such a URI before any filter runs.
    for query in ("b=%zz&a=1", "b=%4", "%G1=1"):
        with pytest.raises(BadRequest) as caught:
            sync(REWRITE).pre(make_exchange(query=query))
        assert caught.value.status == 400


def test_rewrite_request_parameter_replacement_is_literal() -> None:
    # No {var} expansion in SCG: the braces are sent, encoded.
    exchange = make_exchange(query="a=1", uri_variables={"segment": "x"})
    sync("RewriteRequestParameter=a, {segment}").pre(exchange)
    assert exchange.request.query == "a=%7Bsegment%7D"


def test_rewrite_request_parameter_arguments() -> None:
    expanded = {"name": "RewriteRequestParameter", "args": {"name": "a", "replacement": ""}}
    exchange = make_exchange(query="a=1&b=2")
    sync(expanded).pre(exchange)
    assert exchange.request.query == "b=2&a="
    assert sync(REWRITE).describe() == "[RewriteRequestParameter a = 'new value&x+/y~z']"
    # The shortcut's empty token is dropped, as SCG drops it: the replacement is missing.
    with pytest.raises(ConfigError, match="missing required argument 'replacement'"):
        built("RewriteRequestParameter=a, ")
    with pytest.raises(ConfigError, match="argument 'name'"):
        built({"name": "RewriteRequestParameter", "args": {"name": "", "replacement": "x"}})


# -- SetStatus and set-status.original-status-header-name -------------------------------------


def _with_header(name: str | None = "X-Original-Status") -> BuildContext:
    return BuildContext(filter_settings=FilterSettings(original_status_header=name))


@pytest.mark.parametrize(
    ("entry", "upstream", "status", "header"),
    [
        ("SetStatus=401", 201, 401, "[201]"),
        ("SetStatus=401", 500, 401, "[500]"),
        ("SetStatus=BAD_REQUEST", 200, 400, "[200]"),
        ("SetStatus=200", 200, 200, "[200]"),  # sent even when the status stays
    ],
)
def test_set_status_sends_the_original_status(
    entry: str, upstream: int, status: int, header: str
) -> None:
    response = Response(upstream, Headers([(b"X-Original-Status", b"upstream-said")]))
    sync(entry, _with_header()).post(make_exchange(), response)
    assert response.status == status
    assert response.headers.get_all("X-Original-Status") == [header]


def test_set_status_without_the_setting_adds_no_header() -> None:
    response = Response(201)
    sync("SetStatus=401", _with_header(None)).post(make_exchange(), response)
    assert (response.status, list(response.headers)) == (401, [])


def test_set_status_refuses_a_bad_header_name() -> None:
    with pytest.raises(ConfigError, match="original-status-header-name 'X Bad' is not a valid"):
        built("SetStatus=401", _with_header("X Bad"))


# -- CircuitBreaker routeId --------------------------------------------------------------------


def _breaker(args: dict[str, Any], route_id: str = "orders") -> CircuitBreakerFilter:
    result = built({"name": "CircuitBreaker", "args": args}, BuildContext(route_id=route_id))
    assert isinstance(result, CircuitBreakerFilter)
    return result


def test_circuit_breaker_route_id_is_the_routes_own() -> None:
    # SCG overwrites a written routeId with the id of the route the filter is on.
    unnamed = _breaker({"routeId": "written-id", "fallbackUri": "forward:/fb"})
    assert unnamed.breaker_name == "orders"
    assert unnamed.describe() == (
        "[SpringCloudCircuitBreakerResilience4JFilterFactory name = '', fallback = forward:/fb]"
    )
    named = _breaker({"name": "mybreaker", "routeId": "written-id"})
    assert named.breaker_name == "mybreaker"
    assert named.describe() == (
        "[SpringCloudCircuitBreakerResilience4JFilterFactory name = 'mybreaker', fallback = '']"
    )
    assert _breaker({"name": "  "}).breaker_name == "orders"  # no text: the route id


# -- RewriteResponseHeader's four-token shortcut ------------------------------------------------

FOUR_TOKENS = "RewriteResponseHeader=X-Response-Red, , password=[^&]+, password=***"


def test_four_token_shortcut_drops_the_empty_token() -> None:
    definition = parse_filter(FOUR_TOKENS, builtin_filters())
    assert definition.args == {
        "name": "X-Response-Red",
        "regexp": "password=[^&]+",
        "replacement": "password=***",
    }
    # SCG's routedefinitions show the same three values.
    assert definition.written == {
        "_genkey_0": "X-Response-Red",
        "_genkey_1": "password=[^&]+",
        "_genkey_2": "password=***",
    }
    response = Response(
        200,
        Headers(
            [
                (b"X-Response-Red", b"user=u1&password=secret&x=1"),
                (b"X-Response-Red", b"password=two"),
            ]
        ),
    )
    sync(FOUR_TOKENS).post(make_exchange(), response)
    assert response.headers.get_all("X-Response-Red") == [
        "user=u1&password=***&x=1",
        "password=***",
    ]


def test_every_shortcut_drops_empty_tokens() -> None:
    definition = parse_filter("AddRequestHeader=, X-A, , blue,", builtin_filters())
    assert definition.args == {"name": "X-A", "value": "blue"}
    with pytest.raises(ConfigError, match="missing required argument 'value'"):
        built("AddRequestHeader=X-A, ")
