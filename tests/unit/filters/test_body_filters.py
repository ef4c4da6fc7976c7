"""CacheRequestBody and RemoveJsonAttributesResponseBody on their own (fake upstream handlers),
the JSON writer against what SCG 5.0.4's Jackson wrote for the same input, and where SCG's
order puts these filters in a route."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import Any

import pytest

from gateway.config.args import Args, normalize_expanded, normalize_shortcut, split_shortcut
from gateway.config.errors import ConfigErrors
from gateway.config.schema import (
    FilterDefinition,
    FilterSettings,
    GatewayConfig,
    LocalResponseCacheSettings,
    PredicateDefinition,
    RouteDefinition,
    SpringSettings,
)
from gateway.engine.body import StreamBody
from gateway.errors import ConfigError, GatewayError, PayloadTooLarge
from gateway.exchange import BodySource, Exchange, Handler, Request, Response
from gateway.extension import BuildContext, GatewayFilter, WrappingFilter
from gateway.filters.buffered_body import BufferedBody
from gateway.filters.catalog import builtin_filters
from gateway.filters.json_body import java_double, json_compatible, to_json
from gateway.filters.request_body import CACHED_REQUEST_BODY
from gateway.filters.response_cache import GlobalResponseCache, LocalResponseCache
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from tests.unit.engine.fakes import Sink


def build(name: str, shortcut: str | None = None, args: Mapping[str, Any] | None = None) -> Any:
    factory = builtin_filters()[name]
    values = (
        normalize_expanded(args)
        if args is not None
        else normalize_shortcut(
            split_shortcut(shortcut or ""), factory.shortcut_fields, factory.shortcut_type
        )
    )
    built: GatewayFilter = factory.build(Args(values), BuildContext())
    assert isinstance(built, WrappingFilter)
    return built


def exchange(
    body: BodySource | None = None, headers: tuple[tuple[str, str], ...] = (), method: str = "POST"
) -> Exchange:
    head = Headers()
    for name, value in headers:
        head.add(name, value)
    return Exchange(
        request=Request(method=method, path="/x", query="", headers=head),
        client_host="127.0.0.1",
        client_port=50000,
        server_host="127.0.0.1",
        server_port=8080,
        body=body,
    )


def client_body(chunks: list[bytes], length: int | None, *, end: bool = True) -> StreamBody:
    body = StreamBody(length, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)
    for chunk in chunks:
        body.feed(chunk)
    if end:
        body.feed_end()
    return body


def _nothing() -> None:
    return None


class Recorder:
    """The upstream side: what body and attribute the request arrived with."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.lengths: list[int | None] = []
        self.attributes: list[Any] = []

    async def __call__(self, ex: Exchange) -> Response:
        sink = Sink()
        if ex.body is not None:
            ex.body.start(sink)
            self.lengths.append(ex.body.length)
        self.bodies.append(b"".join(sink.data))
        self.attributes.append(ex.attributes.get(CACHED_REQUEST_BODY))
        return Response(200)


# -- CacheRequestBody -----------------------------------------------------------------------------
async def test_cache_request_body_keeps_text_and_sends_the_body_on() -> None:
    upstream = Recorder()
    handler = build("CacheRequestBody", args={"bodyClass": "java.lang.String"}).wrap(upstream)
    body = client_body(["hé".encode("latin-1"), b"llo"], None)
    await handler(exchange(body, (("Content-Type", "text/plain; charset=ISO-8859-1"),)))
    assert upstream.bodies == ["héllo".encode("latin-1")]
    assert upstream.attributes == ["héllo"]
    assert upstream.lengths == [None]  # a chunked body stays chunked, as SCG sends it


async def test_cache_request_body_as_bytes_and_the_body_can_be_sent_again() -> None:
    upstream = Recorder()
    flt = build("CacheRequestBody", args={"bodyClass": "byte[]"})
    ex = exchange(client_body([b"\xff\x00"], 2))
    await flt.wrap(upstream)(ex)
    assert upstream.attributes == [b"\xff\x00"] and upstream.lengths == [2]
    assert isinstance(ex.body, BufferedBody) and ex.body.replayable
    again = Sink()
    ex.body.replay().start(again)
    assert again.data == [b"\xff\x00"] and again.ended
    assert flt.describe() == "[CacheRequestBody Body class = byte[]]"


