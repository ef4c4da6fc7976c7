"""LocalResponseCache, and the global response cache ``filter.local-response-cache.enabled``
turns on for every route: responses kept in memory and answered again without the upstream.

What is cached, and what a client sees, as SCG 5.0.4 does it (its ResponseCacheManager and
after-cache mutators; every point below was checked against the 5.0.4 jar):
- requests: a GET without a ``Content-Length`` above 0 and without a Cache-Control field that
  is exactly ``no-store`` or ``private`` (a field ``no-store, max-age=0`` does not count, nor
  does ``NO-STORE``). HEAD and POST are never cached;
- responses: status 200, 206 or 301, no Cache-Control field exactly ``no-store``/``private``,
  no ``Vary: *``. The headers kept are the response's after every route filter ran;
- the key: the request URL as the client sent it (scheme, Host, path, query), its
  Authorization values and its cookies (sorted), and the request's value of every header the
  cached response named in Vary. The Vary names are kept per URL (SCG's metadata entry);
- a hit answers from memory: the upstream and the route's other filters are not run;
- on every cached answer and on the response that fills the cache: Pragma and Expires are
  removed and Cache-Control gets ``max-age`` = the seconds left of the time to live (it
  replaces the first ``max-age=N`` of the field that has one, or is added), and then, with
  max-age > 0, ``no-cache``/``no-store``/``must-revalidate`` directives are dropped, with 0
  ``no-cache,must-revalidate`` is added; the field is written last, comma-joined. No Age;
- a request with ``no-cache`` in Cache-Control (lower case, as a directive) skips the lookup
  and goes upstream; with ``request.no-cache-strategy: skip-update-cache-entry`` (SCG's
  default) its response is passed on unchanged and not kept, with ``update-cache-entry`` it
  replaces the entry;
- entries expire ``timeToLive`` after they were written (time to live: the filter's argument,
  else ``filter.local-response-cache.time-to-live``, else 5 minutes; a bare number is
  milliseconds); ``size`` bounds the cache's bytes (the argument, else the global setting);
- the route filter has SCG's order -4, before every route filter with a position order; the
  global one -2. Each route filter has a cache of its own; the global cache is one for all
  routes, so two routes that receive the same URL share its entries, as in SCG;
- a route filter marks the request (SCG's ``LocalResponseCacheGatewayFilter-Applied``), and
  the global cache then leaves it alone.

Where meshgate differs, on purpose:
- memory is always bounded: with no size set anywhere, a cache holds at most
  ``DEFAULT_SIZE`` bytes (SCG: unbounded). The bytes counted are each entry's body, headers
  and key (SCG counts the body only, so empty bodies could grow it without end);
- eviction is least-recently-used (Caffeine's W-TinyLFU may instead refuse a newcomer);
- a cached response is sent with a Content-Length even if the upstream's was chunked;
- the global cache lives as long as the route table: a reload empties it (SCG keeps one for
  the application's life).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.args import Args
from gateway.config.schema import LocalResponseCacheSettings
from gateway.exchange import BodySink, BodySource, Exchange, Handler, Request, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, WrappingFilter
from gateway.headers import Headers

# SCG's LocalResponseCacheGatewayFilterFactory.LOCAL_RESPONSE_CACHE_FILTER_APPLIED
APPLIED = "LocalResponseCacheGatewayFilter-Applied"
# SCG: NettyWriteResponseFilter.WRITE_RESPONSE_FILTER_ORDER - 3, and - 2 for the global filter
ROUTE_ORDER = -4
GLOBAL_ORDER = -2
# The bound of a cache no size was given for (SCG leaves it unbounded).
DEFAULT_SIZE = 64 * 1024 * 1024

_STATUSES = frozenset({200, 206, 301})
_FORBIDDEN = frozenset({"private", "no-store"})
# Spring's regex is written in a Java string where "\s" is a plain space, hence " " first.
_NO_CACHE = re.compile(r"(?: |,|^)no-cache(?:\s|,|$)", re.ASCII)
_MAX_AGE_WORD = re.compile(r"\bmax-age=\d+\b", re.ASCII)
_MAX_AGE = re.compile(r"(?:,|^)\s*max-age=(\d+)", re.ASCII)
_DIRECTIVE_SPLIT = re.compile(r"\s*,\s*", re.ASCII)
_NO_CACHE_DIRECTIVES = frozenset({"must-revalidate", "no-cache", "no-store"})


# -- the store ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    # Wall-clock seconds when the upstream's answer came (SCG's CachedResponse timestamp):
    # max-age counts down from it.
    stamp: float
    vary: tuple[str, ...]  # the names its Vary fields list


CacheValue = CachedResponse | tuple[str, ...]  # a response, or the Vary names of a URL


@dataclass(slots=True)
class _Entry:
    value: CacheValue
    weight: int
    written: float


class ResponseStore:
    """Entries by key, at most ``max_bytes`` of them in all (the least recently used go
    first), each gone ``time_to_live`` seconds after it was written. ``now`` is the clock."""

    def __init__(self, max_bytes: int, time_to_live: float, now: Callable[[], float]) -> None:
        self._max = max_bytes
        self._ttl = time_to_live
        self._now = now
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._bytes = 0

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> CacheValue | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._now() - entry.written >= self._ttl:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: bytes, value: CacheValue, weight: int) -> None:
        if key in self._entries:
            self._drop(key)
        if weight > self._max:
            return  # could never fit
        self._entries[key] = _Entry(value, weight, self._now())
        self._bytes += weight
        while self._bytes > self._max:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.weight

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.weight


# -- the key ------------------------------------------------------------------------------------
class _RequestKey:
    """What keys a request, taken before the inner filters edit the request in place: SCG's
    CacheKeyGenerator parts (URL, Authorization, cookies, then each Vary header), each
    followed by ``;``, hashed."""

    __slots__ = ("_base", "_headers")

    def __init__(self, exchange: Exchange) -> None:
        request = exchange.request
        headers = request.headers
        host = headers.get("host") or f"{exchange.server_host}:{exchange.server_port}"
        url = f"{exchange.scheme}://{host}{request.target}"
        authorization = _header_part(headers, "Authorization", ";")
        self._base = f"{url};{authorization};{_cookies(headers)};"
        self._headers = Headers(list(headers.raw))

    @property
    def meta_key(self) -> bytes:
        return b"M" + _digest(self._base)

    def key(self, vary: tuple[str, ...]) -> bytes:
        text = self._base
        for name in sorted(vary):
            text += _header_part(self._headers, name, ",") + ";"
        return b"R" + _digest(text)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _header_part(headers: Headers, name: str, separator: str) -> str:
    values = headers.get_all(name)
    return f"{name}={separator.join(sorted(values))}" if values else ""


def _cookies(headers: Headers) -> str:
    pairs: list[str] = []
    for field in headers.get_all("cookie"):
        for piece in field.split(";"):
            name, _, value = piece.strip().partition("=")
            if name.strip():
                pairs.append(f"{name.strip()}={value.strip()}")
    return ";".join(sorted(pairs))


def _vary(headers: Headers) -> tuple[str, ...]:
    """Spring's ``HttpHeaders.getVary()``: every comma-separated name of every Vary field."""
    return tuple(
        name.strip()
        for field in headers.get_all("vary")
        for name in field.split(",")
        if name.strip()
    )


