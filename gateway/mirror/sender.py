"""The running gateway's mirror traffic: the channel each Mirror filter is bound to, the copies
in flight (each a task this object owns and cancels on shutdown), their bound and timeout, the
comparisons, and the counts per route.

A copy leaves once the primary has answered (or failed): only then is the request as the
route's filters left it (path, headers) known for sure, and the client's response is already
on its way, so nothing here can delay it. A copy with a body leaves only once the whole body has
passed through the tee within ``max_body``: a truncated copy is never sent. Every copy is
bounded: at most ``max_inflight`` at a time (beyond that a copy is dropped, not queued) and
``timeout`` from the primary's answer to the end of the comparison. Nothing a copy does — a dead
or slow shadow, a bug here — reaches the client's path: the task catches everything but its own
cancellation, counts it and logs it, at most once per ``LOG_EVERY`` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from gateway.engine.framing import LAST_CHUNK, chunk
from gateway.engine.pool import ConnectionPool
from gateway.engine.replay import KeptBody
from gateway.engine.sink import SinkOutcome, SinkPool
from gateway.engine.upstream import ConnectionLostBeforeResponse
from gateway.errors import GatewayError, NoInstancesAvailable, UpstreamTimeout
from gateway.exchange import (
    BodySource,
    Destination,
    Exchange,
    Handler,
    Request,
    Response,
    Target,
)
from gateway.headers import Headers
from gateway.mirror.compare import Answer, NotComparable, compare
from gateway.mirror.spec import MirrorSpec, shadow_host
from gateway.mirror.stats import (
    DROPPED_INFLIGHT,
    FAILED,
    SENT,
    SKIPPED_BODY,
    TIMEOUT,
    MirrorEvents,
    MirrorStats,
)
from gateway.mirror.tee import BodyTee, TeeState
from resilience.balancer.round_robin import RoundRobin

log = logging.getLogger("meshgate.mirror")

# The most often a failing shadow (or anything else here) is logged.
LOG_EVERY = 10.0
# How long shutdown waits for cancelled copies to unwind.
CLOSE_WAIT = 1.0

# The upstream request head for an exchange sent to a destination (``Forwarder.head``): the
# copy carries what the primary carried, forwarding fields included.
HeadBuilder = Callable[[Exchange, Destination], bytes]
Instances = Callable[[str], Sequence[Destination]]

_DROPPED_FIELDS = frozenset({b"host", b"x-mirror"})


@dataclass(frozen=True, slots=True)
class MirrorLimits:
    """``GATEWAY_MIRROR_MAX_BODY``, ``GATEWAY_MIRROR_MAX_INFLIGHT``, ``GATEWAY_MIRROR_TIMEOUT``."""

    max_body: int = 1024 * 1024
    max_inflight: int = 100
    timeout: float = 5.0


class ThrottledLog:
    """At most one line per ``every`` seconds; the next line says how many were held back."""

    __slots__ = ("_clock", "_every", "_last", "_logger", "_suppressed")

    def __init__(
        self,
        logger: logging.Logger,
        every: float = LOG_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def log(self, level: int, message: str, *args: object, exc_info: bool = False) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            self._suppressed += 1
            return False
        self._last = now
        if self._suppressed:
            message += f" ({self._suppressed} more since the last line)"
            self._suppressed = 0
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True


class Mirrors:
    """``contract.MirrorSender`` for the running gateway."""

    def __init__(
        self,
        pool: ConnectionPool,
        head: HeadBuilder,
        instances: Instances,
        limits: MirrorLimits,
        *,
        rng: random.Random,
        events: MirrorEvents | None = None,
        now: Callable[[], float] = time.time,
        throttled: ThrottledLog | None = None,
        sink: SinkPool | None = None,
    ) -> None:
        """``instances(service)``: the healthy instances of an ``lb://`` mirror (the
        registry's snapshot); ``now``: the wall clock differences are stamped with;
        ``sink``: where copies nobody compares go to a plain-HTTP shadow (answers counted,
        not read into memory; without it they go through ``pool`` as compared ones do)."""
        self._pool = pool
        self._sink = sink
        self._head = head
        self._instances = instances
        self.limits = limits
        self._rng = rng
        self._events = events
        self._now = now
        self._log = throttled or ThrottledLog(log)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats: dict[tuple[str, str], MirrorStats] = {}
        self._closed = False

    # -- MirrorSender -------------------------------------------------------------------------
    def channel(self, route_id: str, spec: MirrorSpec, rng: random.Random) -> RouteMirror:
        key = (route_id, spec.uri.raw)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = MirrorStats(route_id, spec, self._events, self._now)
        else:
            stats.spec = spec  # a reload may change the share or the comparison
        # An lb:// mirror's instances in turn, from a random start (the gateway's rng: the
        # filter's draws only the share).
        balancer = RoundRobin(self._rng) if spec.uri.service is not None else None
        return RouteMirror(self, spec, stats, rng, self._instances, balancer)

    # -- what the management port reads --------------------------------------------------------
    @property
    def inflight(self) -> int:
        sink = self._sink
        return len(self._tasks) + (sink.inflight if sink is not None else 0)

    def snapshot(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "maxBody": limits.max_body,
            "maxInflight": limits.max_inflight,
            "timeoutSeconds": limits.timeout,
            "inflight": self.inflight,
            "mirrors": [stats.view() for stats in self._stats.values()],
        }

    # -- lifecycle ----------------------------------------------------------------------------
    async def close(self) -> None:
        """Cancel every copy in flight (their connections are aborted) and send no more."""
        self._closed = True
        if self._sink is not None:
            self._sink.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT)

    # -- one copy -----------------------------------------------------------------------------
    def launch(
        self,
        channel: RouteMirror,
        exchange: Exchange,
        tee: BodyTee | None,
        response: Response | None,
    ) -> None:
        """Called once the primary answered (``response``) or failed (None). Never raises."""
        try:
            self._launch(channel, exchange, tee, response)
        except Exception:
            # Nothing was counted for this copy yet: every count in _launch ends it.
            channel.stats.request(FAILED)
            self._log.log(
                logging.ERROR, "mirror to %s broke down", channel.spec.uri.raw, exc_info=True
            )

    def _launch(
        self,
        channel: RouteMirror,
        exchange: Exchange,
        tee: BodyTee | None,
        response: Response | None,
    ) -> None:
        if self._closed:
            return
        stats = channel.stats
        if tee is not None and (not tee.started or tee.state in _BROKEN):
            # Over the limit, cut off, or never read by the primary (answered before it was
            # forwarded): the copy could not be whole.
            stats.request(SKIPPED_BODY)
            return
        if self.inflight >= self.limits.max_inflight:
            stats.request(DROPPED_INFLIGHT)
            return
        comparing = channel.spec.compare
        try:
            target = channel.destination()
        except NoInstancesAvailable as exc:
            stats.request(FAILED)
            self._log.log(logging.WARNING, "mirror to %s failed: %s", channel.spec.uri.raw, exc)
            if comparing is not None:
                stats.incomparable(NotComparable.SHADOW_FAILED)
            return
        head = self._copy_head(exchange, tee, target)
        request = exchange.request
        head_request = request.method == "HEAD"
        sink = self._sink
        if (
            sink is not None
            and comparing is None
            and not target.secure
            and (tee is None or tee.state is TeeState.COMPLETE)
        ):
            # The common case: a copy only counted, its body (if any) already whole.
            sink.send(
                target.host,
                target.port,
                head,
                _framed(tee),
                head_request=head_request,
                timeout=self.limits.timeout,
                done=partial(self._sunk, channel),
            )
            return
        loop = asyncio.get_running_loop()
        primary: _Primary | None = None
        if comparing is not None and response is not None:
            primary = _Primary(response, self.limits.max_body)
        deadline = loop.time() + self.limits.timeout
        copy = _Copy(request.method, request.path, head, head_request, target, tee)
        task = loop.create_task(self._run(channel, copy, primary, response is None, deadline))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        channel: RouteMirror,
        copy: _Copy,
        primary: _Primary | None,
        primary_failed: bool,
        deadline: float,
    ) -> None:
        stats = channel.stats
        comparing = channel.spec.compare
        counted = False
        try:
            if copy.tee is not None and not await _whole(copy.tee, deadline):
                counted = True
                stats.request(SKIPPED_BODY)
                return
            try:
                async with asyncio.timeout_at(deadline):
                    shadow = await self._send(copy, comparing is not None)
            except (TimeoutError, UpstreamTimeout):
                counted = True
                stats.request(TIMEOUT)
                if comparing is not None:
                    stats.incomparable(NotComparable.SHADOW_TIMEOUT)
                return
            except GatewayError as exc:
                counted = True
                stats.request(FAILED)
                self._log.log(logging.WARNING, "mirror to %s failed: %s", channel.spec.uri.raw, exc)
                if comparing is not None:
                    stats.incomparable(NotComparable.SHADOW_FAILED)
                return
            counted = True
            stats.request(SENT)
            if comparing is None:
                return
            if shadow is None:
                stats.incomparable(NotComparable.SHADOW_TOO_LARGE)
                return
            if primary_failed or primary is None:
                stats.incomparable(NotComparable.PRIMARY_FAILED)
                return
            answer = await primary.answer(deadline)
            if isinstance(answer, NotComparable):
                stats.incomparable(answer)
                return
            stats.compared(copy.method, copy.path, compare(comparing, answer, shadow))
        except asyncio.CancelledError:
            raise  # shutdown
        except Exception:
            if not counted:
                stats.request(FAILED)
            self._log.log(
                logging.ERROR, "mirror to %s broke down", channel.spec.uri.raw, exc_info=True
            )

    async def _send(self, copy: _Copy, keep: bool) -> Answer | None:
        """The shadow's answer, its body whole when ``keep`` (None: over ``max_body``, the
        connection then closed); without ``keep`` the body is read and dropped, so the
        connection can be reused."""
        target = copy.target
        tee = copy.tee
        length = tee.length if tee is not None else None
        pool = self._pool
        # A reused keep-alive connection may have just been closed by the shadow: once more on
        # a fresh one (the copy's body is all in memory, so it can be sent again).
        server_name = target.tls_server_name
        for attempt in (0, 1):
            conn = pool.take(target.host, target.port, target.secure, server_name)
            reused = conn is not None
            if conn is None:
                conn = await pool.connect(
                    target.host, target.port, target.secure, server_name=server_name
                )
            body = KeptBody(tee.chunks, length) if tee is not None else None
            try:
                response = await conn.send(
                    copy.head,
                    body,
                    chunked=body is not None and length is None,
                    head_request=copy.head_request,
                    upgrade=False,
                    response_timeout=self.limits.timeout,
                )
            except ConnectionLostBeforeResponse:
                if attempt or not reused:
                    raise
                continue
            except BaseException:
                conn.abort()
                raise
            data = await _read(response.body, self.limits.max_body if keep else None)
            if data is None:
                return None
            return Answer(response.status, tuple(response.headers.raw), data)
        raise AssertionError("unreachable")

    def _copy_head(self, exchange: Exchange, tee: BodyTee | None, target: Destination) -> bytes:
        """The copy's upstream head: the primary's fields, a shadow Host, ``X-Mirror: true``,
        and the body's framing (its length, or chunked as the client sent it)."""
        request = exchange.request
        host = request.headers.get("host") if exchange.preserve_host else None
        authority = shadow_host(host if host is not None else target.authority)
        head = exchange.upstream_head
        if head is not None and exchange.body is tee:
            # What the primary was sent (the same fields, framing and trace parent), re-addressed.
            return readdress(head, authority.encode("latin-1"))
        # The primary sent nothing (it failed first), or an inner filter replaced the body the
        # tee kept: the head is built for the copy.
        return self._head(_addressed_copy(exchange, authority.encode("latin-1"), tee), target)

    def _sunk(self, channel: RouteMirror, outcome: SinkOutcome, why: str) -> None:
        stats = channel.stats
        if outcome is SinkOutcome.ANSWERED:
            stats.request(SENT)
        elif outcome is SinkOutcome.TIMED_OUT:
            stats.request(TIMEOUT)
        else:
            stats.request(FAILED)
            self._log.log(logging.WARNING, "mirror to %s failed: %s", channel.spec.uri.raw, why)


