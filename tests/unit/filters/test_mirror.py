"""The Mirror filter's arguments and the parts of ``gateway.mirror`` that need no network: the
URI and Host rules, the tees, sampling, what is counted before a copy leaves, the per-route
counts and the throttled log. The copies themselves are in tests/integration/test_mirror_e2e.py."""

from __future__ import annotations

import asyncio
import logging
import random
import textwrap
from collections.abc import Callable

import pytest

from gateway.config.args import Args, normalize_expanded, normalize_shortcut, split_shortcut
from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.engine.replay import KeptBody
from gateway.errors import ConfigError
from gateway.exchange import BodySink, Exchange, Response, Target, Upgrade
from gateway.extension import BuildContext
from gateway.filters.catalog import builtin_filters
from gateway.filters.mirror import Mirror
from gateway.mirror.compare import CompareSpec, Difference, NotComparable
from gateway.mirror.sender import MirrorLimits, Mirrors, RouteMirror, ThrottledLog
from gateway.mirror.spec import MirrorSpec, MirrorUri, parse_mirror_uri, shadow_host
from gateway.mirror.stats import KEPT_DIFFERENCES, MirrorStats
from gateway.mirror.tee import BodyTee, TeeState
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from tests.unit.filters.conftest import make_exchange


def mirror_filter(
    shortcut: str | None = None,
    args: dict[str, object] | None = None,
    ctx: BuildContext | None = None,
) -> Mirror:
    factory = builtin_filters()["Mirror"]
    if args is not None:
        values = normalize_expanded(args)
    else:
        values = normalize_shortcut(
            split_shortcut(shortcut or ""), factory.shortcut_fields, factory.shortcut_type
        )
    checked = Args(values)
    built = factory.build(checked, ctx or BuildContext())
    checked.finish()
    assert isinstance(built, Mirror)
    return built


# -- arguments -------------------------------------------------------------------------------


def test_the_shortcut_takes_a_uri_and_a_share() -> None:
    built = mirror_filter("http://orders-shadow:8080, 50")
    assert built.spec.uri == MirrorUri("http://orders-shadow:8080", "http", "orders-shadow", 8080)
    assert built.spec.percent == 50.0
    assert built.spec.compare is None
    assert built.services == ()
    assert built.describe() == (
        "[Mirror uri = 'http://orders-shadow:8080', percent = 50.0, compare = false]"
    )


def test_the_share_defaults_to_all_and_lb_services_are_watched() -> None:
    built = mirror_filter("lb://orders-v2")
    assert built.spec.percent == 100.0
    assert built.spec.uri.service == "orders-v2"
    assert built.services == ("orders-v2",)


def test_the_expanded_form_with_a_comparison() -> None:
    built = mirror_filter(
        args={
            "uri": "lb://orders-v2",
            "percent": 25,
            "compare": True,
            "ignore-headers": ["Date", "X-Request-Id", "X-Served-By"],
            "ignore-json-paths": ["$.timestamp", "$.items[*].id"],
        }
    )
    compare = built.spec.compare
    assert compare is not None
    assert compare.ignore_headers == {b"date", b"x-request-id", b"x-served-by"}
    assert [p.text for p in compare.ignore_paths] == ["$.timestamp", "$.items[*].id"]
    assert built.describe() == (
        "[Mirror uri = 'lb://orders-v2', percent = 25.0, compare = true, ignoreHeaders = "
        "list['date', 'x-request-id', 'x-served-by'], ignoreJsonPaths = "
        "list['$.timestamp', '$.items[*].id']]"
    )


def test_indexed_keys_make_the_lists() -> None:
    built = mirror_filter(
        args={
            "uri": "http://s",
            "compare": "true",
            "ignore-json-paths.0": "$.a",
            "ignore-json-paths.1": "$.b[0]",
        }
    )
    assert built.spec.compare is not None
    assert [p.text for p in built.spec.compare.ignore_paths] == ["$.a", "$.b[0]"]


def test_without_a_running_gateway_the_filter_only_validates() -> None:
    built = mirror_filter("http://s")

    async def inner(exchange: Exchange) -> Response:
        return Response(200)

    assert built.wrap(inner) is inner