# -- what is cacheable --------------------------------------------------------------------------
def cacheable_request(request: Request) -> bool:
    if request.method != "GET":
        return False
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > 0:
        return False
    return not any(value in _FORBIDDEN for value in request.headers.get_all("cache-control"))


def cacheable_response(response: Response) -> bool:
    headers = response.headers
    return (
        response.status in _STATUSES
        and not any(value in _FORBIDDEN for value in headers.get_all("cache-control"))
        and "*" not in headers.get_all("vary")
    )


def no_cache_request(request: Request) -> bool:
    values = request.headers.get_all("cache-control")
    return bool(values) and _NO_CACHE.search(", ".join(values)) is not None


# -- the headers every cached answer gets -----------------------------------------------------
def set_max_age(headers: Headers, seconds: int) -> None:
    """SCG's SetMaxAgeHeaderAfterCacheExchangeMutator."""
    values = headers.get_all("cache-control")
    if "max-age=" in ", ".join(values):
        values = [
            _MAX_AGE_WORD.sub(f"max-age={seconds}", value, count=1)
            if "max-age=" in value
            else value
            for value in values
        ]
    else:
        values = [*values, f"max-age={seconds}"]
    headers.set_all("Cache-Control", values)


def set_directives_by_max_age(headers: Headers) -> None:
    """SCG's SetCacheDirectivesByMaxAgeAfterCacheExchangeMutator."""
    values = headers.get_all("cache-control")
    if not values:
        return
    joined = ", ".join(values)
    found = _MAX_AGE.search(joined)
    if found is None:
        return
    if int(found.group(1)) > 0:
        parts = _DIRECTIVE_SPLIT.split(joined)
        while parts and parts[-1] == "":
            parts.pop()  # Java's split drops trailing empty strings
        joined = ",".join(part for part in parts if part not in _NO_CACHE_DIRECTIVES)
    else:
        if "no-cache" not in joined:
            joined += ",no-cache"
        if "must-revalidate" not in joined:
            joined += ",must-revalidate"
    headers.set_all("Cache-Control", [joined])


