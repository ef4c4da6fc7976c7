"""A document kept under one Consul KV key, watched with a blocking query.

The owner gets ``on_change(bytes | None)`` (None: the key doesn't exist) on the first load and
after each change; validating and applying the document is the owner's business.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from discovery.consul.client import ConsulClient
from discovery.consul.watch import BlockingWatch, WatchPolicy
from resilience.clock import Clock


def kv_watch(
    client: ConsulClient,
    key: str,
    on_change: Callable[[bytes | None], None],
    *,
    policy: WatchPolicy | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> BlockingWatch[bytes | None]:
    return BlockingWatch(
        f"consul key {key!r}",
        partial(client.kv_get, key),
        on_change,
        policy=policy,
        clock=clock,
        rng=rng,
    )
