from __future__ import annotations

import json
from collections.abc import Callable

from gateway.exchange import Exchange, Response
from gateway.extension import SyncFilter
from gateway.filters.catalog import builtin_filters
from gateway.filters.secure_headers import HEADERS
from gateway.filters.size import readable_byte_count
from gateway.filters.template import compile_template
from gateway.headers import Headers

BuildFilter = Callable[..., SyncFilter]
MakeExchange = Callable[..., Exchange]


def test_add_request_parameter(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("AddRequestParameter", "red, blue")
    for before, after in [("", "red=blue"), ("a=%20", "a=%20&red=blue"), ("a=1&", "a=1&red=blue")]:
        ex = exchange_for(query=before)
        flt.pre(ex)
        assert ex.request.query == after


def test_add_request_parameter_expands_and_encodes(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("AddRequestParameter", "foo, bar-{segment}")
    ex = exchange_for(uri_variables={"segment": "a b&c"})
    flt.pre(ex)
    assert ex.request.query == "foo=bar-a%20b%26c"


def test_remove_request_parameter(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RemoveRequestParameter", "red")
    ex = exchange_for(query="red=1&x=a%2Fb&r%65d=2&redder=3")
    flt.pre(ex)
    assert ex.request.query == "x=a%2Fb&redder=3"
    assert flt.describe() == "[RemoveRequestParameter name = 'red']"


def test_set_status_by_name_and_number(build: BuildFilter, exchange_for: MakeExchange) -> None:
    for text in ("UNAUTHORIZED", "401", "unauthorized"):
        response = Response(200, reason="OK")
        build("SetStatus", text).post(exchange_for(), response)
        assert (response.status, response.reason) == (401, None)
    assert build("SetStatus", "UNAUTHORIZED").describe() == "[SetStatus status = 'UNAUTHORIZED']"


def test_redirect_to(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RedirectTo", "302, https://acme.org")
    response = flt.pre(exchange_for(query="skip=10"))
    assert response is not None
    assert response.status == 302
    assert response.headers.get("Location") == "https://acme.org"
    assert response.body == b""
    assert flt.describe() == "[RedirectTo 302 = https://acme.org, includeRequestParams = false]"


def test_redirect_to_with_request_params(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RedirectTo", "302, https://acme.org, true")
    response = flt.pre(exchange_for(query="skip=10"))
    assert response is not None
    assert response.headers.get("Location") == "https://acme.org?skip=10"
    flt = build("RedirectTo", "MOVED_PERMANENTLY, https://acme.org/?a=1#top, true")
    response = flt.pre(exchange_for(query="skip=10"))
    assert response is not None
    assert response.status == 301
    assert response.headers.get("Location") == "https://acme.org/?a=1&skip=10#top"


def test_request_size_rejects_large_body(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RequestSize", args={"maxSize": 5000000})
    assert flt.pre(exchange_for(headers=[("Content-Length", "5000000")])) is None
    ex = exchange_for("/upload", method="POST", headers=[("Content-Length", "6000000")])
    response = flt.pre(ex)
    assert response is not None
    assert response.status == 413
    message = (
        "Request size is larger than permissible limit. Request size is 6.0 MB where "
        "permissible limit is 5.0 MB"
    )
    assert response.headers.get("errorMessage") == message
    assert response.headers.get("Content-Type") == "application/json"
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {
        "timestamp": "2023-11-14T22:13:20.250+00:00",
        "path": "/upload",
        "status": 413,
        "error": "Payload Too Large",
        "message": message,
        "requestId": "req-1",
    }
    assert flt.describe() == "[RequestSize max = 5000000B]"


def test_request_size_units(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RequestSize", "1KB")
    assert flt.pre(exchange_for(headers=[("Content-Length", "1024")])) is None
    assert flt.pre(exchange_for(headers=[("Content-Length", "1025")])) is not None
    assert readable_byte_count(999) == "999 B"
    assert readable_byte_count(1500) == "1.5 kB"


def test_request_header_size(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("RequestHeaderSize", "20B")
    assert flt.pre(exchange_for(headers=[("A", "x" * 19), ("B", "y" * 19)])) is None
    ex = exchange_for(headers=[("X-Big", "a" * 10), ("x-big", "b" * 10), ("Ok", "1")])
    response = flt.pre(ex)
    assert response is not None
    assert response.status == 431
    message = (
        "Request Header/s size is larger than permissible limit (20B). "
        "Request Header/s size for 'X-Big' is 25B."
    )
    assert response.headers.get("errorMessage") == message
    assert isinstance(response.body, bytes)
    body = json.loads(response.body)
    assert (body["status"], body["error"], body["message"]) == (
        431,
        "Request Header Fields Too Large",
        message,
    )
    assert build("RequestHeaderSize").describe() == "[RequestHeaderSize maxSize = 16000B]"


def test_request_header_size_custom_error_header(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build("RequestHeaderSize", args={"maxSize": "5B", "errorHeaderName": "X-Why"})
    response = flt.pre(exchange_for(headers=[("Long", "abcdef")]))
    assert response is not None
    assert "X-Why" in response.headers
    assert "errorMessage" not in response.headers


def test_preserve_host_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("PreserveHostHeader")
    ex = exchange_for()
    flt.pre(ex)
    assert ex.preserve_host is True
    assert flt.describe() == "[PreserveHostHeader]"


def test_set_request_host_header(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("SetRequestHostHeader", args={"host": "example.org"})
    ex = exchange_for(headers=[("Host", "gw.local"), ("host", "dup")])
    flt.pre(ex)
    assert ex.request.headers.get_all("Host") == ["example.org"]
    assert ex.preserve_host is True


def test_secure_headers_defaults(build: BuildFilter, exchange_for: MakeExchange) -> None:
    flt = build("SecureHeaders")
    response = Response(200, Headers([(b"X-Frame-Options", b"SAMEORIGIN")]))
    flt.post(exchange_for(), response)
    assert response.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers.get("X-Xss-Protection") == "1 ; mode=block"
    assert response.headers.get("Strict-Transport-Security") == "max-age=631138519"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "no-referrer"
    assert response.headers.get("X-Download-Options") == "noopen"
    assert response.headers.get("X-Permitted-Cross-Domain-Policies") == "none"
    assert (response.headers.get("Content-Security-Policy") or "").startswith("default-src 'self'")
    assert "Permissions-Policy" not in response.headers
    assert len(response.headers) == len(HEADERS) - 1


def test_secure_headers_disable_enable_and_override(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    flt = build(
        "SecureHeaders",
        args={
            "disable": "x-frame-options,strict-transport-security",
            "enable": "permissions-policy",
            "permissions-policy": 'geolocation=("https://anotherexample.org")',
            "referrerPolicy": "same-origin",
        },
    )
    response = Response(200)
    flt.post(exchange_for(), response)
    assert "X-Frame-Options" not in response.headers
    assert "Strict-Transport-Security" not in response.headers
    assert (
        response.headers.get("Permissions-Policy") == 'geolocation=("https://anotherexample.org")'
    )
    assert response.headers.get("Referrer-Policy") == "same-origin"


def _location(flt: SyncFilter, ex: Exchange, location: str, header: str = "Location") -> str | None:
    assert flt.pre(ex) is None
    response = Response(201, Headers([(header.encode(), location.encode())]))
    flt.post(ex, response)
    return response.headers.get(header)


def test_rewrite_location_examples(build: BuildFilter, exchange_for: MakeExchange) -> None:
    host = [("Host", "api.example.com:443")]
    default = build("RewriteLocationResponseHeader", "AS_IN_REQUEST, Location, ,")
    ex = exchange_for("/some/object/name", method="POST", headers=host)
    loc = "https://object-service.prod.example.net/v2/some/object/id"
    assert _location(default, ex, loc) == "https://api.example.com:443/some/object/id"
    ex = exchange_for("/v2/some/object/name", method="POST", headers=host)
    assert _location(default, ex, loc) == "https://api.example.com:443/v2/some/object/id"

    always = build(
        "RewriteLocationResponseHeader",
        args={
            "stripVersion": "ALWAYS_STRIP",
            "locationHeaderName": "Link",
            "hostValue": "example-api.com",
        },
    )
    ex = exchange_for("/v1/some/object/name", headers=host)
    link = "https://object-service.prod.example.net/v1/some/object/id"
    assert _location(always, ex, link, "Link") == "https://example-api.com/some/object/id"

    never = build(
        "RewriteLocationResponseHeader",
        args={"stripVersion": "NEVER_STRIP", "protocols": "https|ftps"},
    )
    ex = exchange_for("/some/object/name", headers=host)
    v1 = "object-service.prod.example.net/v1/some/object/id"
    assert _location(never, ex, "https://" + v1) == "https://api.example.com:443/v1/some/object/id"
    ex = exchange_for("/some/other/object/name", headers=host)
    assert _location(never, ex, "http://" + v1) == "http://" + v1
    assert default.describe() == (
        "[RewriteLocationResponseHeader stripVersion = AS_IN_REQUEST, locationHeaderName = "
        "'Location', hostValue = [null], protocols = 'https?|ftps?']"
    )


def test_template_parsing() -> None:
    template = compile_template("/a/{x}/{id:[0-9]{3}}")
    assert template.names == ("x", "id")
    assert template.expand({"x": "1", "id": "123"}) == "/a/1/123"
    assert compile_template("plain").is_constant


def test_catalog_is_complete_and_fresh() -> None:
    expected = {
        "AddRequestHeader", "AddRequestHeadersIfNotPresent", "AddRequestParameter",
        "AddResponseHeader", "DedupeResponseHeader", "MapRequestHeader", "PrefixPath",
        "PreserveHostHeader", "RedirectTo", "RemoveRequestHeader", "RemoveRequestParameter",
        "RemoveResponseHeader", "RequestHeaderSize", "RequestHeaderToRequestUri", "RequestSize",
        "RewriteLocationResponseHeader", "RewritePath", "RewriteRequestParameter",
        "RewriteResponseHeader", "SecureHeaders",
        "SetPath", "SetRequestHeader", "SetRequestHostHeader", "SetRequestUri",
        "SetResponseHeader", "SetStatus",
        "StripPrefix", "Retry", "CircuitBreaker", "FallbackHeaders",
        "LocalResponseCache", "CacheRequestBody", "RemoveJsonAttributesResponseBody",
        "Lane", "LaneSplit", "LaneStrict", "RequestRateLimiter", "Mirror",
        "ApiKey", "BasicAuth", "IpFilter", "JwtAuth",
    }  # fmt: skip
    first = builtin_filters()
    assert set(first) == expected
    first.clear()
    assert set(builtin_filters()) == expected
    assert builtin_filters()["DedupeResponseHeader"].shortcut_fields == ("name", "strategy")
    assert builtin_filters()["RewritePath"].shortcut_fields == ("regexp", "replacement")