_BROKEN = frozenset({TeeState.TOO_LARGE, TeeState.FAILED})


class RouteMirror:
    """``contract.MirrorChannel``: one Mirror filter of one route, bound to the sender."""

    __slots__ = ("_balancer", "_fixed", "_instances", "_mirrors", "_rng", "spec", "stats")

    def __init__(
        self,
        mirrors: Mirrors,
        spec: MirrorSpec,
        stats: MirrorStats,
        rng: random.Random,
        instances: Instances,
        balancer: RoundRobin | None,
    ) -> None:
        self._mirrors = mirrors
        self.spec = spec
        self.stats = stats
        self._rng = rng
        self._instances = instances
        uri = spec.uri
        self._fixed = Target(uri.host, uri.port, uri.secure) if uri.service is None else None
        self._balancer = balancer

    def sampled(self) -> bool:
        percent = self.spec.percent
        if percent >= 100.0:
            return True
        return percent > 0.0 and self._rng.random() * 100.0 < percent

    def destination(self) -> Destination:
        if self._fixed is not None:
            return self._fixed
        service = self.spec.uri.service
        assert service is not None and self._balancer is not None
        instance = self._balancer.choose(self._instances(service))
        if instance is None:
            raise NoInstancesAvailable(f"no instance of the mirror service {service!r}")
        return instance

    async def handle(self, inner: Handler, exchange: Exchange) -> Response:
        if exchange.upgrade is not None or not self.sampled():
            return await inner(exchange)
        mirrors = self._mirrors
        body = exchange.body
        tee: BodyTee | None = None
        if body is not None:
            limit = mirrors.limits.max_body
            length = body.length
            if length is not None and length > limit:
                self.stats.request(SKIPPED_BODY)
                return await inner(exchange)
            tee = BodyTee(body, limit)
            exchange.body = tee
        try:
            response = await inner(exchange)
        except Exception:
            mirrors.launch(self, exchange, tee, None)  # the shadow still gets its copy
            raise
        mirrors.launch(self, exchange, tee, response)
        return response


