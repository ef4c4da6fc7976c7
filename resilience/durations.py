"""Durations as Spring writes them (``10s``, ``500ms``, ISO-8601 ``PT1S``, or a bare number in
a default unit): the one parser for the route file's arguments and the ``GATEWAY_*`` timeouts,
kept here so that a service's mesh client reads its environment exactly as the gateway does."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|us|ns)?\s*$", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any, default_unit: str = "ms") -> float:
    """Spring's duration forms: ``10s``, ``500ms``, ISO-8601 ``PT1S``, or a bare number in
    ``default_unit``. Returns seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value) * _UNIT_SECONDS[default_unit]
    text = str(value).strip()
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or default_unit).lower()]
    iso = _ISO_DURATION.match(text)
    if iso and text.upper() not in ("P", "PT"):
        d, h, m, s = (float(iso.group(g) or 0) for g in "dhms")
        return d * 86400 + h * 3600 + m * 60 + s
    raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 10s, PT1S)")


def parse_millis(value: Any, *, negative_is_off: bool = False) -> float:
    """A route-metadata timeout (SCG's ``connect-timeout``, ``response-timeout``; our
    ``deadline``): a positive number of milliseconds, as seconds. With ``negative_is_off`` a
    negative one (SCG's ``-1``) means none: ``math.inf``. ValueError says what was expected."""
    try:
        millis = float(str(value))
    except ValueError:
        millis = math.nan
    if negative_is_off and millis < 0:
        return math.inf
    if not millis > 0 or millis == math.inf:
        expected = "a positive number of milliseconds"
        if negative_is_off:
            expected += " or -1 (no timeout)"
        raise ValueError(f"expected {expected}, got {value!r}")
    return millis / 1000.0


def env_seconds(env: Mapping[str, str], variable: str) -> float | None:
    """A positive duration from ``variable`` (a bare number is seconds), None when it is unset
    or blank. ValueError names the variable."""
    text = env.get(variable, "").strip()
    if not text:
        return None
    try:
        seconds = parse_duration(text, default_unit="s")
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from None
    if seconds <= 0:
        raise ValueError(f"{variable}: must be a positive duration, got {text!r}")
    return seconds
