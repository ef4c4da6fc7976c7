"""The gateway's own exceptions. Library errors are mapped to these at the edge that sees them;
they are mapped to HTTP responses in exactly one place (``dispatch.error_response``); the call
path's own refusals (``resilience.errors``) become these in ``from_call_error``."""

from __future__ import annotations

from resilience.breaker import CircuitOpen
from resilience.errors import CallError, DeadlineExceeded, NoInstanceAvailable
from resilience.errors import ServiceOverloaded as CallShed


class GatewayError(Exception):
    """An error that ends a request with a specific HTTP status."""

    status: int = 500
    error: str = "Internal Server Error"
    # Seconds for a Retry-After header (load shedding), or None.
    retry_after: float | None = None
    # The path a request refused before it became an exchange asked for (its error body's
    # ``path``), when its target could be read that far.
    path: str = ""
    # What a 5xx's body may say (its ``message`` stays in the log): fixed text with no
    # address or detail in it.
    public_message: str = ""

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message or self.error)
        if status is not None:
            self.status = status
        self.message = message or self.error


class BadRequest(GatewayError):
    status = 400
    error = "Bad Request"


class NotFound(GatewayError):
    status = 404
    error = "Not Found"


class PayloadTooLarge(GatewayError):
    status = 413
    error = "Payload Too Large"


class HeadersTooLarge(GatewayError):
    status = 431
    error = "Request Header Fields Too Large"


class UpstreamConnectError(GatewayError):
    """The upstream could not be reached (refused, unreachable, TLS failure); a connect timeout
    is ``UpstreamTimeout`` (504)."""

    status = 502
    error = "Bad Gateway"


class UpstreamCertificateError(UpstreamConnectError):
    """The upstream's TLS certificate was not accepted (untrusted, expired, or not for the name
    connected to). A connect failure like any other (retries, outlier ejection), with a body
    that says which kind."""

    public_message = "the upstream's TLS certificate could not be verified"


class UpstreamProtocolError(GatewayError):
    """The upstream sent something that is not HTTP/1.1, or closed mid-response."""

    status = 502
    error = "Bad Gateway"


class NoInstancesAvailable(GatewayError):
    status = 503
    error = "Service Unavailable"


class ServiceOverloaded(GatewayError):
    """A bulkhead is full: the request is shed now rather than queued."""

    status = 503
    error = "Service Unavailable"
    retry_after: float | None = 1.0


class BreakerOpen(GatewayError):
    status = 503
    error = "Service Unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    error = "Gateway Timeout"


def from_call_error(exc: CallError) -> GatewayError:
    """The gateway's error for a refusal of the call path (no instance, a full bulkhead, the
    deadline, an open breaker), keeping its message."""
    message = str(exc)
    error: GatewayError
    if isinstance(exc, NoInstanceAvailable):
        error = NoInstancesAvailable(message)
    elif isinstance(exc, CallShed):
        error = ServiceOverloaded(message)
        error.retry_after = exc.retry_after
    elif isinstance(exc, DeadlineExceeded):
        error = UpstreamTimeout(message)
    elif isinstance(exc, CircuitOpen):
        error = BreakerOpen(message or "circuit open")
    else:
        error = GatewayError(message)
    error.__cause__ = exc
    return error


class ConfigError(Exception):
    """Invalid configuration. ``location`` names the file, route and item; ``reason`` says why."""

    def __init__(self, reason: str, location: str = "") -> None:
        self.reason = reason
        self.location = location
        super().__init__(f"{location}: {reason}" if location else reason)

    def at(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` prepended to its location (outer context first)."""
        location = f"{prefix} {self.location}".strip() if self.location else prefix
        return ConfigError(self.reason, location)
