"""Per-service resilience state shared by every route to a service: in-flight counts (for
least-request and the per-instance limit), passive outlier detection, the retry budget and the
bulkhead. Per-route state (balancer, breaker) lives with the route.

``AttemptHooks`` is what the forwarder calls around each upstream attempt; it is the only place
outcomes are recorded, so ejection, budgets and load counts agree on what an attempt was.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from resilience.active import ActiveRequests
from resilience.breaker import BreakerPolicy, BreakerRegistry
from resilience.budget import BudgetPolicy, RetryBudget
from resilience.bulkhead import Bulkhead
from resilience.clock import Clock, SystemClock
from resilience.outlier import OutlierDetector, OutlierPolicy

if TYPE_CHECKING:
    from gateway.exchange import Exchange, Response, Target


# Exchange attribute: instance ids already tried by this request (retries and hedges avoid them).
TRIED_INSTANCES = "meshgate.tried_instances"


class ServiceOverloaded(GatewayError):
    """A bulkhead is full: shed the request now rather than queue it."""

    status = 503
    error = "Service Unavailable"
    retry_after = 1


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    outlier: OutlierPolicy = field(default_factory=OutlierPolicy)
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    retry_max_body: int = 1024 * 1024
    local_zone: str | None = None


class ServiceRuntime:
    __slots__ = ("active", "budget", "bulkhead", "name", "outlier", "track_active")

    def __init__(self, name: str, settings: RuntimeSettings, clock: Clock) -> None:
        self.name = name
        self.active = ActiveRequests()
        self.outlier = OutlierDetector(settings.outlier, clock)
        self.budget = RetryBudget(settings.budget, clock)
        self.bulkhead: Bulkhead | None = None
        # In-flight counts cost a little on every request: kept only once a route to this
        # service needs them (least_request, a per-instance limit).
        self.track_active = False

    def limit(self, max_concurrent: int | None) -> None:
        """Cap concurrent requests to this service (None: no cap). Attempts in flight leave
        the bulkhead they entered, so a new cap only counts new attempts."""
        if max_concurrent is None:
            self.bulkhead = None
        elif self.bulkhead is None or self.bulkhead.max_concurrent != max_concurrent:
            self.bulkhead = Bulkhead(max_concurrent)

    def snapshot(self) -> dict[str, Any]:
        return {
            "outlier": self.outlier.snapshot(),
            "retryBudget": self.budget.stats(),
            "bulkhead": None
            if self.bulkhead is None
            else {
                "maxConcurrent": self.bulkhead.max_concurrent,
                "active": self.bulkhead.active,
                "rejected": self.bulkhead.rejected,
            },
        }


class ServiceRuntimes:
    """One ServiceRuntime per service name (or ``host:port`` for static URIs), made on first
    use and kept across route reloads, so a reload doesn't forget ejections or budgets."""

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        on_breaker_change: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.settings = settings or RuntimeSettings()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self._services: dict[str, ServiceRuntime] = {}
        self._caps: dict[str, int] = {}
        self.breakers = BreakerRegistry(
            self.settings.breaker,
            self.clock,
            on_breaker_change,
            exclude=(asyncio.CancelledError, ServiceOverloaded),
        )
        # Set by the composition root: how a fallback re-enters routing (forward:/path), and
        # where retries and spent budgets are counted.
        self.dispatch: Dispatch | None = None
        self.metrics: Any = None

    def get(self, name: str) -> ServiceRuntime:
        runtime = self._services.get(name)
        if runtime is None:
            runtime = self._services[name] = ServiceRuntime(name, self.settings, self.clock)
        return runtime

    def begin_build(self) -> None:
        """A route table is being compiled: collect the caps its routes ask for."""
        self._caps = {}

    def want_limit(self, service: str, max_concurrent: int) -> None:
        caps = self._caps
        caps[service] = min(caps.get(service, max_concurrent), max_concurrent)

    def commit_build(self) -> None:
        """The table is in: each service gets the smallest cap its routes ask for, or none
        (a reload can raise or remove a cap, not only tighten it)."""
        caps = self._caps
        for name in set(caps) | set(self._services):
            if name in caps or self._services[name].bulkhead is not None:
                self.get(name).limit(caps.get(name))

    def known(self) -> dict[str, ServiceRuntime]:
        return dict(self._services)


def service_key(target: Target) -> str:
    """What a runtime is keyed by: the discovery name, or the address of a fixed URI."""
    return target.service or f"{target.host}:{target.port}"


class AttemptHooks:
    """Called by the forwarder around one upstream attempt to a balanced instance."""

    __slots__ = ("_runtime", "_total")

    def __init__(self, runtime: ServiceRuntime, total: Callable[[], int]) -> None:
        self._runtime = runtime
        self._total = total

    def begin(self, target: Target) -> Bulkhead | None:
        """Returns the bulkhead entered (hand it back to ``end``: a reload may swap the
        service's bulkhead while this attempt runs)."""
        runtime = self._runtime
        bulkhead = runtime.bulkhead
        if bulkhead is not None and not bulkhead.try_enter():
            raise ServiceOverloaded(f"service {runtime.name!r} is at its concurrency limit")
        if runtime.track_active and target.instance_id is not None:
            runtime.active.begin(target.instance_id)
        return bulkhead

    def outcome(self, target: Target, status: int | None, cancelled: bool = False) -> None:
        """``status`` None: the attempt failed without a response (connect, reset, timeout);
        ``cancelled``: nobody wanted the answer any more (client gone, a hedge lost, a
        deadline), which says nothing about the instance."""
        instance = target.instance_id
        if instance is None or cancelled:
            return
        if status is not None and status < 500:
            self._runtime.outlier.record(instance, True, 0)  # the total matters only to eject
        else:
            self._runtime.outlier.record(instance, False, self._total())

    def release(self, target: Target, bulkhead: Bulkhead | None) -> None:
        """The response is over (its body streamed, failed or dropped): free its slots."""
        if bulkhead is not None:
            bulkhead.leave()
        instance = target.instance_id
        if instance is not None and self._runtime.track_active:
            self._runtime.active.end(instance)


Dispatch = Callable[["Exchange"], Awaitable["Response"]]
