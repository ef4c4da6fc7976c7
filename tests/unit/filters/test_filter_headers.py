from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import GatewayError
from gateway.exchange import Exchange, Response
from gateway.extension import SyncFilter
from gateway.headers import Headers

BuildFilter = Callable[..., SyncFilter]
MakeExchange = Callable[..., Exchange]


def test_add_request_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("AddRequestHeader", "X-Request-red, blue")
    ex = exchange_for(headers=[("X-Request-red", "green")])
    assert flt.pre(ex) is None
    assert ex.request.headers.get_all("x-request-red") == ["green", "blue"]
    assert flt.describe() == "[AddRequestHeader X-Request-red = 'blue']"
    assert flt.has_pre
    assert not flt.has_post


def test_add_request_header_expands_uri_variables(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddRequestHeader", "X-Request-Red, Blue-{segment}")
    ex = exchange_for(uri_variables={"segment": "42"})
    flt.pre(ex)
    assert ex.request.headers.get("X-Request-Red") == "Blue-42"


def test_template_values_cannot_inject_header_lines(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddRequestHeader", "X-A, v-{segment}")
    ex = exchange_for(uri_variables={"segment": "a\r\nX-Evil: 1"})
    flt.pre(ex)
    assert ex.request.headers.get("X-A") == "v-a%0D%0AX-Evil: 1"


def test_missing_uri_variable_fails_the_request(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddRequestHeader", "X-A, {nope}")
    with pytest.raises(GatewayError, match="nope"):
        flt.pre(exchange_for())


def test_set_request_header_replaces_all(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("SetRequestHeader", "X-Request-Red, Blue")
    ex = exchange_for(headers=[("X-Request-Red", "1"), ("x-request-red", "2"), ("A", "b")])
    flt.pre(ex)
    assert list(ex.request.headers) == [("X-Request-Red", "Blue"), ("A", "b")]


def test_remove_request_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RemoveRequestHeader", "X-Request-Foo")
    ex = exchange_for(headers=[("x-request-foo", "1"), ("Keep", "2")])
    flt.pre(ex)
    assert list(ex.request.headers) == [("Keep", "2")]
    assert flt.describe() == "[RemoveRequestHeader name = 'X-Request-Foo']"


def test_map_request_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("MapRequestHeader", "Blue, X-Request-Red")
    ex = exchange_for(headers=[("Blue", "b1"), ("Blue", "b2"), ("X-Request-Red", "r")])
    flt.pre(ex)
    assert ex.request.headers.get_all("X-Request-Red") == ["r", "b1", "b2"]
    assert flt.describe() == "[MapRequestHeader fromHeader = 'Blue', toHeader = 'X-Request-Red']"


def test_map_request_header_without_source_does_nothing(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    ex = exchange_for(headers=[("A", "1")])
    build("MapRequestHeader", "Blue, X-Request-Red").pre(ex)
    assert list(ex.request.headers) == [("A", "1")]


def test_add_request_headers_if_not_present(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build(
        "AddRequestHeadersIfNotPresent",
        "X-Request-Color-1:blue,X-Request-Color-2:green,X-Request-Color-2:red",
    )
    ex = exchange_for(headers=[("X-Request-Color-1", "mine")])
    flt.pre(ex)
    assert ex.request.headers.get_all("X-Request-Color-1") == ["mine"]
    assert ex.request.headers.get_all("X-Request-Color-2") == ["green", "red"]
    assert flt.describe() == (
        "[AddRequestHeadersIfNotPresent X-Request-Color-1 = 'blue', X-Request-Color-2 = 'green',"
        " X-Request-Color-2 = 'red']"
    )


def test_add_request_headers_if_not_present_blank_counts_as_absent(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddRequestHeadersIfNotPresent", "X-Request-Red:Blue-{segment}")
    ex = exchange_for(headers=[("X-Request-Red", " ")], uri_variables={"segment": "7"})
    flt.pre(ex)
    assert ex.request.headers.get_all("X-Request-Red") == [" ", "Blue-7"]


def test_add_request_headers_if_not_present_expanded_form(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddRequestHeadersIfNotPresent", args={"keyValues.0": "A:1", "keyValues.1": "B:2"})
    ex = exchange_for()
    flt.pre(ex)
    assert list(ex.request.headers) == [("A", "1"), ("B", "2")]


def test_add_response_header_and_override(build: BuildFilter, exchange_for: MakeExchange) -> None:
    red = build("AddResponseHeader", "X-Response-Red, Blue")
    black = build("AddResponseHeader", "X-Response-Black, White, false")
    response = Response(200, Headers([(b"X-Response-Black", b"Grey")]))
    ex = exchange_for()
    red.post(ex, response)
    black.post(ex, response)
    assert response.headers.get_all("X-Response-Red") == ["Blue"]
    assert response.headers.get_all("X-Response-Black") == ["Grey"]
    assert red.describe() == (
        "[AddResponseHeader name = 'X-Response-Red', value = 'Blue', override = true]"
    )
    assert not red.has_pre
    assert red.has_post


def test_add_response_header_uses_host_variable(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddResponseHeader", "foo, bar-{segment}")
    response = Response(200)
    flt.post(exchange_for(uri_variables={"segment": "www"}), response)
    assert response.headers.get("foo") == "bar-www"


def test_set_and_remove_response_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    response = Response(200, Headers([(b"X-Response-Red", b"1"), (b"X-Response-Foo", b"2")]))
    ex = exchange_for()
    build("SetResponseHeader", "X-Response-Red, Blue").post(ex, response)
    build("RemoveResponseHeader", "X-Response-Foo").post(ex, response)
    assert list(response.headers) == [("X-Response-Red", "Blue")]


def test_rewrite_response_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RewriteResponseHeader", "X-Response-Red, password=[^&]+, password=***")
    response = Response(
        200,
        Headers(
            [
                (b"X-Response-Red", b"/42?user=ford&password=omg!what&flag=true"),
                (b"Other", b"password=x"),
            ]
        ),
    )
    flt.post(exchange_for(), response)
    assert list(response.headers) == [
        ("X-Response-Red", "/42?user=ford&password=***&flag=true"),
        ("Other", "password=x"),
    ]


def test_rewrite_response_header_group_reference(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("RewriteResponseHeader", "Location, http://(?<h>[^/]+)/, https://$\\{h}/")
    response = Response(302, Headers([(b"Location", b"http://a.example/x")]))
    flt.post(exchange_for(), response)
    assert response.headers.get("Location") == "https://a.example/x"


def test_dedupe_strategies(build: BuildFilter, exchange_for: MakeExchange) -> None:
    def run(text: str) -> list[str]:
        response = Response(
            200,
            Headers(
                [
                    (b"Access-Control-Allow-Credentials", b"true"),
                    (b"Access-Control-Allow-Origin", b"https://musk.mars"),
                    (b"Access-Control-Allow-Credentials", b"false"),
                    (b"Access-Control-Allow-Credentials", b"true"),
                ]
            ),
        )
        build("DedupeResponseHeader", text).post(exchange_for(), response)
        return response.headers.get_all("Access-Control-Allow-Credentials")

    assert run("Access-Control-Allow-Credentials") == ["true"]
    assert run("Access-Control-Allow-Credentials, RETAIN_LAST") == ["true"]
    assert run("Access-Control-Allow-Origin Access-Control-Allow-Credentials, RETAIN_UNIQUE") == [
        "true",
        "false",
    ]
    assert build("DedupeResponseHeader", "A B").describe() == (
        "[DedupeResponseHeader A B = RETAIN_FIRST]"
    )


def test_dedupe_retain_last(build: BuildFilter, exchange_for: MakeExchange) -> None:
    response = Response(200, Headers([(b"X", b"1"), (b"X", b"2")]))
    build("DedupeResponseHeader", "X, RETAIN_LAST").post(exchange_for(), response)
    assert response.headers.get_all("X") == ["2"]
