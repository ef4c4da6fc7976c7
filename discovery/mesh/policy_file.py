"""Per-service mesh-client policies from the route file's top-level ``services:`` section, the
same section the gateway reads, so one file tunes a service's calls wherever they are made.

Each service is ``name: [instances]`` (no policy: the defaults) or ``name: {instances: [...],
<policy keys>}``. The keys the gateway's routes honour too, in their route-metadata units:
``connect-timeout`` and ``response-timeout`` (ms; ``-1``: none), ``deadline`` (ms, the whole
call with its retries), ``load-balancer``, ``max-concurrent``, ``max-concurrent-per-instance``.
The keys only a mesh client reads (a gateway route says the same with its own ``Retry``,
``CircuitBreaker`` and ``LaneStrict`` filters): ``retry`` (SCG ``Retry``'s arguments),
``circuit-breaker`` (``false``, or ``fail-max`` and ``reset-timeout``) and ``strict-lanes``.
A ``consistent_hash`` balancer is the gateway's alone (it hashes the inbound request).

Instances are the gateway's to read: the client finds its instances through its registry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

import yaml

from discovery.mesh.policy import IDEMPOTENT, RetrySpec, ServicePolicy
from resilience.backoff import Backoff
from resilience.balancer.factory import BalancerSpec, balancer_of
from resilience.breaker import BreakerPolicy
from resilience.counts import positive_int
from resilience.durations import parse_duration, parse_millis

SHARED_KEYS = (
    "connect-timeout",
    "response-timeout",
    "deadline",
    "load-balancer",
    "hash-on",
    "max-concurrent",
    "max-concurrent-per-instance",
)
CLIENT_KEYS = ("retry", "circuit-breaker", "strict-lanes")
RETRY_KEYS = ("retries", "statuses", "series", "methods", "exceptions", "backoff")
BACKOFF_KEYS = ("firstBackoff", "maxBackoff", "factor", "basedOnPreviousValue")
BREAKER_KEYS = ("fail-max", "reset-timeout")


class PolicyError(ValueError):
    """A policy value that is wrong; the message names the key."""


def load_policies(path: str, base: ServicePolicy | None = None) -> dict[str, ServicePolicy]:
    """The policy of every service ``path``'s ``services:`` lists, each over ``base``.
    ValueError names the file, the service and the key."""
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top, got {type(document).__name__}")
    return read_policies(document.get("services"), base or ServicePolicy(), source=path)


def read_policies(
    raw: object, base: ServicePolicy, *, source: str = "services"
) -> dict[str, ServicePolicy]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: services must be a mapping of service name to its entry")
    policies: dict[str, ServicePolicy] = {}
    for name, entry in raw.items():
        if not isinstance(entry, Mapping):
            continue  # a list of instances: the defaults
        keys = {str(k): v for k, v in entry.items() if k != "instances"}
        if not keys:
            continue
        try:
            policies[str(name)] = service_policy(keys, base)
        except PolicyError as exc:
            raise ValueError(f"{source}: services.{name}.{exc}") from None
    return policies


def check_client_keys(policy: Mapping[str, Any]) -> None:
    """The client-only keys of one ``services:`` entry, checked as a client would read them
    (the gateway's ``meshgate validate`` runs this too). PolicyError names the key."""
    service_policy({k: v for k, v in policy.items() if k in CLIENT_KEYS}, ServicePolicy())


def service_policy(keys: Mapping[str, Any], base: ServicePolicy) -> ServicePolicy:
    """``base`` with what ``keys`` set; unknown keys are refused (PolicyError)."""
    known = SHARED_KEYS + CLIENT_KEYS
    _only(keys, known, "")
    policy = base
    if "connect-timeout" in keys:
        policy = replace(policy, connect_timeout=_millis(keys, "connect-timeout"))
    if "response-timeout" in keys:
        policy = replace(policy, per_try_timeout=_millis(keys, "response-timeout", off=True))
    if "deadline" in keys:
        policy = replace(policy, timeout=_millis(keys, "deadline"))
    if "load-balancer" in keys or "hash-on" in keys:
        spec = _balancer(keys)
        # consistent_hash hashes a part of the gateway's inbound request; a client's own call
        # has none to hash, so its client keeps the default balancer (README's policy table).
        if spec.policy != "consistent_hash":
            policy = replace(policy, balancer=spec)
    if "max-concurrent" in keys:
        policy = replace(policy, max_concurrent=_positive(keys["max-concurrent"], "max-concurrent"))
    if "max-concurrent-per-instance" in keys:
        key = "max-concurrent-per-instance"
        policy = replace(policy, max_per_instance=_positive(keys[key], key))
    if "retry" in keys:
        policy = replace(policy, retry=_retry(keys["retry"]))
    if "circuit-breaker" in keys:
        policy = replace(policy, breaker=_breaker(keys["circuit-breaker"]))
    if "strict-lanes" in keys:
        value = keys["strict-lanes"]
        if not isinstance(value, bool):
            raise PolicyError(f"strict-lanes: expected true or false, got {value!r}")
        policy = replace(policy, strict_lanes=value)
    return policy


def _only(raw: Mapping[Any, Any], known: tuple[str, ...], where: str) -> None:
    """Refuse the first key of ``raw`` not in ``known`` (PolicyError naming it)."""
    unknown = sorted(set(map(str, raw)) - set(known))
    if unknown:
        raise PolicyError(f"{where}{unknown[0]}: unknown key (known: {', '.join(known)})")


def _millis(keys: Mapping[str, Any], key: str, *, off: bool = False) -> float | None:
    """The route-metadata reading of a timeout (``-1``: none, which is None here)."""
    try:
        seconds = parse_millis(keys[key], negative_is_off=off)
    except ValueError as exc:
        raise PolicyError(f"{key}: {exc}") from None
    return None if seconds == math.inf else seconds


def _positive(value: object, key: str) -> int:
    number = positive_int(value)
    if number is None:
        raise PolicyError(f"{key}: expected a positive integer, got {value!r}")
    return number


def _balancer(keys: Mapping[str, Any]) -> BalancerSpec:
    try:
        return balancer_of(keys.get("load-balancer"), keys.get("hash-on"))
    except ValueError as exc:
        raise PolicyError(f"load-balancer: {exc}") from None


def _items(value: object, key: str) -> list[object]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    raise PolicyError(f"retry.{key}: expected a list, got {value!r}")


def _retry(raw: object) -> RetrySpec:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"retry: expected a mapping of Retry's arguments, got {raw!r}")
    _only(raw, RETRY_KEYS, "retry.")
    retries = raw.get("retries", 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise PolicyError(f"retry.retries: expected 0 or more, got {retries!r}")
    try:
        statuses = frozenset(int(str(s)) for s in _items(raw.get("statuses", []), "statuses"))
    except ValueError:
        raise PolicyError(
            f"retry.statuses: expected HTTP status codes, got {raw['statuses']!r}"
        ) from None
    series = frozenset(
        int(s) if isinstance(s, int) else str(s).upper()
        for s in _items(raw.get("series", []), "series")
    )
    methods = (
        frozenset(str(m).strip().upper() for m in _items(raw["methods"], "methods"))
        if "methods" in raw
        else IDEMPOTENT
    )
    exceptions = (
        frozenset(str(e).strip() for e in _items(raw["exceptions"], "exceptions"))
        if "exceptions" in raw
        else RetrySpec().exceptions
    )
    try:
        return RetrySpec(
            retries=retries,
            statuses=statuses,
            series=series,
            methods=methods,
            exceptions=exceptions,
            backoff=_backoff(raw.get("backoff")),
        )
    except PolicyError:
        raise
    except ValueError as exc:
        raise PolicyError(f"retry.{exc}") from None


def _backoff(raw: object) -> Backoff | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise PolicyError(f"retry.backoff: expected a mapping, got {raw!r}")
    _only(raw, BACKOFF_KEYS, "retry.backoff.")
    try:
        first = parse_duration(raw.get("firstBackoff", "5ms"))
        maximum = parse_duration(raw["maxBackoff"]) if "maxBackoff" in raw else None
        factor = float(raw.get("factor", 2))
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"retry.backoff: {exc}") from None
    based = raw.get("basedOnPreviousValue", True)
    if not isinstance(based, bool):
        raise PolicyError(
            f"retry.backoff.basedOnPreviousValue: expected true or false, got {based!r}"
        )
    if first <= 0 or factor < 1 or (maximum is not None and maximum < first):
        raise PolicyError(
            "retry.backoff: needs firstBackoff > 0, factor >= 1 and maxBackoff >= firstBackoff"
        )
    return Backoff(first, maximum, factor, based)


def _breaker(raw: object) -> BreakerPolicy | Literal["default"] | None:
    if raw is False:
        return None
    if raw is True:
        return "default"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"circuit-breaker: expected false, true or a mapping, got {raw!r}")
    _only(raw, BREAKER_KEYS, "circuit-breaker.")
    defaults = BreakerPolicy()
    fail_max = raw.get("fail-max", defaults.fail_max)
    if isinstance(fail_max, bool) or not isinstance(fail_max, int) or fail_max < 1:
        raise PolicyError(
            f"circuit-breaker.fail-max: expected a positive integer, got {fail_max!r}"
        )
    try:
        reset = parse_duration(raw.get("reset-timeout", defaults.reset_timeout), default_unit="s")
    except ValueError as exc:
        raise PolicyError(f"circuit-breaker.reset-timeout: {exc}") from None
    if reset <= 0:
        raise PolicyError("circuit-breaker.reset-timeout: must be a positive duration")
    return BreakerPolicy(fail_max=fail_max, reset_timeout=reset)
