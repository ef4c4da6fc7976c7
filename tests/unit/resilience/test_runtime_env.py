"""``RuntimeSettings.from_env``: a service's mesh client reads the gateway's own variables for
ejection, the retry budget and the breaker, with the gateway's ranges and defaults."""

from __future__ import annotations

import pytest

from discovery.consul.settings import ConsulSettings, filter_from_env
from discovery.errors import DiscoveryConfigError
from discovery.mesh.policy import ServicePolicy
from gateway.errors import ConfigError
from gateway.settings import Settings, load_settings
from resilience.runtime import RUNTIME_FIELDS, RuntimeSettings

ENV = {
    "GATEWAY_OUTLIER_CONSECUTIVE_FAILURES": "3",
    "GATEWAY_OUTLIER_BASE_EJECTION": "10s",
    "GATEWAY_OUTLIER_MAX_EJECTION_PERCENT": "25",
    "GATEWAY_RETRY_BUDGET_RATIO": "0.5",
    "GATEWAY_RETRY_BUDGET_MIN": "4",
    "GATEWAY_BREAKER_FAIL_MAX": "7",
    "GATEWAY_BREAKER_RESET_TIMEOUT": "PT1M",
    "GATEWAY_RETRY_MAX_BODY": "2048",
    "GATEWAY_ZONE": "eu-1",
}


def gateways(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> RuntimeSettings:
    """What the gateway builds from the same environment (gateway/app.py's expression)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    return RuntimeSettings.of({n: getattr(settings, n) for n in RUNTIME_FIELDS}, settings.zone)


def test_every_field_is_a_gateway_setting() -> None:
    assert set(RUNTIME_FIELDS) <= set(Settings.model_fields)


def test_same_as_the_gateway_for_the_same_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RuntimeSettings.from_env(ENV)
    assert settings == gateways(ENV, monkeypatch)
    assert settings.breaker.fail_max == 7 and settings.breaker.reset_timeout == 60.0
    assert settings.outlier.base_ejection == 10.0 and settings.local_zone == "eu-1"
    assert settings.retry_max_body == 2048


def test_defaults_are_the_gateways(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert RuntimeSettings.from_env({}) == gateways({}, monkeypatch) == RuntimeSettings()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GATEWAY_BREAKER_FAIL_MAX", "0", "must be at least 1"),
        ("GATEWAY_BREAKER_FAIL_MAX", "two", "invalid literal"),
        ("GATEWAY_OUTLIER_BASE_EJECTION", "0s", "must be greater than 0"),
        ("GATEWAY_OUTLIER_MAX_EJECTION_PERCENT", "150", "must be at most 100"),
        ("GATEWAY_RETRY_BUDGET_RATIO", "-1", "must be at least 0"),
        ("GATEWAY_BREAKER_RESET_TIMEOUT", "soon", "not a duration"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"{name}: {message}"):
        RuntimeSettings.from_env({name: value})


def test_the_default_policy_takes_the_upstream_timeouts() -> None:
    policy = ServicePolicy().with_env(
        {"GATEWAY_CONNECT_TIMEOUT": "250ms", "GATEWAY_RESPONSE_TIMEOUT": "3"}
    )
    assert (policy.connect_timeout, policy.per_try_timeout) == (0.25, 3.0)
    assert ServicePolicy().with_env({}) == ServicePolicy()
    with pytest.raises(ValueError, match="GATEWAY_CONNECT_TIMEOUT: must be a positive"):
        ServicePolicy().with_env({"GATEWAY_CONNECT_TIMEOUT": "0"})


def test_consul_filters_are_the_gateways() -> None:
    env = {
        "GATEWAY_CONSUL_DATACENTER": "dc2",
        "GATEWAY_CONSUL_TAG": "blue",
        "GATEWAY_CONSUL_ACCEPT_WARNING": "true",
        "GATEWAY_CONSUL_WAIT": "5s",
    }
    settings = ConsulSettings.from_env(env, **filter_from_env(env))
    assert (settings.datacenter, settings.tag, settings.accept_warning, settings.wait) == (
        "dc2",
        "blue",
        True,
        5.0,
    )
    with pytest.raises(DiscoveryConfigError, match="GATEWAY_CONSUL_ACCEPT_WARNING"):
        filter_from_env({"GATEWAY_CONSUL_ACCEPT_WARNING": "maybe"})
    with pytest.raises(DiscoveryConfigError, match="GATEWAY_CONSUL_WAIT"):
        filter_from_env({"GATEWAY_CONSUL_WAIT": "0"})


def _edges(name: str) -> list[str]:
    spec = RUNTIME_FIELDS[name]
    if spec.kind is None:  # a duration
        return ["0", "0s", "1", "250ms"]
    step = 1 if spec.kind is int else 0.5
    edges = [spec.low - step, spec.low, spec.low + step]
    if spec.high is not None:
        edges += [spec.high, spec.high + step]
    return [str(spec.kind(edge)) for edge in edges]


@pytest.mark.parametrize(
    ("name", "text"), [(name, text) for name in RUNTIME_FIELDS for text in _edges(name)]
)
def test_the_same_values_are_refused_as_by_the_gateway(
    name: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's bounds are a copy of the gateway settings' own: at each edge both take a
    value or both refuse it."""
    variable = f"GATEWAY_{name.upper()}"
    try:
        RuntimeSettings.from_env({variable: text})
        client_takes = True
    except ValueError:
        client_takes = False
    monkeypatch.setenv(variable, text)
    try:
        load_settings()
        gateway_takes = True
    except ConfigError:
        gateway_takes = False
    assert client_takes == gateway_takes, (variable, text)