class _Primary:
    """The primary's answer as the client gets it: its head now, its body as it streams."""

    __slots__ = ("_body", "_tee", "headers", "status")

    def __init__(self, response: Response, limit: int) -> None:
        self.status = response.status
        self.headers = tuple(response.headers.raw)
        body = response.body
        self._body: bytes | None = None
        self._tee: BodyTee | None = None
        if isinstance(body, bytes):
            self._body = body if len(body) <= limit else None
        else:
            self._tee = BodyTee(body, limit)
            response.body = self._tee

    async def answer(self, deadline: float) -> Answer | NotComparable:
        tee = self._tee
        if tee is None:
            if self._body is None:
                return NotComparable.PRIMARY_TOO_LARGE
            return Answer(self.status, self.headers, self._body)
        try:
            async with asyncio.timeout_at(deadline):
                state = await tee.settled()
        except TimeoutError:
            return NotComparable.PRIMARY_INCOMPLETE
        if state is TeeState.TOO_LARGE:
            return NotComparable.PRIMARY_TOO_LARGE
        if state is not TeeState.COMPLETE:
            return NotComparable.PRIMARY_INCOMPLETE
        return Answer(self.status, self.headers, tee.body())


_X_MIRROR = re.compile(rb"(?:^|\r\n)x-mirror[ \t]*:", re.IGNORECASE)