def located(filters: str) -> str:
    document = textwrap.dedent(
        f"""
        routes:
          - id: orders
            uri: http://127.0.0.1:1
            filters:
              - {filters}
        """
    )
    with pytest.raises(ConfigError) as caught:
        validate_text(document, "routes.yml", builtin_predicates(), builtin_filters())
    return str(caught.value)


PREFIX = "routes.yml: routes[0] (orders) filters[0] (Mirror): "


@pytest.mark.parametrize(
    ("written", "error"),
    [
        ("Mirror=http://s, 101", "argument 'percent': must be between 0 and 100, got '101'"),
        ("Mirror=http://s, -0.5", "argument 'percent': must be between 0 and 100, got '-0.5'"),
        ("Mirror=http://s, NaN", "argument 'percent': must be between 0 and 100"),
        ("Mirror=http://s, half", "argument 'percent': expected a number, got 'half'"),
        ("Mirror", "missing required argument 'uri'"),
        ("Mirror=ws://s", "argument 'uri': 'ws://s': the scheme must be http, https or lb"),
        ("Mirror=orders:8080", "argument 'uri': 'orders:8080': the scheme must be"),
        ("Mirror=http://", "argument 'uri': 'http://' names no host"),
        ("Mirror=http://s:99999", "argument 'uri': 'http://s:99999' has an invalid port"),
        ("Mirror=http://s/v2", "argument 'uri': 'http://s/v2': a mirror URI has no path or query"),
        ("Mirror=http://s?x=1", "argument 'uri': 'http://s?x=1': a mirror URI has no path"),
        ("Mirror=http://u@s", "argument 'uri': 'http://u@s': user info is not supported"),
        ("Mirror=lb://svc:80", "argument 'uri': 'lb://svc:80': write lb://service-id"),
        ("Mirror=http://s, 5, 6", "takes at most 2 argument(s) (uri, percent)"),
        (
            "{name: Mirror, args: {uri: 'http://s', compare: 1, ignore-json-paths: ['$.a[1:2]']}}",
            "argument 'ignore-json-paths': '$.a[1:2]': slices are not supported",
        ),
        (
            "{name: Mirror, args: {uri: 'http://s', compare: 1, ignore-json-paths: [timestamp]}}",
            "argument 'ignore-json-paths': 'timestamp' must start with $",
        ),
        (
            "{name: Mirror, args: {uri: 'http://s', compare: true, ignore-headers: ['Bad Name']}}",
            "argument 'ignore-headers': 'Bad Name' is not a valid header name",
        ),
        (
            "{name: Mirror, args: {uri: 'http://s', ignore-headers: [Date]}}",
            "argument 'ignore-headers': applies only with compare: true",
        ),
        (
            "{name: Mirror, args: {uri: 'http://s', ignore-json-paths: ['$.a']}}",
            "argument 'ignore-json-paths': applies only with compare: true",
        ),
        (
            "{name: Mirror, args: {uri: 'http://s', compare: maybe}}",
            "argument 'compare': not a boolean: 'maybe'",
        ),
        (
            "{name: Mirror, args: {uri: 'http://s', ignoreHeaders: [Date]}}",
            "unknown argument(s): ignoreHeaders",
        ),
    ],
)
def test_bad_arguments_are_located_errors(written: str, error: str) -> None:
    message = located(written)
    assert message.startswith(PREFIX + error), message


# -- URIs and the shadow Host ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://s", MirrorUri("http://s", "http", "s", 80)),
        ("https://S:8443/", MirrorUri("https://S:8443/", "https", "s", 8443)),
        ("lb://Orders-V2", MirrorUri("lb://Orders-V2", "lb", service="Orders-V2")),
        ("http://[::1]:81", MirrorUri("http://[::1]:81", "http", "::1", 81)),
    ],
)
def test_mirror_uris(text: str, expected: MirrorUri) -> None:
    assert parse_mirror_uri(text) == expected


@pytest.mark.parametrize(
    ("authority", "shadow"),
    [
        ("orders:8080", "orders-shadow:8080"),
        ("orders", "orders-shadow"),
        ("127.0.0.1:9000", "127.0.0.1-shadow:9000"),
        ("[::1]:80", "[::1]-shadow:80"),
        ("[::1]", "[::1]-shadow"),
    ],
)
def test_the_shadow_host_is_envoys(authority: str, shadow: str) -> None:
    assert shadow_host(authority) == shadow


