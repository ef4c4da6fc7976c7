"""LocalResponseCache and the global response cache, against a fake upstream handler and a fake
clock. The expected headers are what the SCG 5.0.4 jar answered to the same exchanges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from gateway.config.args import Args, normalize_expanded, normalize_shortcut, split_shortcut
from gateway.config.schema import FilterSettings, LocalResponseCacheSettings
from gateway.engine.body import StreamBody
from gateway.exchange import Exchange, Handler, Request, Response
from gateway.extension import BuildContext, GatewayFilter, WrappingFilter
from gateway.filters.catalog import builtin_filters
from gateway.filters.response_cache import (
    APPLIED,
    DEFAULT_SIZE,
    GlobalResponseCache,
    LocalResponseCache,
    ResponseStore,
    global_response_cache,
)
from gateway.headers import Headers
from tests.support.clock import FakeClock
from tests.unit.engine.fakes import Sink


class Upstream:
    """The handler the cache wraps: answers ``status``/``headers``/``body`` and counts calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.status = 200
        self.headers: list[tuple[str, str]] = [("Content-Type", "text/plain")]
        self.body: bytes | None = None

    async def __call__(self, exchange: Exchange) -> Response:
        self.calls += 1
        headers = Headers()
        for name, value in self.headers:
            headers.add(name, value)
        headers.add("X-Count", str(self.calls))
        body = self.body if self.body is not None else f"n={self.calls}".encode()
        return Response(self.status, headers, body)


def build(
    shortcut: str = "30s,1MB",
    *,
    args: Mapping[str, Any] | None = None,
    clock: FakeClock,
    settings: LocalResponseCacheSettings | None = None,
) -> GatewayFilter:
    factory = builtin_filters()["LocalResponseCache"]
    values = (
        normalize_expanded(args)
        if args is not None
        else normalize_shortcut(
            split_shortcut(shortcut), factory.shortcut_fields, factory.shortcut_type
        )
    )
    ctx = BuildContext(
        now=clock.time,
        filter_settings=FilterSettings(
            local_response_cache=settings or LocalResponseCacheSettings()
        ),
    )
    built = factory.build(Args(values), ctx)
    assert isinstance(built, LocalResponseCache)
    return built


def chain(flt: GatewayFilter, upstream: Handler) -> Handler:
    assert isinstance(flt, WrappingFilter)
    return flt.wrap(upstream)


def exchange(
    path: str = "/r",
    query: str = "",
    headers: Iterable[tuple[str, str]] = (("Host", "gw.example"),),
    method: str = "GET",
) -> Exchange:
    head = Headers()
    for name, value in headers:
        head.add(name, value)
    return Exchange(
        request=Request(method=method, path=path, query=query, headers=head),
        client_host="127.0.0.1",
        client_port=50000,
        server_host="127.0.0.1",
        server_port=8080,
    )


async def answers(
    handler: Handler, count: int = 2, **request: Any
) -> list[tuple[bytes, list[str]]]:
    """``count`` identical requests: each answer's body and Cache-Control fields."""
    out = []
    for _ in range(count):
        response = await handler(exchange(**request))
        assert isinstance(response.body, bytes)
        out.append((response.body, response.headers.get_all("Cache-Control")))
    return out


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


# -- hits, misses and what the client sees -------------------------------------------------------
async def test_a_hit_is_answered_from_memory_with_max_age_counting_down(
    clock: FakeClock, upstream: Upstream
) -> None:
    handler = chain(build("30s,1MB", clock=clock), upstream)
    first = await handler(exchange())
    assert (first.body, first.headers.get_all("Cache-Control")) == (b"n=1", ["max-age=30"])
    clock.advance(1.2)
    second = await handler(exchange())
    assert (second.body, second.headers.get_all("Cache-Control")) == (b"n=1", ["max-age=28"])
    assert second.headers.get("X-Count") == "1"
    assert second.headers.raw[-1] == (b"Cache-Control", b"max-age=28")  # written last
    assert upstream.calls == 1


async def test_an_entry_expires_after_its_time_to_live(
    clock: FakeClock, upstream: Upstream
) -> None:
    handler = chain(build("2s", clock=clock), upstream)
    await handler(exchange())
    clock.advance(1.999)
    almost = await handler(exchange())
    # SCG at 0 seconds left: the directives that make a client revalidate
    assert almost.headers.get_all("Cache-Control") == ["max-age=0,no-cache,must-revalidate"]
    assert almost.body == b"n=1"
    clock.advance(0.001)
    assert (await handler(exchange())).body == b"n=2"
    assert upstream.calls == 2


