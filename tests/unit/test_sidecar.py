"""Sidecar mode's settings (each mistake names its variable) and how the outbound port reads a
service name from a request's host."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange, Request
from gateway.headers import Headers
from gateway.settings import load_settings
from gateway.sidecar import INBOUND_ROUTE_ID, inbound_routes, service_of, sidecar_settings


def _settings(**values: Any) -> Any:
    return sidecar_settings(load_settings(mode="sidecar", **values))


def test_gateway_mode_has_no_sidecar() -> None:
    assert sidecar_settings(load_settings(sidecar_app="http://127.0.0.1:9000")) is None


def test_defaults() -> None:
    sidecar = _settings(sidecar_app="http://127.0.0.1:9000/")
    assert sidecar.app == "http://127.0.0.1:9000"
    assert sidecar.app_health == "/health"
    assert sidecar.outbound_port == 15001
    assert sidecar.inbound_lane is True  # inside the mesh, unless GATEWAY_TRUST_INBOUND_LANE
    assert _settings(sidecar_app="http://a:1", trust_inbound_lane=False).inbound_lane is False
    [route] = inbound_routes(sidecar)
    assert (route.id, route.uri, route.predicates) == (INBOUND_ROUTE_ID, sidecar.app, ())


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({}, "GATEWAY_SIDECAR_APP"),
        ({"sidecar_app": "  "}, "GATEWAY_SIDECAR_APP"),
        ({"sidecar_app": "127.0.0.1:9000"}, "GATEWAY_SIDECAR_APP"),
        ({"sidecar_app": "lb://app"}, "GATEWAY_SIDECAR_APP"),
        ({"sidecar_app": "http://127.0.0.1:9000/api"}, "GATEWAY_SIDECAR_APP"),
        ({"sidecar_app": "http://127.0.0.1:99999"}, "GATEWAY_SIDECAR_APP"),
        ({"sidecar_app": "http://a:1", "sidecar_app_health": "health"}, "HEALTH"),
    ],
)
def test_mistakes_name_the_variable(values: dict[str, Any], variable: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(**values)
    assert variable in str(refused.value)


def _exchange(host: str | None) -> Exchange:
    request = Request("GET", "/x", "", Headers())
    return Exchange(request, "127.0.0.1", 1, "127.0.0.1", 2, original_host=host)


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("billing", "billing"),
        ("billing:8080", "billing"),
        ("billing.", "billing"),
        ("Billing-V2.svc", "Billing-V2.svc"),
        ("127.0.0.1", None),
        ("127.0.0.1:15001", None),
        ("[::1]:80", None),
        ("bad_$name", None),
        ("", None),
        (None, None),
    ],
)
def test_service_of_the_host(host: str | None, service: str | None) -> None:
    assert service_of(_exchange(host)) == service