# -- the tees ----------------------------------------------------------------------------------


class Source:
    """A body fed by the test (the engine's StreamBody's shape)."""

    def __init__(self, length: int | None = None) -> None:
        self.length = length
        self.sink: BodySink | None = None
        self.aborted = False
        self.paused = 0
        self.done: list[Callable[[], None]] = []

    def start(self, sink: BodySink) -> None:
        self.sink = sink

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        self.paused -= 1

    def abort(self) -> None:
        self.aborted = True

    def when_done(self, callback: Callable[[], None]) -> None:
        self.done.append(callback)


class Sink:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.ended = False
        self.error: BaseException | None = None

    def on_data(self, chunk: bytes) -> None:
        self.data.append(chunk)

    def on_end(self) -> None:
        self.ended = True

    def on_error(self, exc: BaseException) -> None:
        self.error = exc


def started_tee(limit: int, length: int | None = None) -> tuple[Source, BodyTee, Sink]:
    source, sink = Source(length), Sink()
    tee = BodyTee(source, limit)
    tee.start(sink)
    assert source.sink is tee
    return source, tee, sink


async def test_a_tee_passes_everything_on_and_keeps_a_whole_body() -> None:
    source, tee, sink = started_tee(10, length=6)
    assert tee.length == 6
    assert source.sink is not None
    source.sink.on_data(b"abc")
    tee.pause()
    tee.resume()
    source.sink.on_data(b"def")
    waiting = asyncio.ensure_future(tee.settled())
    await asyncio.sleep(0)
    assert not waiting.done()
    source.sink.on_end()
    assert await waiting is TeeState.COMPLETE
    assert sink.data == [b"abc", b"def"] and sink.ended
    assert tee.body() == b"abcdef"
    assert source.paused == 0


async def test_past_the_limit_a_tee_keeps_nothing_and_still_passes_everything() -> None:
    source, tee, sink = started_tee(5)
    assert source.sink is not None
    source.sink.on_data(b"abc")
    source.sink.on_data(b"def")
    assert tee.state is TeeState.TOO_LARGE
    assert tee.chunks == []
    source.sink.on_data(b"g")
    source.sink.on_end()
    assert tee.state is TeeState.TOO_LARGE  # never whole, even once it has ended
    assert sink.data == [b"abc", b"def", b"g"] and sink.ended
    assert await tee.settled() is TeeState.TOO_LARGE


async def test_a_broken_or_aborted_body_is_never_whole() -> None:
    source, tee, sink = started_tee(100)
    assert source.sink is not None
    source.sink.on_data(b"abc")
    failure = ConnectionResetError("client closed mid-body")
    source.sink.on_error(failure)
    assert tee.state is TeeState.FAILED and tee.chunks == []
    assert sink.error is failure
    source, tee, _ = started_tee(100)
    tee.abort()
    assert source.aborted and tee.state is TeeState.FAILED


def test_a_complete_tee_stays_complete_when_aborted_later() -> None:
    source, tee, _ = started_tee(100)
    assert source.sink is not None
    source.sink.on_data(b"x")
    source.sink.on_end()
    tee.abort()  # e.g. the client went away after the last byte
    assert tee.state is TeeState.COMPLETE and tee.body() == b"x"


def test_a_kept_body_is_sent_at_once() -> None:
    body = KeptBody([b"ab", b"cd"], None)
    finished: list[bool] = []
    body.when_done(lambda: finished.append(True))
    sink = Sink()
    body.start(sink)
    assert body.length is None
    assert sink.data == [b"ab", b"cd"] and sink.ended and finished == [True]


# -- a route's channel ---------------------------------------------------------------------------


