"""The built-in SCG GatewayFilter factories, by SCG name, for the composition root to register."""

from __future__ import annotations

from gateway.extension import FilterFactory
from gateway.filters import (
    circuit_breaker,
    dedupe,
    host,
    location,
    parameters,
    path,
    redirect,
    request_headers,
    response_headers,
    retry,
    secure_headers,
    size,
    status,
)

_MODULES = (
    request_headers,
    response_headers,
    dedupe,
    path,
    parameters,
    status,
    redirect,
    size,
    host,
    secure_headers,
    location,
    retry,
    circuit_breaker,
)


def builtin_filters() -> dict[str, FilterFactory]:
    """A new dict on every call, so callers may add their own factories to it."""
    return {factory.name: factory for module in _MODULES for factory in module.FACTORIES}
