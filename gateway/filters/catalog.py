"""The built-in SCG GatewayFilter factories, by SCG name, for the composition root to register."""

from __future__ import annotations

from gateway.extension import BuildContext, FilterFactory, GatewayFilter
from gateway.filters import (
    api_key,
    basic_auth,
    circuit_breaker,
    dedupe,
    host,
    ip_filter,
    json_body,
    jwt_auth,
    lane,
    location,
    mirror,
    parameters,
    path,
    rate_limit,
    redirect,
    request_body,
    request_headers,
    request_uri,
    response_cache,
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
    request_uri,
    request_body,
    json_body,
    response_cache,
    retry,
    circuit_breaker,
    lane,
    mirror,
    rate_limit,
    ip_filter,
    api_key,
    basic_auth,
    jwt_auth,
)


def builtin_global_filters(ctx: BuildContext) -> tuple[GatewayFilter, ...]:
    """SCG's global filters that a document's settings turn on (today only the global
    response cache), built once per route table so every route shares each."""
    cache = response_cache.global_response_cache(ctx)
    return (cache,) if cache is not None else ()


def builtin_filters() -> dict[str, FilterFactory]:
    """A new dict on every call, so callers may add their own factories to it."""
    return {factory.name: factory for module in _MODULES for factory in module.FACTORIES}
