"""Circuit breaker for async calls, built on pybreaker.

pybreaker keeps the state machine (closed -> open -> half-open -> closed/open), the failure
counter and the listeners; this module adapts it to asyncio and to an injected clock:

* pybreaker is not asyncio-native (``call_async`` needs Tornado, and decorating an
  ``async def`` only wraps the creation of the coroutine, so failures are never counted). Its
  ``calling()`` context manager does work across an ``await``: the outcome is reported when
  the ``with`` block exits, which is after the awaited call finished.
* pybreaker's half-open state lets every concurrent caller through, which on a busy gateway
  means a stampede at a service that is just recovering. ``Breaker`` admits at most
  ``half_open_probes`` calls in flight itself, before pybreaker sees them.
* pybreaker decides open -> half-open with ``datetime.now(UTC)``; ``_ClockStorage`` makes
  that comparison follow the injected clock (see there).

A cancelled call counts as a failure, like any exception: the usual cause is a timeout
wrapped around the call. Keep timeouts for single attempts inside ``fn`` so that they surface
as ``TimeoutError``; cancellation from a client going away is rare enough not to matter.

A closed breaker, the state nearly every call meets, does not go through pybreaker's generic
call machinery (a lock, a generator wrapped in a context manager, listener loops: most of the
breaker's cost per call) but does what pybreaker's closed state does: a success resets the
failure counter, a failure goes to pybreaker's own handler on that state (the counter, the
exclusions, tripping open, the listeners). Every other state takes pybreaker's own path.
``begin``/``finish`` are the same admission and outcome as ``call`` for a caller that makes
its call inline instead of passing a coroutine function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker

from resilience.clock import Clock
from resilience.errors import CallError

T = TypeVar("T")

StateChange = Callable[[str, str, str], None]
"""Called with (breaker name, old state, new state); states are "closed", "open",
"half-open"."""

CLOSED = pybreaker.STATE_CLOSED
OPEN = pybreaker.STATE_OPEN
HALF_OPEN = pybreaker.STATE_HALF_OPEN


@dataclass(frozen=True)
class BreakerPolicy:
    fail_max: int = 5
    reset_timeout: float = 30.0
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        if self.fail_max < 1:
            raise ValueError("fail_max must be at least 1")
        if self.reset_timeout < 0:
            raise ValueError("reset_timeout must not be negative")
        if self.half_open_probes < 1:
            raise ValueError("half_open_probes must be at least 1")


class CircuitOpen(CallError):
    """A call refused by the breaker without being made: it is open, or half-open with every
    probe slot taken. ``retry_after`` is the number of seconds until it will admit a probe
    (0.0 when half-open: a slot frees up when a probe finishes)."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open")
        self.name = name
        self.retry_after = retry_after


class _CountAsFailure(Exception):
    """Raised inside pybreaker's ``with`` block to make it count a result as a failure; never
    escapes ``Breaker.call``."""


class Admission:
    """One admitted call (``Breaker.begin``), to be reported with ``Breaker.finish``: the
    closed state it was admitted in (``closed``), or pybreaker's ``calling()`` context it
    entered (``manager``), and whether it holds a half-open probe slot."""

    __slots__ = ("closed", "manager", "probe")

    def __init__(
        self,
        closed: pybreaker.CircuitBreakerState | None,
        manager: AbstractContextManager[object] | None,
        probe: bool,
    ) -> None:
        self.closed = closed
        self.manager = manager
        self.probe = probe