def _weight(key: bytes, response: CachedResponse) -> int:
    return len(key) + len(response.body) + sum(len(n) + len(v) for n, v in response.headers)


# -- the cache ----------------------------------------------------------------------------------
class ResponseCache:
    """SCG's ResponseCacheManager over one store: the lookup, the answer from memory and the
    keeping of an upstream's answer."""

    def __init__(
        self,
        store: ResponseStore,
        *,
        max_bytes: int,
        time_to_live: float,
        skip_no_cache_update: bool,
        now: Callable[[], float],
    ) -> None:
        self.store = store
        self._max = max_bytes
        self._ttl_ns = round(time_to_live * 1_000_000_000)
        self._skip = skip_no_cache_update
        self._now = now

    async def serve(self, exchange: Exchange, inner: Handler) -> Response:
        """A cacheable request (the caller checked): from memory, or upstream and kept."""
        request_key = _RequestKey(exchange)
        meta_key = request_key.meta_key
        no_cache = no_cache_request(exchange.request)
        if not no_cache:
            vary = self.store.get(meta_key)
            found = self.store.get(request_key.key(vary if isinstance(vary, tuple) else ()))
            if isinstance(found, CachedResponse):
                return self._from_cache(meta_key, found)
        response = await inner(exchange)
        if cacheable_response(response) and not (no_cache and self._skip):
            self._from_upstream(request_key, meta_key, response)
        return response

    def _from_cache(self, meta_key: bytes, cached: CachedResponse) -> Response:
        headers = Headers(list(cached.headers))
        self._after_cache(headers, cached.stamp)
        self._keep_vary(meta_key, cached.vary)  # SCG writes the URL's Vary names again
        return Response(cached.status, headers, cached.body)

    def _keep_vary(self, meta_key: bytes, vary: tuple[str, ...]) -> None:
        self.store.put(meta_key, vary, len(meta_key) + sum(len(name) for name in vary))

    def _from_upstream(self, request_key: _RequestKey, meta_key: bytes, response: Response) -> None:
        headers = response.headers
        vary = _vary(headers)
        key = request_key.key(vary)
        stamp = self._now()
        kept = tuple(headers.raw)  # as the route's filters left them, before the cache's edits
        status = response.status
        self._after_cache(headers, stamp)

        def keep(body: bytes) -> None:
            cached = CachedResponse(status, kept, body, stamp, vary)
            self._keep_vary(meta_key, vary)
            self.store.put(key, cached, _weight(key, cached))

        body = response.body
        if isinstance(body, bytes):
            keep(body)
        else:
            response.body = _Recording(body, self._max, keep)

    def _after_cache(self, headers: Headers, stamp: float) -> None:
        headers.remove("Pragma")
        headers.remove("Expires")
        set_max_age(headers, self._max_age(stamp))
        set_directives_by_max_age(headers)

    def _max_age(self, stamp: float) -> int:
        """The seconds left of the time to live, as SCG counts them: whole milliseconds
        elapsed, the rest rounded down."""
        if self._ttl_ns < 0:
            return 0
        elapsed_ms = int(self._now() * 1000) - int(stamp * 1000)
        return max(0, (self._ttl_ns - elapsed_ms * 1_000_000) // 1_000_000_000)


class _Recording:
    """The upstream's body on its way to the client, kept as it passes (up to ``limit``
    bytes: a larger one could never be stored); ``keep`` gets it once it has all arrived."""

    __slots__ = ("_chunks", "_keep", "_kept", "_limit", "_sink", "_source")

    def __init__(self, source: BodySource, limit: int, keep: Callable[[bytes], None]) -> None:
        self._source = source
        self._limit = limit
        self._keep: Callable[[bytes], None] | None = keep
        self._chunks: list[bytes] = []
        self._kept = 0
        self._sink: BodySink | None = None

    @property
    def length(self) -> int | None:
        return self._source.length

    def start(self, sink: BodySink) -> None:
        self._sink = sink
        self._source.start(self)

    def pause(self) -> None:
        self._source.pause()

    def resume(self) -> None:
        self._source.resume()

    def abort(self) -> None:
        self._keep = None
        self._source.abort()

    def when_done(self, callback: Callable[[], None]) -> None:
        self._source.when_done(callback)

    def on_data(self, chunk: bytes) -> None:
        if self._keep is not None:
            self._kept += len(chunk)
            if self._kept > self._limit:
                self._keep = None
                self._chunks.clear()
            else:
                self._chunks.append(chunk)
        if self._sink is not None:
            self._sink.on_data(chunk)

    def on_end(self) -> None:
        keep, self._keep = self._keep, None
        if keep is not None:
            keep(b"".join(self._chunks))
            self._chunks = []
        if self._sink is not None:
            self._sink.on_end()

    def on_error(self, exc: BaseException) -> None:
        self._keep = None  # a broken body is never kept (SCG keeps on completion only)
        self._chunks.clear()
        if self._sink is not None:
            self._sink.on_error(exc)


# -- the filters --------------------------------------------------------------------------------
class LocalResponseCache(WrappingFilter):
    """The route filter: a cache of its own, ahead of the route's other filters."""

    name = "LocalResponseCache"
    order = ROUTE_ORDER

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def describe(self) -> str:
        # SCG's filter has no toString of its own: its actuator shows the class and hash.
        return (
            "org.springframework.cloud.gateway.filter.factory.cache.ResponseCacheGatewayFilter"
            f"@{id(self) & 0x7FFFFFFF:x}"
        )

    def wrap(self, inner: Handler) -> Handler:
        cache = self.cache

        async def local_response_cache(exchange: Exchange) -> Response:
            if not cacheable_request(exchange.request):
                return await inner(exchange)
            exchange.attributes[APPLIED] = True
            return await cache.serve(exchange, inner)

        return local_response_cache


class GlobalResponseCache(WrappingFilter):
    """The global filter: one cache for every route, left alone by a route's own."""

    name = "GlobalLocalResponseCache"
    order = GLOBAL_ORDER

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def describe(self) -> str:
        return (
            "org.springframework.cloud.gateway.filter.factory.cache."
            f"GlobalLocalResponseCacheGatewayFilter@{id(self) & 0x7FFFFFFF:x}"
        )

    def wrap(self, inner: Handler) -> Handler:
        cache = self.cache

        async def global_response_cache(exchange: Exchange) -> Response:
            if exchange.attributes.get(APPLIED) is not None or not cacheable_request(
                exchange.request
            ):
                return await inner(exchange)
            exchange.attributes[APPLIED] = True
            return await cache.serve(exchange, inner)

        return global_response_cache


def make_cache(
    settings: LocalResponseCacheSettings,
    now: Callable[[], float] = time.time,
    *,
    time_to_live: float | None = None,
    size: int | None = None,
) -> ResponseCache:
    """A cache with ``time_to_live``/``size`` when given, else the global settings'."""
    ttl = settings.time_to_live if time_to_live is None else time_to_live
    bound = (
        size if size is not None else settings.size if settings.size is not None else DEFAULT_SIZE
    )
    return ResponseCache(
        ResponseStore(bound, ttl, now),
        max_bytes=bound,
        time_to_live=ttl,
        skip_no_cache_update=settings.no_cache_strategy != "update-cache-entry",
        now=now,
    )


def global_response_cache(ctx: BuildContext) -> GlobalResponseCache | None:
    """The global filter when ``filter.local-response-cache.enabled`` is true: build it once
    per route table, so all routes share its cache."""
    settings = ctx.filter_settings.local_response_cache
    if not settings.enabled:
        return None
    return GlobalResponseCache(make_cache(settings, ctx.now))


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    ttl: float | None = args.duration("timeToLive", None)
    size: int | None = args.data_size("size", None)
    args.finish()
    if ttl is not None and ttl <= 0:
        args.fail("timeToLive", f"must be greater than 0, got {ttl:g}s (nothing would be cached)")
    if size is not None and size <= 0:
        args.fail("size", f"must be greater than 0, got {size} (nothing would be cached)")
    return LocalResponseCache(
        make_cache(ctx.filter_settings.local_response_cache, ctx.now, time_to_live=ttl, size=size)
    )


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("LocalResponseCache", ("timeToLive", "size"), _build),
)