async def test_no_body_or_an_empty_one_sets_no_attribute() -> None:
    upstream = Recorder()
    handler = build("CacheRequestBody", args={"bodyClass": "java.lang.String"}).wrap(upstream)
    await handler(exchange(None, method="GET"))
    await handler(exchange(client_body([], 0)))
    assert upstream.attributes == [None, None]


async def test_an_attribute_already_set_is_kept_and_the_body_not_read() -> None:
    upstream = Recorder()
    handler = build("CacheRequestBody", args={"bodyClass": "java.lang.String"}).wrap(upstream)
    ex = exchange(client_body([b"streamed"], 8))
    ex.attributes[CACHED_REQUEST_BODY] = "set earlier"
    await handler(ex)
    assert upstream.attributes == ["set earlier"] and upstream.bodies == [b"streamed"]


async def test_a_body_over_the_limit_is_413_declared_or_not() -> None:
    upstream = Recorder()
    flt = build("CacheRequestBody", args={"bodyClass": "java.lang.String"})
    limit = flt._limit
    handler = flt.wrap(upstream)
    with pytest.raises(PayloadTooLarge):
        await handler(exchange(client_body([], limit + 1, end=False)))
    with pytest.raises(PayloadTooLarge):
        await handler(exchange(client_body([b"x" * limit, b"y"], None, end=False)))
    await handler(exchange(client_body([b"x" * limit], None)))
    assert upstream.bodies == [b"x" * limit]


def test_cache_request_body_refuses_other_classes_and_the_shortcut() -> None:
    with pytest.raises(ConfigError, match=r"'java\.util\.Map' is not supported"):
        build("CacheRequestBody", args={"bodyClass": "java.util.Map"})
    with pytest.raises(ConfigError, match="missing required argument 'bodyClass'"):
        build("CacheRequestBody", args={})
    with pytest.raises(ConfigError, match="at most 0 argument"):
        build("CacheRequestBody", "java.lang.String")
    for written in ("[B", "org.springframework.core.io.buffer.DataBuffer"):
        build("CacheRequestBody", args={"bodyClass": written})


# -- RemoveJsonAttributesResponseBody ---------------------------------------------------------
def answering(
    body: bytes | BodySource, content_type: str | None, *more: tuple[str, str]
) -> Handler:
    async def upstream(ex: Exchange) -> Response:
        headers = Headers()
        if content_type is not None:
            headers.add("Content-Type", content_type)
        for name, value in more:
            headers.add(name, value)
        if isinstance(body, bytes):
            headers.add("Content-Length", str(len(body)))
        return Response(200, headers, body)

    return upstream


async def removed(
    shortcut: str, body: bytes, content_type: str | None = "application/json", method: str = "GET"
) -> bytes:
    handler = build("RemoveJsonAttributesResponseBody", shortcut).wrap(
        answering(body, content_type)
    )
    response = await handler(exchange(method=method))
    assert isinstance(response.body, bytes)
    return response.body


DOC = b'{"id":1,"color":"red","name":"x","nested":{"id":2,"color":"b","k":3},"arr":[{"id":5,"v":1},[{"color":1}]]}'  # noqa: E501


async def test_root_and_recursive_removal_as_scg() -> None:
    assert await removed("id,color", DOC) == (
        b'{"name":"x","nested":{"id":2,"color":"b","k":3},"arr":[{"id":5,"v":1},[{"color":1}]]}'
    )
    assert await removed("id,color,true", DOC) == (
        b'{"name":"x","nested":{"k":3},"arr":[{"v":1},[{}]]}'
    )
    assert await removed("id", b'[{"id":1,"name":"x"}]') == b'[{"id":1,"name":"x"}]'
    assert await removed("id,true", b'[{"id":1,"name":"x"}]') == b'[{"name":"x"}]'
    assert await removed("id", b'{"id":1,"id":2,"name":"x","name":"y"}') == b'{"name":"y"}'
    assert await removed("id", b'  {"id":1}  ') == b"{}"
    assert await removed("id", b"null") == b"null"
    assert await removed("id", b"") == b""


@pytest.mark.parametrize(
    ("content_type", "touched"),
    [
        ("application/json", True),
        ("application/json;charset=UTF-8", True),
        ("APPLICATION/JSON", True),
        ("application/*", True),
        ("*/*", True),
        ("application/*+json", True),
        ("application/problem+json", False),
        ("application/vnd.api+json", False),
        ("application/jsonx", False),
        ("text/plain", False),
        (None, False),
    ],
)
async def test_only_json_compatible_content_types_are_touched(
    content_type: str | None, touched: bool
) -> None:
    assert json_compatible(content_type) is touched
    expected = b"{}" if touched else b'{"id":1}'
    assert await removed("id", b'{"id":1}', content_type) == expected


