"""The budgeted retry loop, on tenacity.

- the caller's ``attempt`` is called again while the policy says its result or error is worth
  retrying, up to ``retries`` more times and within ``timeout``, waiting ``backoff`` between
  attempts (tenacity drives the loop, ``resilience.backoff`` computes the waits);
- retries are paid from the service's ``RetryBudget``: a failing service never receives more
  than (1 + ratio) * its calls, plus a small floor, however many callers retry;
- a call whose request body can't be sent again (``Replayable.replayable`` false: part of a
  body too large to keep already went out) is not retried;
- a result that is retried is handed to ``drop`` (a streamed response body must be released
  unread), and ``before_retry`` runs before each new attempt (restore the request, rewind the
  body).

Which instance an attempt goes to is the picker's business: the caller keeps a tried set on
its call state that the picker reads and adds to, so each retry goes somewhere new.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import tenacity

from resilience.backoff import Backoff, BackoffWait
from resilience.budget import RetryBudget
from resilience.runtime import CallEvents

R = TypeVar("R")


class Replayable(Protocol):
    """The body-replay hook: can the request go out again as it was first sent?"""

    @property
    def replayable(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy(Generic[R]):
    """``retries`` after the first attempt. ``retry_on_result`` / ``retry_on_error`` say which
    outcomes are worth another attempt (status codes, methods, error kinds: the caller's
    vocabulary). ``timeout``: no retry starts once this many seconds have passed."""

    retries: int
    retry_on_result: Callable[[R], bool]
    retry_on_error: Callable[[BaseException], bool]
    backoff: Backoff | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive")


class Retrier(Generic[R]):
    """One per caller (a route, a client method): the policy and what it reports to."""

    __slots__ = ("_describe", "_drop", "_events", "_policy", "_rng")

    def __init__(
        self,
        policy: RetryPolicy[R],
        *,
        rng: random.Random,
        drop: Callable[[R], None] | None = None,
        events: CallEvents | None = None,
        describe: Callable[[R], str] = repr,
    ) -> None:
        """``drop`` releases a result that is retried; ``describe`` names a result in the
        retry log (e.g. ``status 503``)."""
        self._policy = policy
        self._describe = describe
        self._rng = rng
        self._drop = drop
        self._events = events

    @property
    def policy(self) -> RetryPolicy[R]:
        return self._policy

    async def run(
        self,
        attempt: Callable[[int], Awaitable[R]],
        *,
        service: str | None = None,
        budget: RetryBudget | None = None,
        replay: Replayable | None = None,
        before_retry: Callable[[int, str], None] | None = None,
    ) -> R:
        """Call ``attempt(n)`` for n = 1, 2, … until an outcome is not retried; return its
        result or raise its error. ``before_retry(n, why)`` runs before attempt n > 1, with
        the last outcome described for the log."""
        # The common case without tenacity: a first outcome the policy would never retry is
        # the answer (tenacity builds and steps a state machine per call: most of a retried
        # call's overhead when nothing is retried). Otherwise its loop takes over, the first
        # trial replaying the outcome already had, its clock started when the call did.
        started = self.begin(budget)
        known: R | None = None
        known_error: Exception | None = None
        try:
            known = await attempt(1)
        except Exception as exc:
            if not self.retries_error(exc):
                raise
            known_error = exc  # retried outside this handler: no implicit exception chaining
        else:
            if not self.retries_result(known):
                return known
        return await self.resume(
            attempt,
            started,
            known,
            known_error,
            service=service,
            budget=budget,
            replay=replay,
            before_retry=before_retry,
        )

    # ``run`` in steps, for a caller that makes the first attempt inline (no coroutine to
    # hand over per call): ``begin``, the attempt, then ``resume`` only when ``retries_error``
    # or ``retries_result`` says its outcome may be retried.
    def begin(self, budget: RetryBudget | None = None) -> float:
        """Count the call in ``budget``; returns its start, for ``resume``."""
        if budget is not None:
            budget.record_request()
        return time.monotonic()

    def retries_error(self, exc: BaseException) -> bool:
        """Whether the first attempt's error may be retried (else it is the answer)."""
        policy = self._policy
        return policy.retries > 0 and policy.retry_on_error(exc)

    def retries_result(self, result: R) -> bool:
        """Whether the first attempt's result may be retried (else it is the answer)."""
        policy = self._policy
        return policy.retries > 0 and policy.retry_on_result(result)

    async def resume(
        self,
        attempt: Callable[[int], Awaitable[R]],
        started: float,
        known: R | None,
        known_error: Exception | None,
        *,
        service: str | None = None,
        budget: RetryBudget | None = None,
        replay: Replayable | None = None,
        before_retry: Callable[[int, str], None] | None = None,
    ) -> R:
        """The rest of ``run`` after a first attempt (``known``, or ``known_error``) that may
        be retried: attempts 2, 3, … as the policy, the budget and the time left allow."""
        policy = self._policy
        events = self._events

        def should_retry(state: tenacity.RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None or state.attempt_number > policy.retries:
                return False
            elapsed = state.seconds_since_start
            if policy.timeout is not None and elapsed is not None and elapsed >= policy.timeout:
                return False  # tenacity would stop anyway; don't spend budget on it
            if outcome.failed:
                exc = outcome.exception()
                if exc is None or not policy.retry_on_error(exc):
                    return False
            elif not policy.retry_on_result(outcome.result()):
                return False
            if replay is not None and not replay.replayable:
                return False  # part of a body too large to keep was sent
            if budget is not None and not budget.try_retry():
                if events is not None and service:
                    events.budget_exhausted(service)
                return False
            if events is not None:
                events.retry(service or "")
            return True

        def prepare_next(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            if outcome is not None and not outcome.failed and self._drop is not None:
                self._drop(outcome.result())
            if before_retry is not None:
                before_retry(state.attempt_number + 1, _outcome_text(state, self._describe))

        stop: Any = tenacity.stop_never
        if policy.timeout is not None:
            stop = tenacity.stop_after_delay(policy.timeout)
        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=BackoffWait(policy.backoff, self._rng)
            if policy.backoff is not None
            else tenacity.wait_none(),
            retry=_Predicate(should_retry),
            before_sleep=prepare_next,
            retry_error_callback=_last_outcome,
            sleep=asyncio.sleep,
        )
        last: R | None = None
        number = 0
        # tenacity's iterator raises the final error itself; when it stops on a result, that
        # result (``last``) is the answer.
        async for trial in retrying:
            with trial:
                number += 1
                if number == 1:
                    trial.retry_state.start_time = started
                    if known_error is not None:
                        raise known_error
                    last = known
                else:
                    last = await attempt(number)
            outcome = trial.retry_state.outcome
            if outcome is not None and not outcome.failed:
                trial.retry_state.set_result(last)
        assert last is not None
        return last


class _Predicate(tenacity.retry_base):
    def __init__(self, decide: Callable[[tenacity.RetryCallState], bool]) -> None:
        self._decide = decide

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._decide(retry_state)


def _last_outcome(state: tenacity.RetryCallState) -> Any:
    """Out of time or attempts: the last answer stands (a result, or its error)."""
    outcome = state.outcome
    assert outcome is not None
    return outcome.result()


def _outcome_text(state: tenacity.RetryCallState, describe: Callable[[Any], str]) -> str:
    outcome = state.outcome
    if outcome is None:
        return "nothing"
    if outcome.failed:
        exc = outcome.exception()
        return f"{type(exc).__name__}: {exc}"
    return describe(outcome.result())