class _ClockStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-memory storage with ``opened_at`` taken from the injected clock.

    pybreaker sets ``opened_at = datetime.now(UTC)`` on opening and later checks
    ``datetime.now(UTC) < opened_at + reset_timeout``. Instead of storing that datetime we
    record ``clock.monotonic()``, and reading ``opened_at`` returns "the wall-clock now minus
    the time elapsed on our clock since opening". pybreaker's own comparison then reduces to
    ``elapsed_on_our_clock < reset_timeout`` (give or take the microseconds between our
    ``now`` and its own), so a fake clock in tests, or a monotonic one in production (immune
    to wall-clock steps), decides when the breaker half-opens.

    The state and the failure counter are plain attributes (``current``, ``failures``) behind
    pybreaker's storage interface, so the breaker's closed fast path reads and resets them
    without a call."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(CLOSED)
        self._clock = clock
        self._opened_mono: float | None = None
        self.current = CLOSED
        self.failures = 0

    @property
    def state(self) -> str:
        return self.current

    @state.setter
    def state(self, state: str) -> None:
        self.current = state

    @property
    def counter(self) -> int:
        return self.failures

    def increment_counter(self) -> None:
        self.failures += 1

    def reset_counter(self) -> None:
        self.failures = 0

    @property
    def opened_at(self) -> datetime | None:
        if self._opened_mono is None:
            return None
        elapsed = self._clock.monotonic() - self._opened_mono
        return datetime.now(UTC) - timedelta(seconds=elapsed)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        # The datetime pybreaker passes is its wall-clock now; only the moment matters.
        self._opened_mono = self._clock.monotonic()

    @property
    def opened_monotonic(self) -> float | None:
        return self._opened_mono


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, name: str, callback: StateChange) -> None:
        self._name = name
        self._callback = callback

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        # pybreaker only notifies after construction, so old_state is always set in practice.
        old = old_state.name if old_state is not None else CLOSED
        self._callback(self._name, old, new_state.name)


