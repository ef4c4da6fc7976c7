"""Per-service resilience state shared by every caller of a service: in-flight counts (for
least-request and the per-instance limit), passive outlier detection, the retry budget and the
bulkhead; and the circuit breakers, by name.

``AttemptHooks`` is what a transport calls around each attempt to a balanced instance; it is the
only place outcomes are recorded, so ejection, budgets and load counts agree on what an attempt
was. The gateway's forwarder is one such transport, an east-west client another.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from resilience.active import ActiveRequests
from resilience.breaker import BreakerPolicy, BreakerRegistry, StateChange
from resilience.budget import BudgetPolicy, RetryBudget
from resilience.bulkhead import Bulkhead
from resilience.clock import Clock, SystemClock
from resilience.durations import parse_duration
from resilience.errors import ServiceOverloaded
from resilience.outlier import OutlierDetector, OutlierPolicy


class CallEvents(Protocol):
    """Where the call path reports what metrics count (the gateway's Prometheus counters)."""

    def retry(self, service: str) -> None: ...

    def budget_exhausted(self, service: str) -> None: ...


DEFAULT_RETRY_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Variable:
    """How one variable's text is read: a whole count, a ratio or a duration (seconds), and
    the range the gateway's own settings allow."""

    kind: type[int] | type[float] | None  # None: a duration
    low: float
    high: float | None = None
    low_open: bool = False  # the low bound itself refused

    def read(self, text: str) -> int | float:
        kind = self.kind
        value = parse_duration(text, default_unit="s") if kind is None else kind(text)
        if value < self.low or (self.low_open and value == self.low):
            bound = "greater than" if self.low_open else "at least"
            raise ValueError(f"must be {bound} {self.low:g}")
        if self.high is not None and value > self.high:
            raise ValueError(f"must be at most {self.high:g}")
        return value


# The ``GATEWAY_*`` variables (lower-cased, without the prefix: the gateway's settings field
# names) that shape the call path.
RUNTIME_FIELDS: dict[str, _Variable] = {
    "outlier_consecutive_failures": _Variable(int, 1),
    "outlier_base_ejection": _Variable(None, 0, low_open=True),
    "outlier_max_ejection_percent": _Variable(float, 0, 100),
    "retry_budget_ratio": _Variable(float, 0, 10),
    "retry_budget_min": _Variable(int, 0),
    "breaker_fail_max": _Variable(int, 1),
    "breaker_reset_timeout": _Variable(None, 0, low_open=True),
    "retry_max_body": _Variable(int, 0),
}


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    outlier: OutlierPolicy = field(default_factory=OutlierPolicy)
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    # The largest request body kept so that a retry can send it again.
    retry_max_body: int = DEFAULT_RETRY_MAX_BODY
    local_zone: str | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any], local_zone: str | None = None) -> RuntimeSettings:
        """From ``RUNTIME_FIELDS``' values (the gateway's settings, or ``from_env``'s); a
        field left out keeps its default. ValueError when a policy refuses a value."""
        outlier, budget, breaker = OutlierPolicy(), BudgetPolicy(), BreakerPolicy()
        return cls(
            outlier=OutlierPolicy(
                consecutive_failures=values.get(
                    "outlier_consecutive_failures", outlier.consecutive_failures
                ),
                base_ejection=values.get("outlier_base_ejection", outlier.base_ejection),
                max_ejection_percent=values.get(
                    "outlier_max_ejection_percent", outlier.max_ejection_percent
                ),
            ),
            budget=BudgetPolicy(
                ratio=values.get("retry_budget_ratio", budget.ratio),
                min_retries_per_window=values.get(
                    "retry_budget_min", budget.min_retries_per_window
                ),
            ),
            breaker=BreakerPolicy(
                fail_max=values.get("breaker_fail_max", breaker.fail_max),
                reset_timeout=values.get("breaker_reset_timeout", breaker.reset_timeout),
            ),
            retry_max_body=values.get("retry_max_body", DEFAULT_RETRY_MAX_BODY),
            local_zone=local_zone,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str = "GATEWAY_") -> RuntimeSettings:
        """The gateway's variables for the same settings (``GATEWAY_BREAKER_FAIL_MAX``, ...,
        ``GATEWAY_ZONE``), so a service's mesh client is tuned as its gateway is. ValueError
        names the variable."""
        values: dict[str, int | float] = {}
        for name, variable_spec in RUNTIME_FIELDS.items():
            variable = f"{prefix}{name.upper()}"
            text = env.get(variable, "").strip()
            if not text:
                continue
            try:
                values[name] = variable_spec.read(text)
            except ValueError as exc:
                raise ValueError(f"{variable}: {exc} (got {text!r})") from None
        return cls.of(values, env.get(f"{prefix}ZONE", "").strip() or None)


