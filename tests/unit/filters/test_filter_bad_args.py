"""Every filter refuses a bad value at build time with an error naming the argument."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.extension import SyncFilter

BuildFilter = Callable[..., SyncFilter]

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("AddRequestHeader", {"name": "Bad Name", "value": "v"}, "name"),
    ("AddRequestHeader", {"name": "X-A", "value": "{unclosed"}, "value"),
    ("AddRequestHeadersIfNotPresent", {"keyValues": ["no-colon"]}, "keyValues"),
    ("AddRequestHeadersIfNotPresent", {"keyValues": ["a:b:c"]}, "keyValues"),
    ("AddRequestParameter", {"name": "", "value": "v"}, "name"),
    ("AddRequestParameter", {"name": "a", "value": ""}, "value"),
    ("AddResponseHeader", {"name": "X-A", "value": "v", "override": "maybe"}, "override"),
    ("DedupeResponseHeader", {"name": "X-A", "strategy": "RETAIN_SOME"}, "strategy"),
    ("DedupeResponseHeader", {"name": "  "}, "name"),
    ("MapRequestHeader", {"fromHeader": "A", "toHeader": "B:C"}, "toHeader"),
    ("PrefixPath", {"prefix": "mypath"}, "prefix"),
    ("RedirectTo", {"status": "200", "url": "https://acme.org"}, "status"),
    ("RedirectTo", {"status": "302", "url": "https://acme .org"}, "url"),
    (
        "RedirectTo",
        {"status": "FOUND", "url": "/x", "includeRequestParams": "y2"},
        "includeRequestParams",
    ),
    ("RemoveRequestHeader", {"name": ""}, "name"),
    ("RemoveRequestParameter", {"name": ""}, "name"),
    ("RewriteRequestParameter", {"name": "", "replacement": "x"}, "name"),
    ("RemoveResponseHeader", {"name": "a b"}, "name"),
    ("RequestHeaderToRequestUri", {"name": "X A"}, "name"),
    ("RequestHeaderSize", {"maxSize": "lots"}, "maxSize"),
    ("RequestHeaderSize", {"maxSize": "0"}, "maxSize"),
    ("RequestSize", {"maxSize": "5 parsecs"}, "maxSize"),
    ("RewriteLocationResponseHeader", {"stripVersion": "SOMETIMES"}, "stripVersion"),
    ("RewriteLocationResponseHeader", {"protocols": "(https"}, "protocols"),
    ("RewritePath", {"regexp": "(?<seg>", "replacement": "/"}, "regexp"),
    ("RewritePath", {"regexp": "/red/(?<seg>.*)", "replacement": "/${nope}"}, "replacement"),
    ("RewriteResponseHeader", {"name": "X", "regexp": "[", "replacement": ""}, "regexp"),
    ("RewriteResponseHeader", {"name": "X", "regexp": "a", "replacement": "$1"}, "replacement"),
    ("SecureHeaders", {"disable": "x-frame-option"}, "disable"),
    ("SecureHeaders", {"frame-options": "DENY\r\nX: y"}, "frame-options"),
    ("SetPath", {"template": "{segment}"}, "template"),
    ("SetRequestHeader", {"name": "X-A", "value": "a\nb"}, "value"),
    ("SetRequestHostHeader", {"host": "a b"}, "host"),
    ("SetRequestUri", {"template": "/not/absolute"}, "template"),
    ("SetResponseHeader", {"name": "", "value": "v"}, "name"),
    ("SetStatus", {"status": "NOT_A_STATUS"}, "status"),
    ("SetStatus", {"status": "1000"}, "status"),
    ("Retry", {"retries": "0"}, "retries"),
    ("Retry", {"statuses": "NOPE"}, "statuses"),
    ("Retry", {"series": "SOMETIMES"}, "series"),
    ("Retry", {"methods": "FETCH"}, "methods"),
    ("Retry", {"exceptions": "java.lang.OutOfMemoryError"}, "exceptions"),
    ("Retry", {"backoff": {"firstBackoff": "10ms", "factor": "0.5"}}, "backoff"),
    ("Retry", {"backoff": {"firstBackoff": "soon"}}, "backoff"),
    ("Retry", {"jitter": {"randomFactor": "0.5"}}, "jitter"),
    ("CircuitBreaker", {"name": "cb", "fallbackUri": "http://elsewhere"}, "fallbackUri"),
    ("CircuitBreaker", {"name": "cb", "statusCodes": ["TEAPOTS"]}, "statusCodes"),
    ("CircuitBreaker", {"name": "cb", "resumeWithoutError": "maybe"}, "resumeWithoutError"),
    (
        "FallbackHeaders",
        {"executionExceptionTypeHeaderName": ["a", "b"]},
        "executionExceptionTypeHeaderName",
    ),
    ("LocalResponseCache", {"timeToLive": "soon"}, "timeToLive"),
    ("LocalResponseCache", {"timeToLive": "0s"}, "timeToLive"),
    ("LocalResponseCache", {"size": "500 parsecs"}, "size"),
    ("LocalResponseCache", {"size": "0"}, "size"),
    ("CacheRequestBody", {"bodyClass": "java.util.Map"}, "bodyClass"),
    ("RemoveJsonAttributesResponseBody", {"fieldList": []}, "fieldList"),
    (
        "RemoveJsonAttributesResponseBody",
        {"fieldList": ["id"], "deleteRecursively": "maybe"},
        "deleteRecursively",
    ),
    ("StripPrefix", {"parts": "two"}, "parts"),
    ("StripPrefix", {"parts": "-1"}, "parts"),
    ("Lane", {"lane": "can ary"}, "lane"),
    ("LaneSplit", {"lane": "canary", "percent": "101"}, "percent"),
    ("LaneSplit", {"lane": "canary", "percent": "20", "key": "query:u"}, "key"),
    ("Mirror", {"uri": "http://s", "percent": "101"}, "percent"),
    ("Mirror", {"uri": "http://s/path"}, "uri"),
    (
        "RequestRateLimiter",
        {"redis-rate-limiter.replenishRate": "0"},
        "redis-rate-limiter.replenishRate",
    ),
    ("ApiKey", {"keys-file": "/nonexistent/api-keys.txt"}, "keys-file"),
    ("ApiKey", {"consul-key": "k", "header": "X Key"}, "header"),
    ("BasicAuth", {"htpasswd-file": "/nonexistent/htpasswd"}, "htpasswd-file"),
    ("JwtAuth", {"jwks-uri": "https://idp/jwks", "algorithms": "none"}, "algorithms"),
    ("JwtAuth", {"jwks-uri": "https://idp/jwks", "leeway": "1h"}, "leeway"),
    ("IpFilter", {"action": "maybe", "sources": ["10.0.0.0/8"]}, "action"),
    ("IpFilter", {"action": "allow", "sources": ["10.0.0.300"]}, "sources"),
]


@pytest.mark.parametrize(("name", "args", "argument"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_bad_value_names_the_argument(
    build: BuildFilter, name: str, args: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ConfigError, match=f"argument '{argument}'"):
        build(name, args=args)


@pytest.mark.parametrize(
    "name",
    ["PreserveHostHeader", "SecureHeaders", "StripPrefix", "RequestSize", "SetStatus"],
)
def test_unknown_argument_is_rejected(build: BuildFilter, name: str) -> None:
    args = {"status": "200"} if name == "SetStatus" else {}
    with pytest.raises(ConfigError, match="unknown argument"):
        build(name, args={**args, "bogus": "1"})


def test_every_filter_is_covered_by_a_bad_value_case() -> None:
    from gateway.filters.catalog import builtin_filters

    covered = {case[0] for case in CASES} | {"PreserveHostHeader", "LaneStrict"}
    assert covered == set(builtin_filters())