def readdress(head: bytes, host: bytes) -> bytes:
    """A copy's head from the head the primary was sent (``Forwarder.head``: the request line,
    then Host, then the other fields): the shadow's Host, the client's ``X-Mirror`` left out
    and ours appended."""
    line_end = head.index(b"\r\n") + 2
    host_end = head.index(b"\r\n", line_end) + 2
    fields = head[host_end:-2]
    if _X_MIRROR.search(fields) is not None:
        fields = b"".join(
            line + b"\r\n"
            for line in fields.split(b"\r\n")[:-1]
            if line.split(b":", 1)[0].rstrip(b" \t").lower() != b"x-mirror"
        )
    return b"".join((head[:line_end], b"Host: ", host, b"\r\n", fields, _MIRROR_FIELD))


_MIRROR_FIELD = b"X-Mirror: true\r\n\r\n"


def _addressed_copy(exchange: Exchange, authority: bytes, tee: BodyTee | None) -> Exchange:
    """The exchange as the primary had it, with the copy's own header list (the shadow's Host
    first, the client's X-Mirror left out, ours last) and the tee's body. Only to build the
    copy's head from, at once: the rest is the primary's, shared."""
    request = exchange.request
    fields = [(b"Host", authority)]
    fields += [item for item in request.headers.raw if item[0].lower() not in _DROPPED_FIELDS]
    fields.append((b"X-Mirror", b"true"))
    return dataclasses.replace(
        exchange,
        request=Request(request.method, request.path, request.query, Headers(fields)),
        preserve_host=True,  # the Host above
        body=KeptBody(tee.chunks, tee.length) if tee is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _Copy:
    """A copy that goes out as a task: what it sends, where, and what it is reported as."""

    method: str
    path: str
    head: bytes
    head_request: bool
    target: Destination
    tee: BodyTee | None


def _framed(tee: BodyTee | None) -> Sequence[bytes]:
    """The copy's body as written after its head: the kept chunks, re-chunked when the client
    sent it chunked (the head says so, as the primary's did)."""
    if tee is None:
        return ()
    if tee.length is not None:
        return tee.chunks
    return [*map(chunk, tee.chunks), LAST_CHUNK]


async def _whole(tee: BodyTee, deadline: float) -> bool:
    """Whether the request body arrived whole (within the limit) before ``deadline``."""
    if tee.state is TeeState.COMPLETE:
        return True
    try:
        async with asyncio.timeout_at(deadline):
            return await tee.settled() is TeeState.COMPLETE
    except TimeoutError:
        return False


async def _read(body: bytes | BodySource, limit: int | None) -> bytes | None:
    """A response body read to its end: kept when ``limit`` is given (None past it, the body
    then aborted), else dropped as it arrives."""
    if isinstance(body, bytes):
        return body if limit is None or len(body) <= limit else None
    done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
    body.start(_Collect(done, body, limit))
    try:
        return await done
    except BaseException:
        body.abort()  # timed out or cancelled: close the connection rather than drain it
        raise


class _Collect:
    __slots__ = ("_chunks", "_done", "_kept", "_limit", "_source")

    def __init__(
        self, done: asyncio.Future[bytes | None], source: BodySource, limit: int | None
    ) -> None:
        self._done = done
        self._source = source
        self._limit = limit
        self._chunks: list[bytes] = []
        self._kept = 0

    def on_data(self, chunk: bytes) -> None:
        limit = self._limit
        if limit is None or self._done.done():
            return
        self._kept += len(chunk)
        if self._kept > limit:
            self._chunks = []
            self._done.set_result(None)
            self._source.abort()
            return
        self._chunks.append(chunk)

    def on_end(self) -> None:
        if not self._done.done():
            self._done.set_result(b"".join(self._chunks))

    def on_error(self, exc: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(exc)
