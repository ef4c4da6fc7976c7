"""Per-service call policy for the mesh client: retries with Spring Cloud Gateway's ``Retry``
vocabulary (retries, statuses, series, methods, exceptions, backoff), timeouts, the breaker,
the bulkhead, the balancer and lane strictness.

The defaults are the safe ones for calls whose effects the client cannot see:

- idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried once when the connection
  failed or was dropped before a response head came back;
- POST and PATCH are never retried unless ``methods`` lists them, and even then never after
  their bytes may have reached the service (only a failed connect, or a listed status);
- no status is retried unless ``statuses`` or ``series`` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import aiohttp

from resilience.backoff import Backoff
from resilience.balancer.factory import BalancerSpec
from resilience.breaker import BreakerPolicy
from resilience.durations import env_seconds

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

# Why an attempt failed without a response, in the policy's words.
CONNECT = "connect"  # no connection: nothing was sent
DISCONNECT = "disconnect"  # the connection broke before a response head: maybe processed
TIMEOUT = "timeout"  # the per-try timeout passed before a response head
KINDS = frozenset({CONNECT, DISCONNECT, TIMEOUT})
# SCG's exception names (and short forms) for the same failures, so a Retry written for the
# gateway reads the same here.
SCG_EXCEPTIONS: dict[str, frozenset[str]] = {
    "java.io.IOException": frozenset({CONNECT, DISCONNECT}),
    "IOException": frozenset({CONNECT, DISCONNECT}),
    "java.net.ConnectException": frozenset({CONNECT}),
    "ConnectException": frozenset({CONNECT}),
    "java.util.concurrent.TimeoutException": frozenset({TIMEOUT}),
    "org.springframework.cloud.gateway.support.TimeoutException": frozenset({TIMEOUT}),
    "TimeoutException": frozenset({TIMEOUT}),
}
SERIES = {
    "INFORMATIONAL": 1,
    "SUCCESSFUL": 2,
    "REDIRECTION": 3,
    "CLIENT_ERROR": 4,
    "SERVER_ERROR": 5,
}


def failure_kind(exc: BaseException) -> str | None:
    """The policy's name for an attempt's error; None for errors no retry is for (a bad URL, a
    TLS certificate refused, the call path's own refusals)."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return None  # the same certificate fails the same way on a retry
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CONNECT
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return DISCONNECT
    return None


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """SCG ``Retry``'s arguments. ``statuses``: codes retried; ``series``: classes retried (5 or
    ``"SERVER_ERROR"`` for every 5xx); ``methods``: the methods retried at all; ``exceptions``:
    ``connect``, ``disconnect``, ``timeout`` or SCG's exception names."""

    retries: int = 1
    statuses: frozenset[int] = frozenset()
    series: frozenset[int | str] = frozenset()
    methods: frozenset[str] = IDEMPOTENT
    exceptions: frozenset[str] = frozenset({CONNECT, DISCONNECT})
    backoff: Backoff | None = None
    # Resolved forms, computed once.
    series_codes: frozenset[int] = field(init=False, repr=False, compare=False)
    kinds: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must not be negative, got {self.retries}")
        for status in self.statuses:
            if not 100 <= status <= 599:
                raise ValueError(f"statuses: {status} is not an HTTP status")
        codes: set[int] = set()
        for entry in self.series:
            code = SERIES.get(entry.upper()) if isinstance(entry, str) else entry
            if code is None or not 1 <= code <= 5:
                raise ValueError(f"series: {entry!r} is not one of {', '.join(SERIES)} (or 1-5)")
            codes.add(code)
        unknown = sorted(m for m in self.methods if m not in METHODS)
        if unknown:
            raise ValueError(f"methods: unknown {', '.join(unknown)}")
        kinds: set[str] = set()
        for name in self.exceptions:
            if name in KINDS:
                kinds.add(name)
            elif name in SCG_EXCEPTIONS:
                kinds |= SCG_EXCEPTIONS[name]
            else:
                known = ", ".join(sorted(KINDS | SCG_EXCEPTIONS.keys()))
                raise ValueError(f"exceptions: unknown {name!r} (known: {known})")
        object.__setattr__(self, "series_codes", frozenset(codes))
        object.__setattr__(self, "kinds", frozenset(kinds))

    def retries_status(self, status: int) -> bool:
        return status in self.statuses or status // 100 in self.series_codes

    def retries_error(self, method: str, exc: BaseException) -> bool:
        """Whether an attempt of ``method`` that failed with ``exc`` is worth another (the
        method being in ``methods`` is the caller's check)."""
        kind = failure_kind(exc)
        if kind is None or kind not in self.kinds:
            return False
        # A non-idempotent request is repeated only when none of it can have arrived.
        return kind == CONNECT or method in IDEMPOTENT


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    """How the mesh client calls one service (or one direct host).

    ``per_try_timeout``: seconds from sending an attempt to its response head, and at most
    that between two reads of its body; ``timeout``: the whole call, retries included, up to
    the response head (None: no bound); ``connect_timeout``: the TCP (and TLS) connect.
    ``breaker``: ``"default"`` is the client's runtime settings' breaker (the
    ``GATEWAY_BREAKER_*`` variables with ``from_env``), None turns it off.
    ``max_concurrent``: the service's bulkhead (None: none); ``max_per_instance``: calls in
    flight to one instance. ``strict_lanes``: a lane with no instance is refused instead of
    falling back to stable."""

    retry: RetrySpec = field(default_factory=RetrySpec)
    per_try_timeout: float | None = 10.0
    timeout: float | None = 30.0
    connect_timeout: float | None = 5.0
    breaker: BreakerPolicy | Literal["default"] | None = "default"
    max_concurrent: int | None = None
    max_per_instance: int | None = None
    balancer: BalancerSpec = field(default_factory=BalancerSpec)
    strict_lanes: bool = False

    def __post_init__(self) -> None:
        for name in ("per_try_timeout", "timeout", "connect_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("max_concurrent", "max_per_instance"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")

    def with_env(self, env: Mapping[str, str], prefix: str = "GATEWAY_") -> ServicePolicy:
        """This policy with the gateway's upstream timeouts where they are set:
        ``GATEWAY_CONNECT_TIMEOUT`` the connect, ``GATEWAY_RESPONSE_TIMEOUT`` each try's wait
        for its response head (the gateway's meaning of it). ValueError names the variable."""
        connect = env_seconds(env, f"{prefix}CONNECT_TIMEOUT")
        per_try = env_seconds(env, f"{prefix}RESPONSE_TIMEOUT")
        return replace(
            self,
            connect_timeout=self.connect_timeout if connect is None else connect,
            per_try_timeout=self.per_try_timeout if per_try is None else per_try,
        )
