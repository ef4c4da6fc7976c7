"""SCG's CORS configuration (Spring's ``CorsConfiguration``): the global
``globalcors.cors-configurations`` (path pattern -> configuration) and a route's
``metadata.cors``, parsed and checked once into frozen values. What the gateway does with them
at request time is ``gateway.cors``'s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CorsConfiguration:
    allowed_origins: tuple[str, ...] = ()
    allowed_origin_patterns: tuple[str, ...] = ()
    allowed_methods: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = ()
    exposed_headers: tuple[str, ...] = ()
    allow_credentials: bool | None = None
    max_age: int | None = None  # seconds


def parse_cors(raw: object) -> CorsConfiguration:
    """One configuration as SCG's YAML writes it (``allowedOrigins``, ... in camelCase or
    kebab-case). Raises ``ConfigError`` naming the key at fault (without a location: the
    caller knows where the mapping is)."""
    raise NotImplementedError
