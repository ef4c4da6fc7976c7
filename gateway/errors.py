"""The gateway's own exceptions. Library errors are mapped to these at the edge that sees them;
they are mapped to HTTP responses in exactly one place (``pipeline.error_response``)."""

from __future__ import annotations


class GatewayError(Exception):
    """An error that ends a request with a specific HTTP status."""

    status: int = 500
    error: str = "Internal Server Error"

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
    """The upstream could not be reached (refused, unreachable, connect timeout, TLS failure)."""

    status = 502
    error = "Bad Gateway"


class UpstreamProtocolError(GatewayError):
    """The upstream sent something that is not HTTP/1.1, or closed mid-response."""

    status = 502
    error = "Bad Gateway"


class NoInstancesAvailable(GatewayError):
    status = 503
    error = "Service Unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    error = "Gateway Timeout"


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