async def test_a_content_type_that_is_no_media_type_fails_as_in_scg() -> None:
    with pytest.raises(GatewayError, match="Invalid mime type"):
        await removed("id", b'{"id":1}', "application")
    # the unread upstream body is let go (its connection and bulkhead slot with it)
    source = client_body([b"{}"], 2, end=False)
    done: list[bool] = []
    source.when_done(lambda: done.append(True))
    handler = build("RemoveJsonAttributesResponseBody", "id").wrap(answering(source, "json"))
    with pytest.raises(GatewayError):
        await handler(exchange(method="GET"))
    assert done == [True]


@pytest.mark.parametrize(
    "body", [b'{"id":1, bad', b'{"id":1} trailing', b'{"a":1}{"b":2}', b"   ", b'{"x":NaN}']
)
async def test_malformed_json_is_a_500(body: bytes) -> None:
    with pytest.raises(GatewayError, match="Failed to process JSON") as caught:
        await removed("id", body)
    assert caught.value.status == 500


async def test_a_streamed_chunked_json_body_is_rewritten_whole() -> None:
    source = client_body([b'{"id":1,', b'"name":"x"}'], None)
    flt = build("RemoveJsonAttributesResponseBody", "id")
    response = await flt.wrap(answering(source, "application/json"))(exchange(method="GET"))
    # bytes now: the engine sends them with a Content-Length, as SCG does
    assert response.body == b'{"name":"x"}'


async def test_content_length_is_the_new_length() -> None:
    handler = build("RemoveJsonAttributesResponseBody", "id").wrap(
        answering(b'{"id":1,"name":"x"}', "application/json")
    )
    response = await handler(exchange(method="GET"))
    assert response.headers.get("Content-Length") == "12"


async def test_gzip_is_decoded_and_encoded_again() -> None:
    packed = gzip.compress(b'{"id":1,"name":"x"}')
    handler = build("RemoveJsonAttributesResponseBody", "id").wrap(
        answering(packed, "application/json", ("Content-Encoding", "gzip"))
    )
    response = await handler(exchange(method="GET"))
    # byte for byte what SCG 5.0.4 (Java's GZIPOutputStream) sent for the same response
    assert response.body == (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xabV\xcaK\xccMU\xb2R\xaaP\xaa\x05\x00"
        b"i\xb3\x81\x9e\x0c\x00\x00\x00"
    )
    assert response.headers.get("Content-Length") == str(len(response.body))


async def test_non_json_and_head_pass_through_untouched_and_streamed() -> None:
    source = client_body([b"x" * 10], 10, end=False)
    handler = build("RemoveJsonAttributesResponseBody", "id").wrap(answering(source, "image/png"))
    response = await handler(exchange(method="GET"))
    assert response.body is source  # not read, not buffered
    assert await removed("id", b'{"id":1}', method="HEAD") == b'{"id":1}'


async def test_a_json_body_over_the_limit_is_a_500() -> None:
    flt = build("RemoveJsonAttributesResponseBody", "id")
    source = client_body([b" " * (flt._limit + 1)], None, end=False)
    with pytest.raises(GatewayError, match="Exceeded limit on max bytes to buffer"):
        await flt.wrap(answering(source, "application/json"))(exchange(method="GET"))


def test_json_written_as_jackson_writes_it() -> None:
    text = (
        '{ "name" : "x",  "v": 1.50, "e": 1e3, "big": 123456789012345678901234567890, '
        '"u": "h\\u00e9 / \\/ <>&", "t": true, "n": null, '
        '"c": "a\\u0001b\\tc\\nd\\u001fe\\u007ff\\"g\\\\h\\bi\\fj\\rk", "x": "\\u2028\\u00a0", '
        '"inf": 1e400, "neg": -1e400}'
    )
    assert to_json(json.loads(text)) == (
        '{"name":"x","v":1.5,"e":1000.0,"big":123456789012345678901234567890,'
        '"u":"hé / / <>&","t":true,"n":null,'
        '"c":"a\\u0001b\\tc\\nd\\u001Fe\x7ff\\"g\\\\h\\bi\\fj\\rk","x":"\u2028\u00a0",'
        '"inf":"Infinity","neg":"-Infinity"}'
    )


