"""The one reading of a count that route metadata and the mesh client's ``services:``
policies both take (``max-concurrent``, ``max-concurrent-per-instance``), so a value one
accepts the other does too."""

from __future__ import annotations


def positive_int(value: object) -> int | None:
    """``10`` or ``"10"``, as Spring binds either; ``true``, ``2.5`` or ``0`` is no count:
    None when ``value`` is not a positive integer."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number >= 1 else None