async def test_a_bare_time_to_live_is_milliseconds(clock: FakeClock, upstream: Upstream) -> None:
    handler = chain(build("1500", clock=clock), upstream)
    assert await answers(handler) == [(b"n=1", ["max-age=1"]), (b"n=1", ["max-age=1"])]
    clock.advance(1.5)
    assert (await handler(exchange())).body == b"n=2"


async def test_pragma_and_expires_are_removed_from_miss_and_hit(
    clock: FakeClock, upstream: Upstream
) -> None:
    upstream.headers += [("Pragma", "no-cache"), ("Expires", "Thu, 01 Dec 1994 16:00:00 GMT")]
    handler = chain(build(clock=clock), upstream)
    for _ in range(2):
        response = await handler(exchange())
        assert "Pragma" not in response.headers and "Expires" not in response.headers
    assert upstream.calls == 1


@pytest.mark.parametrize(
    ("fields", "cached", "shown"),
    [
        (["public, max-age=100"], True, "public,max-age=30"),
        (["max-age=100, no-cache, must-revalidate"], True, "max-age=30"),
        (["max-age=0"], True, "max-age=30"),
        (["no-cache"], True, "max-age=30"),
        (["s-maxage=50"], True, "s-maxage=50,max-age=30"),
        (["public", "max-age=77"], True, "public,max-age=30"),
        (["no-store, max-age=5"], True, "max-age=30"),  # not exactly "no-store": cached
        (["private, max-age=5"], True, "private,max-age=30"),
        (["private"], False, "private"),
        (["no-store"], False, "no-store"),
    ],
)
async def test_response_cache_control_as_scg_rewrites_it(
    clock: FakeClock, upstream: Upstream, fields: list[str], cached: bool, shown: str
) -> None:
    upstream.headers += [("Cache-Control", field) for field in fields]
    handler = chain(build(clock=clock), upstream)
    first = await handler(exchange())
    assert ", ".join(first.headers.get_all("Cache-Control")) == shown
    await handler(exchange())
    assert upstream.calls == (1 if cached else 2)


@pytest.mark.parametrize(("status", "cached"), [(200, True), (206, True), (301, True)] + [
    (s, False) for s in (201, 204, 302, 304, 404, 500)
])  # fmt: skip
async def test_only_200_206_and_301_are_cached(
    clock: FakeClock, upstream: Upstream, status: int, cached: bool
) -> None:
    upstream.status = status
    handler = chain(build(clock=clock), upstream)
    await answers(handler)
    assert upstream.calls == (1 if cached else 2)


async def test_vary_star_is_not_cached(clock: FakeClock, upstream: Upstream) -> None:
    upstream.headers.append(("Vary", "*"))
    handler = chain(build(clock=clock), upstream)
    assert [cc for _, cc in await answers(handler)] == [[], []]
    assert upstream.calls == 2


# -- which requests ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "headers", "cached"),
    [
        ("HEAD", [], False),
        ("POST", [], False),
        ("GET", [("Content-Length", "3")], False),
        ("GET", [("Content-Length", "0")], True),
        ("GET", [("Cache-Control", "no-store")], False),
        ("GET", [("Cache-Control", "private")], False),
        ("GET", [("Cache-Control", "no-store, max-age=0")], True),
        ("GET", [("Cache-Control", "NO-STORE")], True),
        ("GET", [("Cache-Control", "max-age=0")], True),
        ("GET", [("Pragma", "no-cache")], True),
    ],
)
async def test_which_requests_are_cached(
    clock: FakeClock, upstream: Upstream, method: str, headers: list[tuple[str, str]], cached: bool
) -> None:
    handler = chain(build(clock=clock), upstream)
    ex = exchange(method=method, headers=[("Host", "gw.example"), *headers])
    await handler(ex)
    await handler(exchange(method=method, headers=[("Host", "gw.example"), *headers]))
    assert upstream.calls == (1 if cached else 2)
    assert (ex.attributes.get(APPLIED) is True) == cached


async def test_no_cache_request_skips_the_entry_and_by_default_keeps_it(
    clock: FakeClock, upstream: Upstream
) -> None:
    handler = chain(build(clock=clock), upstream)
    await handler(exchange())
    fresh = await handler(exchange(headers=[("Host", "gw.example"), ("Cache-Control", "no-cache")]))
    # skip-update-cache-entry: the fresh answer passes on unchanged and is not kept
    assert (fresh.body, fresh.headers.get_all("Cache-Control")) == (b"n=2", [])
    assert (await handler(exchange())).body == b"n=1"
    # only a lower-case no-cache directive counts
    for value in ("No-Cache", "no-cachex"):
        other = await handler(exchange(headers=[("Host", "gw.example"), ("Cache-Control", value)]))
        assert other.body == b"n=1"
    assert upstream.calls == 2


