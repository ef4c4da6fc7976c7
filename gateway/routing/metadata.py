"""Route metadata the gateway itself reads (SCG's ``connect-timeout`` / ``response-timeout``,
in milliseconds), parsed once when the route is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import ConfigError

TIMEOUT_KEYS = ("connect-timeout", "response-timeout")


def route_timeouts(metadata: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(connect, response) timeouts in seconds, None where the route sets none. A value that
    is not a positive number of milliseconds is a config error, not a silent default."""
    out: list[float | None] = []
    for key in TIMEOUT_KEYS:
        value = metadata.get(key)
        if value is None:
            out.append(None)
            continue
        try:
            millis = float(str(value))
        except ValueError:
            millis = -1.0
        if millis <= 0:
            raise ConfigError(
                f"metadata {key}: expected a positive number of milliseconds, got {value!r}"
            )
        out.append(millis / 1000.0)
    return out[0], out[1]
