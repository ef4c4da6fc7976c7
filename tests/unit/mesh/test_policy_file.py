"""The ``services:`` section as a mesh client reads it: the keys it shares with the gateway's
routes, its own (retry, circuit-breaker, strict-lanes), and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from discovery.mesh.policy import IDEMPOTENT, RetrySpec, ServicePolicy
from discovery.mesh.policy_file import load_policies, read_policies
from resilience.backoff import Backoff
from resilience.balancer.factory import BalancerSpec
from resilience.breaker import BreakerPolicy

BASE = ServicePolicy()


def test_every_key_sets_its_field() -> None:
    policies = read_policies(
        {
            "billing": {
                "instances": [{"host": "127.0.0.1", "port": 1}],
                "connect-timeout": 250,
                "response-timeout": 2000,
                "deadline": 5000,
                "load-balancer": "least_request",
                "max-concurrent": 10,
                "max-concurrent-per-instance": 3,
                "retry": {
                    "retries": 2,
                    "statuses": [503, "502"],
                    "series": "SERVER_ERROR",
                    "methods": "GET,POST",
                    "exceptions": ["java.net.ConnectException"],
                    "backoff": {"firstBackoff": "10ms", "maxBackoff": "100ms", "factor": 2},
                },
                "circuit-breaker": {"fail-max": 3, "reset-timeout": "5s"},
                "strict-lanes": True,
            },
            "ledger": [{"host": "127.0.0.1", "port": 2}],  # instances only: the defaults
        },
        BASE,
    )
    assert list(policies) == ["billing"]
    billing = policies["billing"]
    assert billing.connect_timeout == 0.25
    assert billing.per_try_timeout == 2.0
    assert billing.timeout == 5.0
    assert billing.balancer == BalancerSpec("least_request")
    assert (billing.max_concurrent, billing.max_per_instance) == (10, 3)
    assert billing.retry == RetrySpec(
        retries=2,
        statuses=frozenset({502, 503}),
        series=frozenset({"SERVER_ERROR"}),
        methods=frozenset({"GET", "POST"}),
        exceptions=frozenset({"java.net.ConnectException"}),
        backoff=Backoff(0.01, 0.1, 2.0, True),
    )
    assert billing.breaker == BreakerPolicy(fail_max=3, reset_timeout=5.0)
    assert billing.strict_lanes is True


def test_defaults_and_the_off_forms() -> None:
    policy = read_policies(
        {"a": {"response-timeout": -1, "circuit-breaker": False, "retry": {"retries": 0}}}, BASE
    )["a"]
    assert policy.per_try_timeout is None
    assert policy.breaker is None
    assert policy.retry.retries == 0 and policy.retry.methods == IDEMPOTENT
    assert read_policies({"a": {"circuit-breaker": True}}, BASE)["a"].breaker == "default"


def test_consistent_hash_is_the_gateways_and_the_client_keeps_its_balancer() -> None:
    policy = read_policies(
        {"a": {"load-balancer": "consistent_hash", "hash-on": "header:X-User"}}, BASE
    )["a"]
    assert policy.balancer == BASE.balancer


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"retires": 1}, r"services\.a\.retires: unknown key"),
        ({"connect-timeout": "fast"}, r"services\.a\.connect-timeout: expected a positive"),
        ({"deadline": -1}, r"services\.a\.deadline: expected a positive"),
        ({"max-concurrent": 0}, r"services\.a\.max-concurrent: expected a positive integer"),
        ({"load-balancer": "fastest"}, r"services\.a\.load-balancer"),
        ({"retry": 3}, r"services\.a\.retry: expected a mapping"),
        ({"retry": {"retry": 3}}, r"services\.a\.retry\.retry: unknown key"),
        ({"retry": {"statuses": [700]}}, r"services\.a\.retry\.statuses: 700 is not"),
        ({"retry": {"statuses": ["x"]}}, r"services\.a\.retry\.statuses: expected HTTP"),
        ({"retry": {"series": ["HUGE"]}}, r"services\.a\.retry\.series"),
        ({"retry": {"methods": ["FETCH"]}}, r"services\.a\.retry\.methods: unknown FETCH"),
        ({"retry": {"exceptions": ["Oops"]}}, r"services\.a\.retry\.exceptions: unknown"),
        ({"retry": {"backoff": {"first": 1}}}, r"retry\.backoff\.first: unknown key"),
        ({"retry": {"backoff": {"factor": 0.5}}}, r"retry\.backoff: needs firstBackoff"),
        ({"circuit-breaker": {"fail-max": 0}}, r"circuit-breaker\.fail-max: expected"),
        ({"circuit-breaker": {"reset-timeout": "x"}}, r"circuit-breaker\.reset-timeout"),
        ({"strict-lanes": "yes"}, r"services\.a\.strict-lanes: expected true or false"),
    ],
)
def test_mistakes_name_the_file_service_and_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_policies({"a": entry}, BASE, source="routes.yaml")


def test_load_policies_reads_the_top_level_section_and_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "routes.yaml"
    good.write_text(
        "spring:\n  cloud:\n    gateway:\n      routes: []\n"
        "services:\n  billing:\n    deadline: 1500\n"
    )
    assert load_policies(str(good))["billing"].timeout == 1.5
    bad = tmp_path / "bad.yaml"
    bad.write_text("services: [1, 2]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: services must be a mapping"):
        load_policies(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("services: {a: [\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        load_policies(str(broken))
    with pytest.raises(ValueError, match=r"missing\.yaml: cannot read"):
        load_policies(str(tmp_path / "missing.yaml"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_policies(str(empty)) == {}