class Draws(random.Random):
    """An rng that returns the given draws."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self._draws = list(draws)

    def random(self) -> float:
        return self._draws.pop(0)


def channel(percent: float = 100.0, rng: random.Random | None = None, **limits: int) -> RouteMirror:
    mirrors = Mirrors(
        ConnectionPool(PoolSettings()),
        lambda exchange, target: b"",
        lambda service: [],
        MirrorLimits(**limits),
        rng=random.Random(0),
    )
    spec = MirrorSpec(parse_mirror_uri("http://127.0.0.1:1"), percent)
    return mirrors.channel("r", spec, rng or random.Random(0))


def test_the_share_is_drawn_per_request() -> None:
    thirty = channel(30.0, Draws(0.1, 0.29, 0.3, 0.99))
    assert [thirty.sampled() for _ in range(4)] == [True, True, False, False]
    assert channel(100.0, Draws()).sampled()  # no draw at all
    assert not channel(0.0, Draws()).sampled()


async def test_a_body_longer_than_the_limit_is_counted_and_not_teed() -> None:
    route = channel(max_body=10)
    exchange = make_exchange(method="POST")
    body = Source(length=11)
    exchange.body = body
    seen: list[object] = []

    async def inner(ex: Exchange) -> Response:
        seen.append(ex.body)
        return Response(200)

    response = await route.handle(inner, exchange)
    assert response.status == 200
    assert seen == [body]  # the primary streams the client's own body
    assert route.stats.requests["skipped_body"] == 1


async def test_a_body_the_primary_never_read_is_not_mirrored() -> None:
    route = channel(max_body=10)
    exchange = make_exchange(method="POST")
    exchange.body = Source(length=5)

    async def inner(ex: Exchange) -> Response:
        assert isinstance(ex.body, BodyTee)  # within the limit: teed
        return Response(413)  # answered without reading it

    assert (await route.handle(inner, exchange)).status == 413
    assert route.stats.requests["skipped_body"] == 1
    assert route._mirrors.inflight == 0


async def test_upgrades_are_not_mirrored() -> None:
    route = channel()
    exchange = make_exchange()
    exchange.upgrade = Upgrade("websocket")
    calls: list[Exchange] = []

    async def inner(ex: Exchange) -> Response:
        calls.append(ex)
        return Response(101)

    await route.handle(inner, exchange)
    assert calls == [exchange]
    assert route._mirrors.inflight == 0
    assert sum(route.stats.requests.values()) == 0


async def test_a_closed_sender_sends_nothing_more() -> None:
    route = channel()
    await route._mirrors.close()

    async def inner(ex: Exchange) -> Response:
        return Response(200)

    assert (await route.handle(inner, make_exchange())).status == 200
    assert route._mirrors.inflight == 0


async def test_a_bug_in_a_copy_is_counted_and_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_head(exchange: Exchange, target: object) -> bytes:
        raise RuntimeError("bug")

    mirrors = Mirrors(
        ConnectionPool(PoolSettings()),
        broken_head,
        lambda service: [],
        MirrorLimits(),
        rng=random.Random(0),
    )
    route = mirrors.channel("r", MirrorSpec(parse_mirror_uri("http://127.0.0.1:1")), Draws())

    async def inner(ex: Exchange) -> Response:
        return Response(204)

    with caplog.at_level(logging.ERROR, "meshgate.mirror"):
        for _ in range(3):
            assert (await route.handle(inner, make_exchange())).status == 204
        for _ in range(50):
            if mirrors.inflight == 0:
                break
            await asyncio.sleep(0.01)
    assert route.stats.requests["failed"] == 3
    assert [r.getMessage() for r in caplog.records] == ["mirror to http://127.0.0.1:1 broke down"]


async def test_an_lb_mirror_without_instances_fails_the_copy_only() -> None:
    mirrors = Mirrors(
        ConnectionPool(PoolSettings()),
        lambda exchange, target: b"",
        lambda service: [],
        MirrorLimits(),
        rng=random.Random(0),
    )
    route = mirrors.channel("r", MirrorSpec(parse_mirror_uri("lb://nowhere")), Draws())

    async def inner(ex: Exchange) -> Response:
        return Response(200)

    assert (await route.handle(inner, make_exchange())).status == 200
    for _ in range(50):
        if mirrors.inflight == 0:
            break
        await asyncio.sleep(0.01)
    assert route.stats.requests["failed"] == 1


# -- counts ----------------------------------------------------------------------------------


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def mirror_request(self, route: str, outcome: str) -> None:
        self.seen.append(("request", route, outcome))

    def mirror_comparison(self, route: str, result: str) -> None:
        self.seen.append(("comparison", route, result))


def test_the_last_differences_are_kept_and_every_event_counted() -> None:
    events = Events()
    compared = MirrorSpec(MirrorUri("lb://v2", "lb", service="v2"), 100.0, compare=None)
    stats = MirrorStats("orders", compared, events, lambda: 0.0)
    stats.spec = MirrorSpec(compared.uri, 100.0, CompareSpec())
    for n in range(KEPT_DIFFERENCES + 5):
        stats.request("sent")
        stats.compared("GET", f"/{n}", Difference(status=(200, 500)))
    stats.compared("GET", "/same", Difference())
    stats.incomparable(NotComparable.SHADOW_TIMEOUT)
    view = stats.view()
    assert view["requests"]["sent"] == KEPT_DIFFERENCES + 5
    assert view["comparisons"] == {
        "compared": KEPT_DIFFERENCES + 6,
        "equal": 1,
        "differing": KEPT_DIFFERENCES + 5,
        "notComparable": 1,
    }
    assert view["notComparable"] == {"shadow_timeout": 1}
    paths = [d["path"] for d in view["differences"]]
    assert paths == [f"/{n}" for n in range(5, KEPT_DIFFERENCES + 5)]  # the newest last
    assert view["differences"][0] == {
        "time": "1970-01-01T00:00:00.000+00:00",
        "method": "GET",
        "path": "/5",
        "status": {"primary": 200, "shadow": 500},
    }
    assert events.seen.count(("comparison", "orders", "differing")) == KEPT_DIFFERENCES + 5
    assert ("comparison", "orders", "not_comparable") in events.seen


def test_the_throttled_log_writes_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    throttled = ThrottledLog(logging.getLogger("test.mirror"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.mirror"):
        assert throttled.log(logging.WARNING, "down: %s", "a")
        for _ in range(3):
            now[0] += 1
            assert not throttled.log(logging.WARNING, "down: %s", "b")
        now[0] += 10
        assert throttled.log(logging.WARNING, "down: %s", "c")
    assert [r.getMessage() for r in caplog.records] == [
        "down: a",
        "down: c (3 more since the last line)",
    ]


# -- the copy's head -------------------------------------------------------------------------


def _fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    assert lines[-2:] == [b"", b""]
    return lines[0], [tuple(line.split(b": ", 1)) for line in lines[1:-2]]  # type: ignore[misc]


@pytest.mark.parametrize("preserve_host", [False, True])
@pytest.mark.parametrize("length", [None, 5])
def test_a_readdressed_primary_head_is_the_copy_head_built_anew(
    preserve_host: bool, length: int | None
) -> None:
    from gateway.forwarded import ForwardedHeaders
    from gateway.forwarder import Forwarder
    from gateway.mirror.sender import readdress

    forwarder = Forwarder(ConnectionPool(PoolSettings()), ForwardedHeaders(), response_timeout=1)
    mirrors = Mirrors(
        ConnectionPool(PoolSettings()),
        forwarder.head,
        lambda service: [],
        MirrorLimits(),
        rng=random.Random(1),
    )
    headers = [
        ("Host", "shop.example"),
        ("X-Mirror", "no"),
        ("X-Mirrored-By", "kept"),
        ("Accept", "*/*"),
    ]
    exchange = make_exchange("/orders/1", "q=v", headers, method="POST")
    exchange.preserve_host = preserve_host
    tee = BodyTee(KeptBody([b"hello"], length), 1000)
    exchange.body = tee
    primary = Target("10.0.0.1", 8000)
    shadow = Target("10.0.0.2", 9000)
    authority = shadow_host("shop.example" if preserve_host else shadow.authority)

    # The head built for the copy (the primary sent nothing), and the primary's re-addressed.
    built = mirrors._copy_head(exchange, tee, shadow)
    exchange.upstream_head = forwarder.head(exchange, primary)
    readdressed = mirrors._copy_head(exchange, tee, shadow)
    assert readdressed == readdress(exchange.upstream_head, authority.encode())

    line, fields = _fields(readdressed)
    built_line, built_fields = _fields(built)
    assert line == built_line == b"POST /orders/1?q=v HTTP/1.1"
    assert fields[0] == (b"Host", authority.encode())
    assert fields[-1] == (b"X-Mirror", b"true")
    assert sorted(fields) == sorted(built_fields)
    assert [f for f in fields if f[0].lower().startswith(b"x-mirror")] == [
        (b"X-Mirrored-By", b"kept"),
        (b"X-Mirror", b"true"),
    ]