class ServiceRuntime:
    __slots__ = ("active", "budget", "bulkhead", "name", "outlier", "track_active")

    def __init__(self, name: str, settings: RuntimeSettings, clock: Clock) -> None:
        self.name = name
        self.active = ActiveRequests()
        self.outlier = OutlierDetector(settings.outlier, clock)
        self.budget = RetryBudget(settings.budget, clock)
        self.bulkhead: Bulkhead | None = None
        # In-flight counts cost a little on every request: kept only once a caller of this
        # service needs them (least_request, a per-instance limit).
        self.track_active = False

    def limit(self, max_concurrent: int | None) -> None:
        """Cap concurrent calls to this service (None: no cap). Attempts in flight leave
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
    """One ServiceRuntime per service name (or ``host:port`` for fixed addresses), made on
    first use and kept across route reloads, so a reload doesn't forget ejections or budgets."""

    def __init__(
        self,
        settings: RuntimeSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        on_breaker_change: StateChange | None = None,
        events: CallEvents | None = None,
    ) -> None:
        self.settings = settings or RuntimeSettings()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.events = events
        self._services: dict[str, ServiceRuntime] = {}
        self._caps: dict[str, int] = {}
        self.breakers = BreakerRegistry(
            self.settings.breaker,
            self.clock,
            on_breaker_change,
            # The caller going away and our own load shedding say nothing about the service.
            exclude=(asyncio.CancelledError, ServiceOverloaded),
        )

    def get(self, name: str) -> ServiceRuntime:
        runtime = self._services.get(name)
        if runtime is None:
            runtime = self._services[name] = ServiceRuntime(name, self.settings, self.clock)
        return runtime

    def begin_build(self) -> None:
        """A new set of callers (a route table) is being built: collect the caps they ask for."""
        self._caps = {}

    def want_limit(self, service: str, max_concurrent: int) -> None:
        caps = self._caps
        caps[service] = min(caps.get(service, max_concurrent), max_concurrent)

    def commit_build(self) -> None:
        """The new callers are in: each service gets the smallest cap they ask for, or none
        (a reload can raise or remove a cap, not only tighten it)."""
        caps = self._caps
        for name in set(caps) | set(self._services):
            if name in caps or self._services[name].bulkhead is not None:
                self.get(name).limit(caps.get(name))

    def known(self) -> dict[str, ServiceRuntime]:
        return dict(self._services)


class AttemptHooks:
    """Called by a transport around one attempt to a balanced instance of one service."""

    __slots__ = ("_runtime", "_total")

    def __init__(self, runtime: ServiceRuntime, total: Callable[[], int]) -> None:
        self._runtime = runtime
        # How many instances the service has now: outlier detection caps ejections by it.
        self._total = total

    def begin(self, instance_id: str | None) -> Bulkhead | None:
        """Returns the bulkhead entered (hand it back to ``release``: a reload may swap the
        service's bulkhead while this attempt runs). Raises ServiceOverloaded when it is full."""
        runtime = self._runtime
        bulkhead = runtime.bulkhead
        if bulkhead is not None and not bulkhead.try_enter():
            raise ServiceOverloaded(f"service {runtime.name!r} is at its concurrency limit")
        if runtime.track_active and instance_id is not None:
            runtime.active.begin(instance_id)
        return bulkhead

    def outcome(self, instance_id: str | None, ok: bool, cancelled: bool = False) -> None:
        """``ok`` False: the attempt failed (no response — connect, reset, timeout — or a
        server error); ``cancelled``: nobody wanted the answer any more (client gone, a hedge
        lost, a deadline), which says nothing about the instance."""
        if instance_id is None or cancelled:
            return
        if ok:
            self._runtime.outlier.record(instance_id, True, 0)  # the total matters only to eject
        else:
            self._runtime.outlier.record(instance_id, False, self._total())

    def release(self, instance_id: str | None, bulkhead: Bulkhead | None) -> None:
        """The response is over (its body streamed, failed or dropped): free its slots."""
        if bulkhead is not None:
            bulkhead.leave()
        if instance_id is not None and self._runtime.track_active:
            self._runtime.active.end(instance_id)