async def test_no_cache_request_with_update_strategy_replaces_the_entry(
    clock: FakeClock, upstream: Upstream
) -> None:
    settings = LocalResponseCacheSettings(no_cache_strategy="update-cache-entry")
    handler = chain(build(clock=clock, settings=settings), upstream)
    await handler(exchange())
    clock.advance(5)
    fresh = await handler(
        exchange(headers=[("Host", "gw.example"), ("Cache-Control", "max-age=0, no-cache")])
    )
    assert (fresh.body, fresh.headers.get_all("Cache-Control")) == (b"n=2", ["max-age=30"])
    again = await handler(exchange())
    assert (again.body, again.headers.get_all("Cache-Control")) == (b"n=2", ["max-age=30"])


# -- the key --------------------------------------------------------------------------------------
async def test_key_has_the_url_authorization_and_cookies_but_not_other_headers(
    clock: FakeClock, upstream: Upstream
) -> None:
    handler = chain(build(clock=clock), upstream)

    async def body(query: str = "", *headers: tuple[str, str]) -> bytes:
        response = await handler(exchange(query=query, headers=headers))
        assert isinstance(response.body, bytes)
        return response.body

    host = ("Host", "one.example")
    assert await body("a=1", host) == b"n=1"
    assert await body("a=2", host) == b"n=2"
    assert await body("a=1", ("Host", "two.example")) == b"n=3"
    assert await body("a=1", host, ("Accept", "text/html")) == b"n=1"
    assert await body("a=1", host, ("Authorization", "a")) == b"n=4"
    assert await body("a=1", host, ("Authorization", "a")) == b"n=4"
    assert await body("a=1", host, ("Cookie", "x=1; y=2")) == b"n=5"
    assert await body("a=1", host, ("Cookie", "y=2;x=1")) == b"n=5"  # sorted
    assert await body("a=1", host, ("Cookie", "x=2")) == b"n=6"


async def test_vary_headers_join_the_key(clock: FakeClock, upstream: Upstream) -> None:
    upstream.headers.append(("Vary", "accept, X-Foo"))
    handler = chain(build(clock=clock), upstream)

    async def body(*headers: tuple[str, str]) -> bytes:
        response = await handler(exchange(headers=[("Host", "gw.example"), *headers]))
        assert isinstance(response.body, bytes)
        return response.body

    assert await body(("Accept", "a"), ("X-Foo", "1")) == b"n=1"
    assert await body(("Accept", "b"), ("X-Foo", "1")) == b"n=2"
    assert await body(("ACCEPT", "a"), ("x-foo", "1")) == b"n=1"  # names compare as headers do
    assert await body(("Accept", "a"), ("X-Foo", "2")) == b"n=3"
    assert await body(("Accept", "b"), ("X-Foo", "1")) == b"n=2"
    assert await body(("Accept", "a"), ("Other", "x"), ("X-Foo", "1")) == b"n=1"


async def test_the_key_is_the_request_before_inner_filters_change_it(
    clock: FakeClock, upstream: Upstream
) -> None:
    async def rewriting(ex: Exchange) -> Response:
        ex.request.path = "/elsewhere"
        ex.request.headers.add("Authorization", "added-by-a-later-filter")
        return await upstream(ex)

    handler = chain(build(clock=clock), rewriting)
    assert [body for body, _ in await answers(handler)] == [b"n=1", b"n=1"]


# -- streamed bodies and the bound --------------------------------------------------------------
def streamed(length: int | None) -> StreamBody:
    return StreamBody(length, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)


def _nothing() -> None:
    return None


async def test_a_streamed_body_is_kept_once_it_has_all_passed(clock: FakeClock) -> None:
    sources: list[StreamBody] = []

    async def upstream(ex: Exchange) -> Response:
        sources.append(streamed(None))
        return Response(200, Headers([(b"Content-Type", b"text/plain")]), sources[-1])

    handler = chain(build(clock=clock), upstream)
    first = await handler(exchange())
    sink = Sink()
    assert not isinstance(first.body, bytes)
    first.body.start(sink)
    sources[0].feed(b"ab")
    # not complete yet: a request now goes upstream again
    second = await handler(exchange())
    assert not isinstance(second.body, bytes)
    sources[0].feed(b"cd")
    sources[0].feed_end()
    assert sink.data == [b"ab", b"cd"] and sink.ended
    hit = await handler(exchange())
    assert hit.body == b"abcd" and len(sources) == 2


