"""``MeshClient``: a service's own outbound HTTP calls, through the same call path as the
gateway's (``resilience``: picker, per-attempt accounting, budgeted retries, breaker, deadline)
over the same registries (``discovery``), with aiohttp's client as the transport.

A URL's host says where a call goes:

- ``lb://billing/...``, or ``http://billing/...`` when ``billing`` is a service the registry
  (or the policies) know and the URL names no port: an instance of the service, chosen per
  attempt (lane, ejected, tried, limits, balancer), ``https`` when the instance is secure;
- any other host: that address, with the policy's timeouts, retries and trace propagation
  (no breaker, bulkhead or ejection: there is no set of instances to steer within).

Per call, outermost first: the breaker (a service's), the overall timeout, the retry loop,
then per attempt the pick, the bulkhead and in-flight counts (held until the response body is
over), the per-try timeout, a CLIENT span and the request with ``traceparent``/``baggage`` from
the current ``CallContext``.

Spans go through the OpenTelemetry API only (``opentelemetry.trace.get_tracer("meshgate.mesh")``
unless a tracer is given): the application configures the SDK and its exporter. Without one the
tracer records nothing and each attempt still sends a new span id in the caller's trace.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any, Self

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NoOpTracer,
    ProxyTracer,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)
from prometheus_client.registry import Collector
from yarl import URL

from discovery.consul.registry import ConsulRegistry
from discovery.consul.settings import ConsulSettings, filter_from_env
from discovery.instance import ServiceInstance
from discovery.layered import LayeredRegistry
from discovery.mesh import context as _context
from discovery.mesh.deadlines import Deadlines
from discovery.mesh.metrics import MeshMetrics, collector
from discovery.mesh.policy import IDEMPOTENT, ServicePolicy
from discovery.mesh.policy_file import load_policies
from discovery.registry import ServiceRegistry
from discovery.static import StaticRegistry
from resilience.balancer.factory import make_balancer
from resilience.breaker import Breaker, BreakerPolicy
from resilience.bulkhead import Bulkhead
from resilience.clock import Clock, SystemClock
from resilience.picker import InstancePicker
from resilience.retry import Retrier, RetryPolicy
from resilience.runtime import AttemptHooks, RuntimeSettings, ServiceRuntime, ServiceRuntimes

Response = aiohttp.ClientResponse

# How long a list of the registry's service names is reused to tell services from hosts.
_NAMES_TTL = 1.0
# Direct hosts remembered with their callers; beyond this many the memory starts over.
_MAX_DIRECT = 256
_TRACER = "meshgate.mesh"
# Request bodies aiohttp builds afresh for every attempt, so a retry sends them again.
_REPLAYABLE = (bytes, bytearray, str, dict, list, tuple)


class MeshClient:
    """One per process (or per component): an aiohttp ``ClientSession`` plus the per-service
    call state. Use as ``async with MeshClient(...) as mesh`` (or ``start``/``close``)."""

    def __init__(
        self,
        registry: ServiceRegistry,
        *,
        policies: Mapping[str, ServicePolicy] | None = None,
        default_policy: ServicePolicy | None = None,
        runtime: RuntimeSettings | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        discovery_wait: float = 0.0,
        owns_registry: bool = False,
        tracer: Tracer | None = None,
        metrics: MeshMetrics | None = None,
    ) -> None:
        """``policies``: by service name (or direct host), case-insensitive; others get
        ``default_policy``. ``runtime``: outlier detection, retry budget and the breaker
        defaults shared by every service. ``discovery_wait``: seconds the first call to a
        service with no instance yet waits for discovery to find one (a watched registry
        loads a service on first use). ``owns_registry``: start and stop it with the client.
        ``tracer``: where each attempt's CLIENT span is recorded (default: the global tracer
        provider's ``meshgate.mesh`` tracer, a no-op until the application configures one).
        ``metrics``: where calls, attempts and retries are counted (None: nowhere); export
        them with ``metrics_collector``."""
        self.registry = registry
        self.metrics = metrics
        self._policies = {name.casefold(): p for name, p in (policies or {}).items()}
        self._default = default_policy or ServicePolicy()
        self._rng = rng or random.Random()
        self._clock = clock or SystemClock()
        self.runtimes = ServiceRuntimes(runtime, clock=self._clock, rng=self._rng, events=metrics)
        self._discovery_wait = discovery_wait
        self._owns_registry = owns_registry
        # A proxy tracer: it follows a provider the application sets after this client exists.
        self._tracer = tracer or otel_trace.get_tracer(_TRACER)
        self._deadlines = Deadlines()
        self._session: aiohttp.ClientSession | None = None
        self._services: dict[str, _Caller] = {}
        self._direct: dict[tuple[str, str, int | None], _Caller] = {}
        self._names: frozenset[str] = frozenset()
        self._names_at: float | None = None

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        services: Mapping[str, Sequence[ServiceInstance]] | None = None,
        discovery_wait: float = 5.0,
        policies: Mapping[str, ServicePolicy] | None = None,
        default_policy: ServicePolicy | None = None,
        **options: Any,
    ) -> MeshClient:
        """The client a gateway with the same environment would be:

        - Consul when ``CONSUL_HTTP_ADDR`` is set (with Consul's other ``CONSUL_*`` variables
          and ``GATEWAY_CONSUL_DATACENTER``/``_TAG``/``_ACCEPT_WARNING``/``_WAIT``;
          ``services`` then pins those services to fixed instances over it), else a static
          registry of ``services``;
        - outlier ejection, retry budget, breaker and zone from ``GATEWAY_OUTLIER_*``,
          ``GATEWAY_RETRY_BUDGET_*``, ``GATEWAY_BREAKER_*``, ``GATEWAY_RETRY_MAX_BODY`` and
          ``GATEWAY_ZONE``; the default policy's timeouts from ``GATEWAY_CONNECT_TIMEOUT``
          and ``GATEWAY_RESPONSE_TIMEOUT``;
        - per-service policies from the ``services:`` section of ``GATEWAY_CONFIG``'s file
          (``discovery.mesh.policy_file``), over the default policy; ``policies`` win by name.
        - calls counted (``metrics_collector``) unless ``GATEWAY_METRICS`` is false.

        ValueError (or ``DiscoveryConfigError``) names the variable, or the file and key.
        ``options`` go to the constructor."""
        env = os.environ if env is None else env
        runtime = options.pop("runtime", None) or RuntimeSettings.from_env(env)
        if "metrics" not in options and _counts(env):
            options["metrics"] = MeshMetrics()
        default = (default_policy or ServicePolicy()).with_env(env)
        merged: dict[str, ServicePolicy] = {}
        path = env.get("GATEWAY_CONFIG", "").strip()
        if path:
            merged.update(load_policies(path, default))
        merged.update(policies or {})
        static = StaticRegistry(services or {})
        registry: ServiceRegistry = static
        if env.get("CONSUL_HTTP_ADDR", "").strip():
            consul = ConsulRegistry(
                ConsulSettings.from_env(env, **filter_from_env(env)),
                watch_catalog=True,  # which hosts are services: the catalog's names
                clock=options.get("clock"),
                rng=options.get("rng"),
            )
            registry = LayeredRegistry(static, consul) if services else consul
        return cls(
            registry,
            policies=merged,
            default_policy=default,
            runtime=runtime,
            discovery_wait=discovery_wait,
            owns_registry=True,
            **options,
        )

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the session and start an owned registry; a second call does nothing."""
        if self._session is not None:
            return
        # No cookie jar: one client serves every caller in the process, and a cookie one
        # instance set must not travel with another caller's calls.
        session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        # aiohttp resends an idempotent request once, to the same address, when the
        # connection drops (meant for a stale keep-alive one, applied to every one). Our
        # retry loop does that instead: it goes to another instance, records the failure
        # for ejection and pays from the retry budget. aiohttp has no argument for it;
        # the attribute is pinned with aiohttp (<3.15), and a test fails if it changes.
        session._retry_connection = False
        self._session = session
        if self._owns_registry:
            await self.registry.start()
            registry = self.registry
            await _poll(lambda: registry.ready, self._discovery_wait)

    async def close(self) -> None:
        self._deadlines.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._owns_registry:
            await self.registry.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- calls ----------------------------------------------------------------------------------
    def request(self, method: str, url: str | URL, **kwargs: Any) -> RequestContext:
        """``method url`` with aiohttp's keyword arguments (``headers``, ``params``, ``json``,
        ``data``, ...). Await it for the response, or ``async with`` it to release the
        response (and the call's slots) at the end of the block."""
        return RequestContext(self._call(method.upper(), URL(url), kwargs))

    def get(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("GET", url, **kwargs)

    def head(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("POST", url, **kwargs)

    def put(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str | URL, **kwargs: Any) -> RequestContext:
        return self.request("DELETE", url, **kwargs)

    def service_of(self, url: str | URL) -> str | None:
        """The service a URL goes to (None: a direct host)."""
        if type(url) is not URL:
            url = URL(url)
        host = url.host
        if not host:
            raise ValueError(f"{url} names no host")
        if url.scheme == "lb":
            return host
        if url.scheme not in ("http", "https"):
            raise ValueError(f"{url}: only http, https and lb URLs are sent")
        if url.explicit_port:
            return None  # host:port is an address, never a service name
        folded = host.casefold()
        if folded in self._policies or folded in self._service_names():
            return host
        return None

    def _service_names(self) -> frozenset[str]:
        now = self._clock.monotonic()
        if self._names_at is None or now - self._names_at >= _NAMES_TTL:
            self._names = frozenset(n.casefold() for n in self.registry.services())
            self._names_at = now
        return self._names

    async def _call(self, method: str, url: URL, kwargs: dict[str, Any]) -> Response:
        session = self._session
        if session is None:
            raise RuntimeError("MeshClient is not started: use `async with` or start()")
        service = self.service_of(url)
        if service is None:
            caller = self._host(url)
        else:  # ``_service``'s own lookup first: it makes the caller only the first time
            caller = self._services.get(service.casefold()) or self._service(service)
        if service is not None and not caller.waited and self._discovery_wait > 0:
            await self._await_discovery(caller)
        given = kwargs.pop("headers", None)
        headers: CIMultiDict[str] | CIMultiDictProxy[str] = _NO_HEADERS
        own_baggage: list[str] = []
        if given:
            headers = CIMultiDict(given)
            own_baggage = headers.popall("baggage", [])
        metrics = self.metrics
        if metrics is None:
            return await caller.call(
                session, method, url, headers, own_baggage, kwargs, _context.current()
            )
        clock = self._clock
        started = clock.monotonic()
        try:
            response = await caller.call(
                session, method, url, headers, own_baggage, kwargs, _context.current()
            )
        except asyncio.CancelledError:
            raise  # the caller gave up: nothing about the call to count
        except BaseException as exc:
            metrics.call(caller.name, method, 0, type(exc).__name__, clock.monotonic() - started)
            raise
        metrics.call(caller.name, method, response.status, "", clock.monotonic() - started)
        return response

    def metrics_collector(self) -> Collector:
        """The client's Prometheus series and its state gauges (breakers, ejections,
        instances), for ``CollectorRegistry.register`` or ``exposition``. RuntimeError when
        the client counts nothing (``metrics`` None)."""
        if self.metrics is None:
            raise RuntimeError("this MeshClient was made without metrics")
        return collector(self.metrics, self.runtimes, self.registry)

    async def _await_discovery(self, caller: _Caller) -> None:
        """A service's first call waits (up to ``discovery_wait``) for a watched registry to
        load it, instead of failing while its watch is still on its first read."""
        if caller.waited or self._discovery_wait <= 0:
            return
        caller.waited = True
        registry, name = self.registry, caller.name
        await _poll(lambda: bool(registry.instances(name)), self._discovery_wait)

    def _policy(self, name: str) -> ServicePolicy:
        return self._policies.get(name.casefold(), self._default)

    def _service(self, name: str) -> _Caller:
        key = name.casefold()
        caller = self._services.get(key)
        if caller is None:
            policy = self._policy(name)
            runtime = self.runtimes.get(key)
            runtime.limit(policy.max_concurrent)
            if policy.balancer.policy == "least_request":
                runtime.track_active = True  # the balancer reads in-flight counts
            picker: InstancePicker[ServiceInstance] = InstancePicker(
                name,
                self.registry.instances,
                runtime,
                make_balancer(
                    policy.balancer,
                    rng=self._rng,
                    active=runtime.active,
                    local_zone=self.runtimes.settings.local_zone,
                ),
                policy.max_per_instance,
                strict_lanes=policy.strict_lanes,
            )
            breaker = (
                None
                if policy.breaker is None
                # "default": the runtime settings' breaker (GATEWAY_BREAKER_* with from_env)
                else self.runtimes.breakers.get(
                    key, policy.breaker if isinstance(policy.breaker, BreakerPolicy) else None
                )
            )
            caller = self._services[key] = _Caller(
                name,
                policy,
                self.runtimes,
                runtime,
                picker,
                breaker,
                self._rng,
                self._tracer,
                self._deadlines,
                self.metrics,
            )
        return caller

    def _host(self, url: URL) -> _Caller:
        host = url.host or ""
        key = (url.scheme, host.casefold(), url.explicit_port)
        caller = self._direct.get(key)
        if caller is None:
            if len(self._direct) >= _MAX_DIRECT:
                self._direct.clear()
            name = f"{host}:{url.port}"
            caller = self._direct[key] = _Caller(
                name,
                self._policy(host),
                self.runtimes,
                None,
                None,
                None,
                self._rng,
                self._tracer,
                self._deadlines,
                self.metrics,
            )
        return caller


def _counts(env: Mapping[str, str]) -> bool:
    """``GATEWAY_METRICS``, as the gateway reads it (on unless false)."""
    text = env.get("GATEWAY_METRICS", "").strip().lower()
    if text in ("", "1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"GATEWAY_METRICS: expected true or false, got {text!r}")


async def _poll(done: Callable[[], bool], timeout: float) -> None:
    """Until ``done()`` or ``timeout`` seconds: registries offer snapshots, not events."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if done() or loop.time() >= deadline:
            return
        await asyncio.sleep(0.02)


class RequestContext:
    """What ``MeshClient.request`` returns: awaitable (the response) and an async context
    manager (the response, released when the block ends), like aiohttp's own."""

    __slots__ = ("_coro", "_response")

    def __init__(self, coro: Awaitable[Response]) -> None:
        self._coro = coro
        self._response: Response | None = None

    def __await__(self) -> Generator[Any, None, Response]:
        return self._coro.__await__()

    async def __aenter__(self) -> Response:
        self._response = await self._coro
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        response = self._response
        if response is not None:
            response.release()
            await response.wait_for_close()


class _Replay:
    """``resilience.retry.Replayable`` for aiohttp's body arguments."""

    __slots__ = ("replayable",)

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        data = kwargs.get("data")
        self.replayable = data is None or isinstance(data, _REPLAYABLE)


# Instances whose last target ``_Caller._target`` remembers, at most.
_MAX_TARGETS = 1024
# A call without headers of its own: read and copied from, never changed.
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def _discard(response: Response) -> None:
    """A retried response: its body is not wanted (its slots go with its connection)."""
    response.release()


def _status(response: Response) -> str:
    return f"status {response.status}"


class _Call:
    """One call's state across its attempts."""

    __slots__ = (
        "headers",
        "kwargs",
        "lane",
        "method",
        "own_traceparent",
        "parent",
        "parent_id",
        "propagation",
        "session",
        "shared",
        "traced",
        "tried",
        "url",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: CIMultiDict[str] | CIMultiDictProxy[str],
        kwargs: dict[str, Any],
        lane: str | None,
        propagation: _context.Propagation,
        traced: bool,
        parent: Context | None,
        parent_id: int | None,
    ) -> None:
        self.session = session
        self.method = method
        self.url = url
        self.headers = headers
        self.kwargs = kwargs
        self.lane = lane
        self.propagation = propagation
        self.traced = traced  # False: the tracer is OpenTelemetry's no-op one
        self.parent = parent
        self.parent_id = parent_id
        self.tried: set[str] = set()
        # Untraced attempts: the propagation fields after the traceparent that the caller's
        # headers leave to send, and whether they hold a traceparent (on the first attempt).
        self.shared: tuple[tuple[str, str], ...] | None = None
        self.own_traceparent = False


class _Caller:
    """The call state of one service (``picker`` set) or one direct host (``picker`` None)."""

    __slots__ = (
        "_deadlines",
        "_hooks",
        "_metrics",
        "_picker",
        "_retrier_of",
        "_rng",
        "_runtime",
        "_runtimes",
        "_status_retried",
        "_targets",
        "_timeout",
        "_tracer",
        "breaker",
        "name",
        "policy",
        "retriers",
        "waited",
    )

    def __init__(
        self,
        name: str,
        policy: ServicePolicy,
        runtimes: ServiceRuntimes,
        runtime: ServiceRuntime | None,
        picker: InstancePicker[ServiceInstance] | None,
        breaker: Breaker | None,
        rng: random.Random,
        tracer: Tracer,
        deadlines: Deadlines,
        metrics: MeshMetrics | None,
    ) -> None:
        self.name = name
        self._deadlines = deadlines
        self._metrics = metrics
        self.policy = policy
        self._runtimes = runtimes
        self._runtime = runtime
        self._picker = picker
        self._hooks = AttemptHooks(runtime, picker.count) if runtime and picker else None
        self.breaker = breaker
        self._rng = rng
        self._tracer = tracer
        self.waited = False
        self._targets: dict[str, tuple[ServiceInstance, URL, URL]] = {}
        # The per-try timeout is aiohttp's own bounds, not a loop timer of ours per attempt
        # (cancelled timers stay in the loop's heap until their time, and every later one pays
        # for them): a connection (from the pool, or opened) within it, the connect itself
        # within connect_timeout, and no silence longer than it, before the head and between
        # reads of the body.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=policy.per_try_timeout,
            sock_connect=policy.connect_timeout,
            sock_read=policy.per_try_timeout,
        )
        spec = policy.retry
        # No status listed, no series: ``retries_status`` is false for every response, so a
        # call need not ask the retrier about its first one.
        self._status_retried = bool(spec.statuses or spec.series_codes)

        def retrier(idempotent: bool) -> Retrier[Response]:
            def on_error(exc: BaseException) -> bool:
                return spec.retries_error("GET" if idempotent else "POST", exc)

            return Retrier(
                RetryPolicy(
                    spec.retries,
                    lambda response: spec.retries_status(response.status),
                    on_error,
                    spec.backoff,
                    policy.timeout,
                ),
                rng=rng,
                drop=_discard,
                events=runtimes.events,
                describe=_status,
            )

        # By whether the method is idempotent: a non-idempotent one is repeated only when
        # nothing of it can have been sent.
        self.retriers = {True: retrier(True), False: retrier(False)}
        # A call's retrier by its method: only the methods retried at all, when retries are.
        self._retrier_of = (
            {method: self.retriers[method in IDEMPOTENT] for method in spec.methods}
            if spec.retries > 0
            else {}
        )

    async def call(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: CIMultiDict[str] | CIMultiDictProxy[str],
        own_baggage: list[str],
        kwargs: dict[str, Any],
        context: _context.CallContext | None,
    ) -> Response:
        # The breaker, the overall deadline and the retry loop's first attempt in this one
        # coroutine (their step APIs: the same admission, bookkeeping and outcomes as
        # ``Breaker.call``, ``Deadlines.within`` and ``Retrier.run``), not a coroutine and a
        # closure per layer per call; tenacity's loop only when a first outcome is retried.
        policy = self.policy
        propagation = _context.Propagation.of(context, own_baggage)
        # Whether the tracer records anything: not OpenTelemetry's no-op one, directly or as
        # the proxy tracer handing over to it while no provider is set (asked per call, so a
        # provider set later is followed). A no-op tracer's spans are their parent's and do
        # nothing, so then an attempt makes none.
        tracer = self._tracer
        if type(tracer) is ProxyTracer:
            # Whom the proxy delegates to now; a proxy without that attribute counts as tracing.
            tracer = getattr(tracer, "_tracer", tracer)
        traced = type(tracer) is not NoOpTracer
        parent, parent_id = propagation.span_parent() if traced else (None, None)
        if "timeout" not in kwargs:
            kwargs["timeout"] = self._timeout
        call = _Call(
            session,
            method,
            url,
            headers,
            kwargs,
            context.lane if context is not None else None,
            propagation,
            traced,
            parent,
            parent_id,
        )
        retrier = self._retrier_of.get(method)
        breaker = self.breaker
        admission = breaker.begin() if breaker is not None else None
        try:
            deadlines = self._deadlines
            entry = deadlines.enter(policy.timeout) if policy.timeout is not None else None
            try:
                if retrier is None:
                    response = await self._attempt(call, 1)
                else:
                    runtime = self._runtime
                    budget = runtime.budget if runtime is not None else None
                    started = retrier.begin(budget)
                    known: Response | None = None
                    known_error: Exception | None = None
                    try:
                        known = await self._attempt(call, 1)
                    except Exception as exc:
                        if not retrier.retries_error(exc):
                            raise
                        known_error = exc  # retried outside this handler: no implicit chaining
                    if known is not None and not (
                        self._status_retried and retrier.retries_result(known)
                    ):
                        response = known
                    else:
                        response = await retrier.resume(
                            partial(self._attempt, call),
                            started,
                            known,
                            known_error,
                            service=self.name,
                            budget=budget,
                            replay=_Replay(kwargs),
                        )
            except asyncio.CancelledError:
                exceeded = deadlines.exceeded(entry) if entry is not None else None
                if exceeded is None:
                    raise  # cancelled by someone else
                raise exceeded from None
            finally:
                if entry is not None:
                    deadlines.leave(entry)
        except BaseException as exc:
            if breaker is not None and admission is not None:
                breaker.finish(admission, exc)
            raise
        if breaker is not None and admission is not None:
            breaker.finish(admission, failure=response.status >= 500)
        return response

    async def _attempt(self, call: _Call, number: int) -> Response:
        target, instance = self._target(call.url, call.tried, call.lane)
        span: Span | None = None
        child = None
        if call.traced:
            span = self._span(call.method, target, instance, number, call.parent)
            own = span.get_span_context()
            # A no-op tracer hands back its parent's span: then a new span id, as without one.
            child = own if own.is_valid and own.span_id != call.parent_id else None
            sent = CIMultiDict(call.headers)
            for name, value in call.propagation.fields(self._rng, child):
                if name not in sent or name == "baggage":
                    sent.add(name, value)
        else:
            # The API's no-op tracer, whose span would be its parent's and whose span methods do
            # nothing: no span, and the fields ``fields(rng, None)`` gives, of which only the
            # traceparent (a new span id) differs between attempts. The caller's own headers
            # win but for baggage (merged), as above.
            propagation = call.propagation
            traceparent = propagation.traceparent(self._rng)
            shared = call.shared
            if shared is None:
                headers = call.headers
                call.own_traceparent = "traceparent" in headers
                shared = call.shared = tuple(
                    (name, value)
                    for name, value in propagation.shared()
                    if name not in headers or name == "baggage"
                )
            sent = CIMultiDict(call.headers)
            if not call.own_traceparent:
                sent.add("traceparent", traceparent)
            if shared:
                sent.extend(shared)
        hooks = self._hooks
        instance_id = instance.instance_id if instance is not None else None
        entered = hooks.begin(instance_id) if hooks is not None else None
        options = call.kwargs
        if instance is not None and instance.secure and instance.tls_server_name:
            # The instance's certificate names it by DNS name while it is registered by IP.
            options = {**options, "server_hostname": instance.tls_server_name}
        try:
            # What ``session.request`` wraps for ``async with``; awaited at once here, it needs
            # no wrapper (aiohttp is pinned <3.15, as for ``_retry_connection``).
            response = await call.session._request(call.method, target, headers=sent, **options)
        except asyncio.CancelledError as exc:
            if span is not None:
                _failed(span, exc)
            if hooks is not None:
                hooks.outcome(instance_id, False, cancelled=True)
                hooks.release(instance_id, entered)
            raise
        except BaseException as exc:
            if span is not None:
                _failed(span, exc)
            if hooks is not None:
                hooks.outcome(instance_id, False)
                hooks.release(instance_id, entered)
            if self._metrics is not None:
                self._metrics.attempt(self.name, instance_id or self.name, 0)
            raise
        if self._metrics is not None:
            self._metrics.attempt(self.name, instance_id or self.name, response.status)
        if span is not None:
            _answered(span, response.status)
        if hooks is not None:
            hooks.outcome(instance_id, response.status < 500)
            _release_with(response, hooks, instance_id, entered)
        return response

    def _span(
        self,
        method: str,
        target: URL,
        instance: ServiceInstance | None,
        number: int,
        parent: Context | None,
    ) -> Span:
        """The attempt's CLIENT span, with the attributes the gateway's client spans carry."""
        span = self._tracer.start_span(method, context=parent, kind=SpanKind.CLIENT)
        if not span.is_recording():
            return span  # no SDK, or not sampled: nothing to describe
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "server.address": target.host or "",
            "server.port": target.port or 0,
        }
        if instance is not None:
            attributes["gateway.service"] = self.name
            attributes["gateway.instance"] = instance.instance_id
        if number > 1:
            attributes["http.request.resend_count"] = number - 1
            attributes["gateway.retry.attempt"] = number
        span.set_attributes(attributes)
        return span

    def _target(
        self, url: URL, tried: set[str], lane: str | None
    ) -> tuple[URL, ServiceInstance | None]:
        picker = self._picker
        if picker is None:
            return url, None
        instance = picker.pick(tried, None, lane)
        # The last target built for each instance, reused while the instance and the URL are
        # the same objects (a URL made from the same text is: yarl keeps them): building and
        # validating it again costs about what the pick itself does.
        targets = self._targets
        last = targets.get(instance.instance_id)
        if last is not None and last[0] is instance and last[1] is url:
            return last[2], instance
        target = URL.build(
            scheme="https" if instance.secure else "http",
            host=instance.host,
            port=instance.port,
            path=url.raw_path,
            query_string=url.raw_query_string,
            encoded=True,
        )
        if len(targets) >= _MAX_TARGETS:
            targets.clear()  # instances come and go: start over rather than grow
        targets[instance.instance_id] = (instance, url, target)
        return target, instance


def _answered(span: Span, status: int) -> None:
    """The response head is the end of the attempt's span (its body is the caller's)."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def _failed(span: Span, exc: BaseException) -> None:
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
    span.end()


def _release_with(
    response: Response, hooks: AttemptHooks, instance_id: str | None, entered: Bulkhead | None
) -> None:
    """Free the attempt's slots when its response is over: at once when its body already is
    (none, or read with the head), else when aiohttp releases or closes its connection."""
    done = False

    def release() -> None:
        nonlocal done
        if not done:
            done = True
            hooks.release(instance_id, entered)

    connection = response.connection
    if connection is None:
        release()
    else:
        connection.add_callback(release)
