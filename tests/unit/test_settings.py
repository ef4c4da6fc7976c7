from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATEWAY_PORT", "GATEWAY_CONFIG", "GATEWAY_WORKERS", "GATEWAY_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert (settings.management_host, settings.management_port) == ("127.0.0.1", 8081)
    assert settings.workers == 1 and settings.config is None
    assert settings.connect_timeout == 5 and settings.response_timeout == 60
    assert settings.shutdown_timeout == 30 and not settings.management_write


def test_env_values_and_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    monkeypatch.setenv("GATEWAY_RESPONSE_TIMEOUT", "1500ms")
    monkeypatch.setenv("GATEWAY_CONNECT_TIMEOUT", "PT2S")
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "debug")
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "JSON")
    monkeypatch.setenv("GATEWAY_MANAGEMENT_WRITE", "true")
    monkeypatch.setenv("GATEWAY_CONFIG", "")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.response_timeout == 1.5 and settings.connect_timeout == 2
    assert settings.log_level == "DEBUG" and settings.log_format == "json"
    assert settings.management_write and settings.config is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_PORT", "http"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_WORKERS", "0"),
        ("GATEWAY_RESPONSE_TIMEOUT", "soon"),
        ("GATEWAY_RESPONSE_TIMEOUT", "0"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("GATEWAY_TRUSTED_PROXIES", "(unclosed"),
        ("GATEWAY_EVENT_LOOP", "trio"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
