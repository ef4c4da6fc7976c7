"""CORS: the two configuration forms (Spring Boot's globalcors binding, SCG's reading of route
metadata), Spring's checks, SCG's table of patterns, and the processor's verdicts, with the
values SCG 5.0.4 (Spring Framework 7.0.8) was seen to answer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.config.cors import (
    CorsConfiguration,
    check_cors_pattern,
    parse_cors,
    parse_route_cors,
)
from gateway.config.errors import ConfigErrors
from gateway.config.schema import (
    GatewayConfig,
    PredicateDefinition,
    RouteDefinition,
    SpringSettings,
)
from gateway.cors import VARY, CorsPolicy, CorsRule
from gateway.dispatch import Dispatcher
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Request, Response
from gateway.filters.catalog import builtin_filters
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from gateway.routing.route import Route
from gateway.routing.table import RouteTable

# -- globalcors: Spring Boot's binding -----------------------------------------------------------


def test_global_strings_are_lists_cut_at_commas_and_origins_lose_a_trailing_slash() -> None:
    config = parse_cors(
        {
            "allowedOrigins": "https://a.example, https://b.example/",
            "allowedMethods": "GET,POST",
            "allowedHeaders": "X-One",
            "exposedHeaders": "X-Exp1, X-Exp2",
            "maxAge": 100,
        }
    )
    assert config == CorsConfiguration(
        allowed_origins=("https://a.example", "https://b.example"),
        allowed_methods=("GET", "POST"),
        allowed_headers=("X-One",),
        exposed_headers=("X-Exp1", "X-Exp2"),
        max_age=100,
    )


def test_global_keys_bind_relaxed_and_values_convert_as_boot_converts() -> None:
    config = parse_cors(
        {
            "allowed_origins": ["https://u.example"],
            "ALLOWEDMETHODS": "PUT",
            "allowed-headers": "X-A,X-B",
            "allowCredentials": "yes",
            "allow-private-network": True,
            "max-age": "30",
        }
    )
    assert config.allowed_origins == ("https://u.example",)
    assert config.allowed_methods == ("PUT",)
    assert config.allowed_headers == ("X-A", "X-B")
    assert config.allow_credentials is True
    assert config.allow_private_network is True
    assert config.max_age == 30


def test_a_list_item_keeps_its_commas_for_spring_to_split_around_port_lists() -> None:
    config = parse_cors(
        {"allowedOriginPatterns": ["https://*.example.com:[8080,8081], https://x.example"]}
    )
    assert config.allowed_origin_patterns == (
        "https://*.example.com:[8080,8081]",
        "https://x.example",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"allowedOrigin": "x"}, "allowedOrigin: unknown key (did you mean allowedOrigins?)"),
        (
            {"allowedOrigins": "a", "allowed-origins": "b"},
            "allowed-origins: sets allowedOrigins again",
        ),
        ({"maxAge": "10s"}, "maxAge: expected whole seconds, got a string ('10s')"),
        ({"allowCredentials": "maybe"}, "allowCredentials: expected true or false"),
        (
            {"allowedOrigins": "*", "allowCredentials": True},
            "allowCredentials: true cannot go with allowedOrigins '*'",
        ),
        (
            {"allowedOrigins": ["*"], "allowPrivateNetwork": "true"},
            "allowPrivateNetwork: true cannot go with allowedOrigins '*'",
        ),
        (
            {"allowedOriginPatterns": "https://*.example.com:[8080,8081]"},
            "is cut at every comma by Spring Boot, port list included",
        ),
        ({"allowedMethods": "get"}, "'get': methods are case-sensitive, write GET"),
        ({"allowedHeaders": ["X A"]}, "allowedHeaders: 'X A' is not a header name"),
        ({"allowedOrigins": "https://a.example,,https://b"}, "an empty origin"),
        (
            {"allowedOrigins": {"x": 1}},
            "allowedOrigins: expected a list or a string, got a mapping",
        ),
        ({"exposedHeaders": [True]}, "exposedHeaders[0]: expected a string, got a boolean"),
        ("https://a.example", "expected a mapping of CORS settings, got a string"),
    ],
)
def test_global_mistakes_name_the_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_cors(raw)
    assert message in str(caught.value)


def test_check_cors_pattern() -> None:
    check_cors_pattern("/api/{id}/**")
    with pytest.raises(ConfigError, match="must start with '/'"):
        check_cors_pattern("api/**")
    with pytest.raises(ConfigError, match="path pattern '/a/\\{x'"):
        check_cors_pattern("/a/{x")


# -- metadata.cors: SCG's own reading -------------------------------------------------------------


def test_route_strings_are_one_value_but_spring_still_splits_origins() -> None:
    config = parse_route_cors(
        {
            "allowedOrigins": "https://m1.example, https://m2.example",
            "allowedOriginPatterns": "https://*.p.example:[8080,8081]",
            "allowedMethods": {"0": "GET", "1": "PUT"},  # SCG takes a map's values
            "exposedHeaders": "X-A, X-B",
            "allowCredentials": True,
            "maxAge": 30,
        }
    )
    assert config.allowed_origins == ("https://m1.example", "https://m2.example")
    assert config.allowed_origin_patterns == ("https://*.p.example:[8080,8081]",)
    assert config.allowed_methods == ("GET", "PUT")
    assert config.exposed_headers == ("X-A", "X-B")
    assert (config.allow_credentials, config.max_age) == (True, 30)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"allowed-origins": "x"},
            "metadata cors.allowed-origins: route metadata keys are read as written: "
            "use allowedOrigins",
        ),
        ({"allowedOrigns": "x"}, "metadata cors.allowedOrigns: unknown key (did you mean"),
        ({"allowPrivateNetwork": True}, "SCG does not read allowPrivateNetwork from route"),
        ({"allowedMethods": "GET,POST"}, "'GET,POST' is one method name to SCG"),
        ({"allowedHeaders": "X-A, X-B"}, "'X-A, X-B' is one header name to SCG"),
        ({"allowCredentials": "true"}, "SCG casts the metadata value to a boolean"),
        ({"maxAge": "30"}, "SCG casts the metadata value to a number"),
        ({"allowedOrigins": " https://a.example"}, "has white space"),
        (["x"], "metadata cors: expected a mapping of CORS settings, got a list"),
    ],
)
def test_route_mistakes_name_the_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_route_cors(raw)
    assert message in str(caught.value)


def test_a_bad_route_cors_is_a_located_error_and_the_route_is_not_built() -> None:
    config = GatewayConfig(
        routes=(
            RouteDefinition(
                "good", "http://127.0.0.1:1", (PredicateDefinition("Path", {"patterns": ["/a"]}),)
            ),
            RouteDefinition(
                "bad", "http://127.0.0.1:1", metadata={"cors": {"allowedMethods": "get"}}
            ),
        ),
        source="routes.yml",
    )
    with pytest.raises(ConfigErrors) as caught:
        build_routes(config, builtin_predicates(), builtin_filters())
    assert str(caught.value) == (
        "routes.yml: routes[1] (bad): metadata cors.allowedMethods: "
        "'get': methods are case-sensitive, write GET"
    )


# -- Spring's checks -----------------------------------------------------------------------------


def test_check_origin() -> None:
    rule = CorsRule(
        parse_cors(
            {
                "allowedOrigins": "https://a.example",
                "allowedOriginPatterns": [
                    "https://*.example.com:[8080,8081]",
                    "http://*.local:[*]",
                ],
            }
        )
    )
    # Case-insensitive, trailing slash ignored; the client's own spelling goes back.
    assert rule.check_origin("https://A.EXAMPLE/") == "https://A.EXAMPLE/"
    assert rule.check_origin("https://api.example.com:8081") == "https://api.example.com:8081"
    assert rule.check_origin("https://api.example.com:9000") is None
    assert rule.check_origin("https://api.example.com") is None
    assert rule.check_origin("http://box.local") == "http://box.local"
    assert rule.check_origin("http://box.local:3000") == "http://box.local:3000"
    assert rule.check_origin("HTTP://box.local") is None  # patterns are case-sensitive
    assert rule.check_origin("") is None
    assert CorsRule(parse_cors({"allowedOrigins": "*"})).check_origin("null") == "*"
    assert CorsRule(parse_cors({"allowedOriginPatterns": "*"})).check_origin("null") == "null"


def test_check_method() -> None:
    defaults = CorsRule(CorsConfiguration(allowed_origins=("*",)))
    assert defaults.check_method("GET") == "GET,HEAD"
    assert defaults.check_method("POST") is None
    assert CorsRule(parse_cors({"allowedMethods": "*"})).check_method("PATCH") == "PATCH"
    listed = CorsRule(parse_cors({"allowedMethods": ["PUT", "GET"]}))
    assert listed.check_method("GET") == "PUT,GET"
    assert listed.check_method("get") is None


def test_check_headers() -> None:
    none = CorsRule(CorsConfiguration())
    assert none.check_headers([]) == []
    assert none.check_headers(["X-A"]) is None
    some = CorsRule(parse_cors({"allowedHeaders": "X-One"}))
    assert some.check_headers(["x-one", "X-Two"]) == ["x-one"]  # partly is enough for Spring
    assert some.check_headers(["X-Two"]) is None
    assert CorsRule(parse_cors({"allowedHeaders": "*"})).check_headers(["X-A", "x-b"]) == [
        "X-A",
        "x-b",
    ]


# -- SCG's table ----------------------------------------------------------------------------------


def _config(origin: str) -> CorsConfiguration:
    return CorsConfiguration(allowed_origins=(origin,))


def test_routes_come_first_replace_in_place_and_take_a_global_pattern_away() -> None:
    policy = CorsPolicy.of(
        [("/r/**", _config("r1")), ("/shared/**", _config("s")), ("/r/**", _config("r2"))],
        [("/g/**", _config("g")), ("/shared/**", _config("global")), ("/**", _config("all"))],
    )
    assert policy is not None
    assert policy.patterns == ("/r/**", "/shared/**", "/g/**", "/**")

    def origin(path: str) -> str | None:
        rule = policy.lookup(path)
        return rule.config.allowed_origins[0] if rule is not None else None

    assert origin("/r/x") == "r2"
    assert origin("/shared") == "s"
    assert origin("/g/x") == "g"
    assert origin("/other") == "all"
    assert CorsPolicy.of([], []) is None


def test_patterns_match_without_an_optional_trailing_slash() -> None:
    policy = CorsPolicy([("/exact", _config("e"))])
    assert policy.lookup("/exact") is not None
    assert policy.lookup("/exact/") is None


# -- the processor --------------------------------------------------------------------------------

POLICY = CorsPolicy(
    [
        (
            "/g/**",
            parse_cors(
                {
                    "allowedOrigins": "https://a.example",
                    "allowedMethods": "GET,POST",
                    "allowedHeaders": "X-One",
                    "exposedHeaders": "X-Exp1, X-Exp2",
                    "allowCredentials": True,
                    "allowPrivateNetwork": True,
                    "maxAge": 100,
                }
            ),
        )
    ]
)


def _exchange(method: str, path: str, *headers: tuple[str, str], scheme: str = "http") -> Exchange:
    fields = Headers([(name.encode(), value.encode()) for name, value in headers])
    return Exchange(
        Request(method, path, "", fields), "127.0.0.1", 5000, "127.0.0.1", 8080, scheme=scheme
    )


def _fields(pairs: tuple[tuple[bytes, bytes], ...]) -> list[tuple[str, str]]:
    return [(name.decode(), value.decode()) for name, value in pairs]


def test_an_allowed_preflight_gets_spring_s_headers_in_spring_s_order() -> None:
    verdict = POLICY.check(
        _exchange(
            "OPTIONS",
            "/g/x",
            ("Origin", "https://a.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-one, X-Two"),
            ("Access-Control-Request-Private-Network", "true"),
        )
    )
    assert verdict is not None
    assert verdict.status == 200
    assert _fields(verdict.headers) == [
        ("Vary", "Origin"),
        ("Vary", "Access-Control-Request-Method"),
        ("Vary", "Access-Control-Request-Headers"),
        ("Access-Control-Allow-Origin", "https://a.example"),
        ("Access-Control-Allow-Methods", "GET,POST"),
        ("Access-Control-Allow-Headers", "x-one"),
        ("Access-Control-Expose-Headers", "X-Exp1, X-Exp2"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Private-Network", "true"),
        ("Access-Control-Max-Age", "100"),
    ]


def test_an_allowed_actual_request_is_forwarded_without_the_preflight_only_headers() -> None:
    verdict = POLICY.check(_exchange("GET", "/g/x", ("Origin", "https://a.example")))
    assert verdict is not None
    assert verdict.status is None
    assert _fields(verdict.headers)[3:] == [
        ("Access-Control-Allow-Origin", "https://a.example"),
        ("Access-Control-Expose-Headers", "X-Exp1, X-Exp2"),
        ("Access-Control-Allow-Credentials", "true"),
    ]


A = ("Origin", "https://a.example")


def _asks(method: str) -> tuple[str, str]:
    return ("Access-Control-Request-Method", method)


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (
            ("OPTIONS", "/g/x", ("Origin", "https://c.example"), _asks("GET")),
            "origin 'https://c.example' is not allowed",
        ),
        (("OPTIONS", "/g/x", A, _asks("PUT")), "method 'PUT' is not allowed"),
        (
            ("OPTIONS", "/g/x", A, _asks("GET"), ("Access-Control-Request-Headers", "X-Two")),
            "headers 'X-Two' are not allowed",
        ),
        (("PUT", "/g/x", A), "method 'PUT' is not allowed"),
        (("GET", "/g/x", ("Origin", "http://exa mple")), "malformed Origin"),
        (("GET", "/g/x", ("Origin", "http://a.example:xx")), "malformed Origin"),
    ],
)
def test_refusals_carry_vary_and_say_why(request_: tuple[str, ...], reason: str) -> None:
    method, path, *headers = request_
    verdict = POLICY.check(_exchange(method, path, *headers))  # type: ignore[arg-type]
    assert verdict is not None
    assert (verdict.status, verdict.headers) == (403, VARY)
    assert reason in verdict.reason


def test_requests_that_are_not_cors_get_vary_only() -> None:
    assert POLICY.check(_exchange("GET", "/g/x")).headers == VARY  # type: ignore[union-attr]
    same = POLICY.check(
        _exchange("PUT", "/g/x", ("Host", "a.example"), ("Origin", "http://a.example:80"))
    )
    assert same is not None
    assert (same.status, same.headers) == (None, VARY)
    # A same-origin preflight is still answered by the gateway.
    preflight = POLICY.check(
        _exchange(
            "OPTIONS",
            "/g/x",
            ("Host", "a.example:8443"),
            ("Origin", "https://a.example:8443"),
            ("Access-Control-Request-Method", "PUT"),
            scheme="https",
        )
    )
    assert preflight is not None
    assert (preflight.status, preflight.headers) == (200, VARY)


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("A.example", "http://a.example"),  # hosts compare case-sensitively, as in Spring
        ("a.example", "https://a.example:80"),
        ("a.example:8080", "http://a.example"),
    ],
)
def test_other_origins_are_cross_origin(host: str, origin: str) -> None:
    verdict = POLICY.check(_exchange("GET", "/g/x", ("Host", host), ("Origin", origin)))
    assert verdict is not None
    assert verdict.status == 403


def test_a_path_without_configuration_is_left_alone_but_its_preflight_is_answered() -> None:
    assert POLICY.check(_exchange("GET", "/other", ("Origin", "https://c.example"))) is None
    verdict = POLICY.check(
        _exchange(
            "OPTIONS",
            "/other",
            ("Origin", "https://c.example"),
            ("Access-Control-Request-Method", "GET"),
        )
    )
    assert verdict is not None
    assert (verdict.status, verdict.headers) == (200, ())
    # OPTIONS without Access-Control-Request-Method is no preflight: it is forwarded.
    assert POLICY.check(_exchange("OPTIONS", "/other", ("Origin", "https://c.example"))) is None


# -- the build and the dispatcher ----------------------------------------------------------------


def _routes(spring: SpringSettings, *definitions: RouteDefinition) -> list[Route]:
    config = GatewayConfig(routes=definitions, spring=spring)
    return build_routes(config, builtin_predicates(), builtin_filters())


def _route(route_id: str, path: str | None, order: int = 0, **cors: object) -> RouteDefinition:
    predicates = (PredicateDefinition("Path", {"patterns": [path]}),) if path else ()
    metadata = {"cors": cors} if cors else {}
    return RouteDefinition(
        route_id, "http://127.0.0.1:1", predicates, order=order, metadata=metadata
    )


def test_a_build_without_cors_leaves_the_routes_without_a_table() -> None:
    routes = _routes(SpringSettings(), _route("a", "/a/**"))
    assert routes[0].policy.cors is None


def test_every_route_of_a_build_shares_one_table_in_scg_s_order() -> None:
    spring = SpringSettings(
        cors=(("/g/**", _config("https://g")), ("/late/**", _config("https://global")))
    )
    routes = _routes(
        spring,
        _route("late", "/late/**", order=5, allowedOrigins="https://late"),
        _route("early", "/early/**", order=-1, allowedOrigins="https://early"),
        _route("host", None, order=9, allowedOrigins="https://host"),
        _route("plain", "/plain/**"),
    )
    tables = {id(route.policy.cors) for route in routes}
    assert len(tables) == 1
    policy = routes[0].policy.cors
    assert policy is not None
    # Route order (order, then as written), a route without Path under /**, then globals.
    assert policy.patterns == ("/early/**", "/late/**", "/**", "/g/**")


async def test_the_dispatcher_answers_refuses_and_decorates() -> None:
    seen: list[str] = []

    async def upstream(exchange: Exchange) -> Response:
        seen.append(exchange.request.method)
        return Response(200, Headers([(b"Vary", b"Accept-Encoding")]), b"ok")

    [route] = _routes(
        SpringSettings(), _route("r", "/r/**", allowedOrigins="https://r.example", maxAge=30)
    )
    dispatcher = Dispatcher(RouteTable([replace(route, handler=upstream)]))

    preflight = await dispatcher(
        _exchange(
            "OPTIONS",
            "/r/x",
            ("Origin", "https://r.example"),
            ("Access-Control-Request-Method", "GET"),
        )
    )
    assert (preflight.status, preflight.body) == (200, b"")
    assert preflight.headers.get("Access-Control-Max-Age") == "30"
    assert seen == []  # a preflight is never forwarded

    refused = await dispatcher(_exchange("GET", "/r/x", ("Origin", "https://evil.example")))
    assert refused.status == 403
    assert refused.headers.get_all("Vary") == [
        "Origin",
        "Access-Control-Request-Method",
        "Access-Control-Request-Headers",
    ]
    assert b"origin 'https://evil.example' is not allowed" in bytes(refused.body)  # type: ignore[arg-type]
    assert seen == []

    allowed = await dispatcher(_exchange("GET", "/r/x", ("Origin", "https://r.example")))
    assert (allowed.status, allowed.body) == (200, b"ok")
    assert list(allowed.headers)[:5] == [
        ("Vary", "Origin"),
        ("Vary", "Access-Control-Request-Method"),
        ("Vary", "Access-Control-Request-Headers"),
        ("Access-Control-Allow-Origin", "https://r.example"),
        ("Vary", "Accept-Encoding"),  # the upstream's own come after the gateway's
    ]
    assert seen == ["GET"]

    # An internal forward is not checked again.
    seen.clear()
    forwarded = _exchange("GET", "/r/x", ("Origin", "https://evil.example"))
    assert (await dispatcher.dispatch(forwarded)).status == 200
    assert seen == ["GET"]
