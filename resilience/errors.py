"""Failures the call path decides on its own, before or instead of calling an instance.

They carry no transport or HTTP meaning: the caller maps them once at its edge (the gateway to
503/504 responses, an east-west client to whatever its callers expect).
"""

from __future__ import annotations


class CallError(Exception):
    """Base of the call path's own refusals."""


class NoInstanceAvailable(CallError):
    """The service has no instance to call: none registered, or every one ejected."""


class ServiceOverloaded(CallError):
    """A bulkhead or per-instance limit is full: shed the call now rather than queue it.
    ``retry_after`` is the hint, in seconds, for when to try again."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(CallError):
    """The whole call, retries included, ran past its deadline."""