@pytest.mark.parametrize(
    ("value", "java"),
    [
        (1.0, "1.0"),
        (2.5, "2.5"),
        (-0.0, "-0.0"),
        (100.0, "100.0"),
        (0.1, "0.1"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1e-7, "1.0E-7"),
        (1234567.0, "1234567.0"),
        (9999999.0, "9999999.0"),
        (10000000.0, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (1e20, "1.0E20"),
        (5e-324, "4.9E-324"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (123456789012345.678, "1.2345678901234567E14"),
        (-12.5, "-12.5"),
    ],
)
def test_doubles_as_java_prints_them(value: float, java: str) -> None:
    assert java_double(value) == java


def test_remove_json_arguments() -> None:
    flt = build("RemoveJsonAttributesResponseBody", "id,true,false")  # SCG: the last flag only
    assert (flt._fields, flt._recursive) == (("id", "true"), False)
    flt = build("RemoveJsonAttributesResponseBody", args={"fieldList": "id, color"})
    assert (flt._fields, flt._recursive) == (("id", "color"), False)
    assert flt.order == -2
    assert flt.describe() == (
        "[ModifyResponseBody New content type = [null], In class = String, Out class = String]"
    )


# -- order in the route, and the global cache --------------------------------------------------
def _config(*filters: str, enabled: bool = False) -> GatewayConfig:
    settings = LocalResponseCacheSettings(enabled=enabled)
    routes = tuple(
        RouteDefinition(
            id=f"r{n}",
            uri="http://127.0.0.1:9",
            predicates=(PredicateDefinition("Path", {"patterns": [f"/r{n}/**"]}),),
            filters=tuple(_definition(text) for text in filters),
        )
        for n in range(2)
    )
    return GatewayConfig(
        routes=routes,
        default_filters=(FilterDefinition("AddResponseHeader", {"name": "X-D", "value": "1"}),),
        spring=SpringSettings(filters=FilterSettings(local_response_cache=settings)),
    )


def _definition(text: str) -> FilterDefinition:
    name, _, shortcut = text.partition("=")
    factory = builtin_filters()[name]
    values = normalize_shortcut(
        split_shortcut(shortcut), factory.shortcut_fields, factory.shortcut_type
    )
    return FilterDefinition(name, values)


def test_ordered_filters_go_where_scg_sorts_them() -> None:
    config = _config(
        "AddRequestHeader=X-A,1",
        "RemoveJsonAttributesResponseBody=id",
        "SetStatus=201",
        "LocalResponseCache=30s",
    )
    route = build_routes(config, builtin_predicates(), builtin_filters())[0]
    names = [f.name for f in route.filters]
    assert names == [
        "LocalResponseCache",
        "RemoveJsonAttributesResponseBody",
        "AddResponseHeader",  # default[0] (order 1)
        "AddRequestHeader",  # route[0] (order 1)
        "SetStatus",  # route[2] (order 3)
    ]
    assert route.global_filters == () and route.chain_filters == route.filters


def test_the_global_cache_is_one_for_all_routes_and_runs_first_of_the_rest() -> None:
    config = _config("RemoveJsonAttributesResponseBody=id", "LocalResponseCache", enabled=True)
    first, second = build_routes(config, builtin_predicates(), builtin_filters())
    assert len(first.global_filters) == 1
    shared = first.global_filters[0]
    assert isinstance(shared, GlobalResponseCache) and second.global_filters == (shared,)
    # not among the route's own filters (what the actuator lists) ...
    assert shared not in first.filters
    # ... but in its chain: after the route cache (-4), before the JSON filter (-2: a global
    # filter comes first on a tie) and every filter ordered by its place
    assert [type(f) for f in first.chain_filters[:3]] == [
        LocalResponseCache,
        GlobalResponseCache,
        type(first.filters[1]),
    ]
    plain = build_routes(_config(enabled=True), builtin_predicates(), builtin_filters())[0]
    assert plain.chain_filters[0] is plain.global_filters[0]


def test_bad_cache_arguments_are_located() -> None:
    config = _config("LocalResponseCache=0s")
    with pytest.raises(ConfigErrors, match=r"filters\[0\] \(LocalResponseCache\).*timeToLive"):
        build_routes(config, builtin_predicates(), builtin_filters())