class Breaker:
    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock,
        on_state_change: StateChange | None = None,
        exclude: Sequence[type[BaseException]] = (),
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._storage = _ClockStorage(clock)
        self._probes = 0
        # The admission of calls in the closed state: one per closed state object (pybreaker
        # makes a new one on every change), so a closed call allocates nothing.
        self._closed: Admission | None = None
        listeners = [_Listener(name, on_state_change)] if on_state_change is not None else []
        self._cb = pybreaker.CircuitBreaker(
            fail_max=policy.fail_max,
            reset_timeout=policy.reset_timeout,
            # The first successful probe closes the circuit; half_open_probes only limits how
            # many are in flight at once.
            success_threshold=1,
            listeners=listeners,
            state_storage=self._storage,
            name=name,
            # On the tripping call, let the caller see the real error (or, for is_failure, get
            # the result back) rather than pybreaker's CircuitBreakerError.
            throw_new_error_on_trip=False,
            # Failures that say nothing about the protected service (the caller went away,
            # the caller's own load shedding) don't count against it.
            exclude=list(exclude),
        )

    @property
    def state(self) -> str:
        """One of "closed", "open" or "half-open". An open breaker whose reset_timeout has passed
        still reads "open" until the next call makes it half-open (pybreaker's lazy check)."""
        return self._cb.current_state

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        is_failure: Callable[[T], bool] | None = None,
    ) -> T:
        """Run ``fn`` through the breaker. An exception from ``fn`` counts as a failure and is
        re-raised; a result for which ``is_failure`` is true counts as a failure too but is
        still returned (the caller may pass a 503 on or map it to a fallback). Raises
        ``CircuitOpen`` without calling ``fn`` when the breaker refuses."""
        admission = self.begin()
        try:
            result = await fn()
            failed = is_failure is not None and is_failure(result)
        except BaseException as exc:
            self.finish(admission, exc)
            if isinstance(exc, pybreaker.CircuitBreakerError):
                raise CircuitOpen(self.name, self._retry_after()) from exc
            raise
        self.finish(admission, failure=failed)
        return result

    def begin(self) -> Admission:
        """Admit one call, or raise ``CircuitOpen`` without it. Report its outcome with
        ``finish`` exactly once, whatever happens to it (a cancellation too)."""
        # What pybreaker's ``state`` property answers when its cached state and the storage
        # agree (else it catches up first, which its own path below does).
        state = self._cb._state
        if type(state) is pybreaker.CircuitClosedState and self._storage.current == CLOSED:
            # ``_admit`` admits a closed call as no probe, and pybreaker's closed state lets it
            # through without looking at anything: the outcome is all that matters.
            admission = self._closed
            if admission is None or admission.closed is not state:
                admission = self._closed = Admission(state, None, False)
            return admission
        probe = self._admit()
        manager = self._cb.calling()
        try:
            manager.__enter__()
        except BaseException as exc:
            if probe:
                self._probes -= 1
            if isinstance(exc, pybreaker.CircuitBreakerError):
                # Only possible if pybreaker's own timeout check disagrees with ``_admit``
                # about the open state; the call is not made either way.
                raise CircuitOpen(self.name, self._retry_after()) from exc
            raise
        return Admission(None, manager, probe)

    def finish(
        self, admission: Admission, error: BaseException | None = None, *, failure: bool = False
    ) -> None:
        """The outcome of a call ``begin`` admitted: ``error``, the exception it raised, or
        none (a result: a success, unless ``failure`` says it counts as a failure). Returns
        normally once the breaker has taken note (the caller raises ``error`` if it is one);
        raises only what pybreaker raises in its place (``CircuitOpen`` for its own error)."""
        if error is None and failure:
            error = _CountAsFailure()
        closed = admission.closed
        try:
            if closed is not None:
                if error is None:
                    # pybreaker's closed-state success: the counter reset, then hooks that do
                    # nothing here (the closed state's on_success, our listener's success).
                    self._storage.failures = 0
                else:
                    # The state the call was admitted in decides, as in pybreaker's own path.
                    closed._handle_error(error, reraise=False)
            elif error is None:
                assert admission.manager is not None
                admission.manager.__exit__(None, None, None)
            else:
                assert admission.manager is not None
                admission.manager.__exit__(type(error), error, error.__traceback__)
        except BaseException as raised:
            if raised is error:
                return  # pybreaker re-raising the call's own error (tripping does)
            if isinstance(raised, pybreaker.CircuitBreakerError):
                raise CircuitOpen(self.name, self._retry_after()) from raised
            raise
        finally:
            if admission.probe:
                self._probes -= 1

    def snapshot(self) -> dict[str, str | int | float | None]:
        opened = self._storage.opened_monotonic
        state = self.state
        return {
            "state": state,
            "failures": self._cb.fail_counter,
            "opened_seconds_ago": (
                None if state == CLOSED or opened is None else self._clock.monotonic() - opened
            ),
            "probes_in_flight": self._probes,
        }

    def _admit(self) -> bool:
        """Decide whether a call may go ahead, before pybreaker sees it; returns whether it is
        a half-open probe (whose slot must be given back when it finishes)."""
        state = self._cb.current_state
        if state == CLOSED:
            return False
        if state == OPEN and self._retry_after() > 0:
            raise CircuitOpen(self.name, self._retry_after())
        # Half-open, or open with the timeout passed: pybreaker will turn it half-open when
        # this call enters ``calling()``. Either way the call is a probe.
        if self._probes >= self.policy.half_open_probes:
            raise CircuitOpen(self.name, 0.0)
        self._probes += 1
        return True

    def _retry_after(self) -> float:
        opened = self._storage.opened_monotonic
        if opened is None:
            return 0.0
        return max(0.0, self.policy.reset_timeout - (self._clock.monotonic() - opened))


class BreakerRegistry:
    """One breaker per name (usually per service), created on first use. A policy passed to
    ``get`` applies only when that call creates the breaker."""

    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Clock,
        on_state_change: StateChange | None = None,
        exclude: Sequence[type[BaseException]] = (),
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._on_state_change = on_state_change
        self._exclude = tuple(exclude)
        self._breakers: dict[str, Breaker] = {}

    def get(self, name: str, policy: BreakerPolicy | None = None) -> Breaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = Breaker(
                name, policy or self._policy, self._clock, self._on_state_change, self._exclude
            )
            self._breakers[name] = breaker
        return breaker

    def snapshot(self) -> dict[str, dict[str, str | int | float | None]]:
        return {name: breaker.snapshot() for name, breaker in self._breakers.items()}
