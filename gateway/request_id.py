"""Request ids: unique per process without a syscall or uuid per request (a random per-process
prefix and a counter), short enough for logs and headers."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable


def request_id_factory(prefix: str | None = None) -> Callable[[], str]:
    base = prefix if prefix is not None else os.urandom(4).hex()
    counter = itertools.count(1)
    return lambda: f"{base}-{next(counter):x}"