async def test_a_body_that_breaks_off_is_not_kept(clock: FakeClock) -> None:
    sources: list[StreamBody] = []

    async def upstream(ex: Exchange) -> Response:
        sources.append(streamed(None))
        return Response(200, Headers(), sources[-1])

    handler = chain(build(clock=clock), upstream)
    first = await handler(exchange())
    assert not isinstance(first.body, bytes)
    sink = Sink()
    first.body.start(sink)
    sources[0].feed(b"ab")
    sources[0].feed_error(ConnectionResetError("upstream reset"))
    assert isinstance(sink.error, ConnectionResetError)
    await handler(exchange())
    assert len(sources) == 2


async def test_a_body_larger_than_the_cache_is_passed_on_but_not_kept(
    clock: FakeClock, upstream: Upstream
) -> None:
    flt = build("30s,1KB", clock=clock)
    handler = chain(flt, upstream)
    upstream.body = b"x" * 1025
    assert [body for body, _ in await answers(handler)] == [b"x" * 1025] * 2
    assert upstream.calls == 2
    assert isinstance(flt, LocalResponseCache)
    assert len(flt.cache.store) == 1  # only the URL's (empty) Vary list, as SCG keeps it


async def test_the_store_evicts_the_least_recently_used(clock: FakeClock) -> None:
    store = ResponseStore(100, 30.0, clock.time)
    store.put(b"a", ("a",), 40)
    store.put(b"b", ("b",), 40)
    assert store.get(b"a") == ("a",)  # a is now the most recent
    store.put(b"c", ("c",), 40)
    assert (store.get(b"a"), store.get(b"b"), store.get(b"c")) == (("a",), None, ("c",))
    assert store.size == 80
    store.put(b"a", ("a2",), 10)  # replacing counts the new weight only
    assert store.size == 50 and len(store) == 2
    store.put(b"huge", ("h",), 101)
    assert store.get(b"huge") is None and store.size == 50
    clock.advance(30)
    assert store.get(b"c") is None and store.size == 10


async def test_memory_is_bounded_even_with_no_size_set(
    clock: FakeClock, upstream: Upstream
) -> None:
    flt = build("30s", clock=clock)
    assert isinstance(flt, LocalResponseCache)
    handler = chain(flt, upstream)
    upstream.body = b""
    for n in range(50):
        await handler(exchange(query=f"n={n}"))
    assert 0 < flt.cache.store.size <= DEFAULT_SIZE
    assert len(flt.cache.store) == 100  # 50 responses, 50 Vary lists: each counts its bytes


# -- settings, global cache, build -----------------------------------------------------------
async def test_arguments_default_to_the_global_settings(
    clock: FakeClock, upstream: Upstream
) -> None:
    settings = LocalResponseCacheSettings(size=1024, time_to_live=20.0)
    handler = chain(build("", clock=clock, settings=settings), upstream)
    assert [cc for _, cc in await answers(handler)] == [["max-age=20"], ["max-age=20"]]
    upstream.body = b"y" * 1025
    await answers(handler, query="big")
    assert upstream.calls == 3


async def test_the_global_cache_is_shared_and_leaves_route_caches_alone(
    clock: FakeClock, upstream: Upstream
) -> None:
    ctx = BuildContext(
        now=clock.time,
        filter_settings=FilterSettings(
            local_response_cache=LocalResponseCacheSettings(enabled=True, time_to_live=20.0)
        ),
    )
    shared = global_response_cache(ctx)
    assert isinstance(shared, GlobalResponseCache) and shared.order == -2
    assert global_response_cache(BuildContext()) is None

    async def route_a(ex: Exchange) -> Response:
        response = await upstream(ex)
        response.headers.add("X-Route", "a")
        return response

    async def route_b(ex: Exchange) -> Response:
        response = await upstream(ex)
        response.headers.add("X-Route", "b")
        return response

    a, b = shared.wrap(route_a), shared.wrap(route_b)
    first = await a(exchange())
    assert first.headers.get_all("Cache-Control") == ["max-age=20"]
    # SCG keys the global cache by URL only: route b gets what route a kept
    assert (await b(exchange())).headers.get("X-Route") == "a"
    marked = exchange(path="/own")
    marked.attributes[APPLIED] = True
    await b(marked)
    await b(marked)
    assert upstream.calls == 3


async def test_the_documented_shortcut(clock: FakeClock, upstream: Upstream) -> None:
    flt = build("30m,500MB", clock=clock)
    assert isinstance(flt, LocalResponseCache)
    assert flt.cache._max == 500 * 1024 * 1024
    first = await chain(flt, upstream)(exchange())
    assert first.headers.get_all("Cache-Control") == ["max-age=1800"]


def test_describe_and_order(clock: FakeClock) -> None:
    flt = build(clock=clock)
    assert flt.order == -4
    assert flt.describe().startswith(
        "org.springframework.cloud.gateway.filter.factory.cache.ResponseCacheGatewayFilter@"
    )
