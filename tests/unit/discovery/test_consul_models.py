"""Consul health entries → instances, and CONSUL_* settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from discovery.consul.models import health_status, parse_entry, routable
from discovery.consul.settings import ConsulSettings
from discovery.errors import DiscoveryConfigError


def entry(
    *,
    checks: list[tuple[str, str]],
    address: str = "10.0.0.5",
    node_address: str = "10.0.0.1",
    weights: dict[str, int] | None = None,
    tags: list[str] | None = None,
    meta: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "Node": {"Node": "n1", "Address": node_address, "Meta": {"zone": "z1"}},
        "Service": {
            "ID": "orders-1",
            "Service": "orders",
            "Address": address,
            "Port": 9000,
            "Tags": tags or [],
            "Meta": meta or {},
            "Weights": weights or {"Passing": 1, "Warning": 1},
        },
        "Checks": [{"CheckID": cid, "Status": status} for cid, status in checks],
    }


def test_worst_check_wins() -> None:
    assert health_status([{"CheckID": "a", "Status": "passing"}]) == "passing"
    assert (
        health_status(
            [{"CheckID": "a", "Status": "passing"}, {"CheckID": "b", "Status": "warning"}]
        )
        == "warning"
    )
    assert health_status([{"CheckID": "serfHealth", "Status": "critical"}]) == "critical"
    assert health_status([{"CheckID": "_node_maintenance", "Status": "critical"}]) == "maintenance"
    assert (
        health_status([{"CheckID": "_service_maintenance:orders-1", "Status": "critical"}])
        == "maintenance"
    )


def test_service_address_falls_back_to_the_node_address() -> None:
    assert parse_entry(entry(checks=[], address="")).instance.host == "10.0.0.1"
    assert parse_entry(entry(checks=[])).instance.host == "10.0.0.5"


def test_tags_meta_zone_and_weights_are_carried() -> None:
    health = parse_entry(
        entry(
            checks=[("service:orders-1", "warning")],
            weights={"Passing": 10, "Warning": 2},
            tags=["v2", "https"],
            meta={"version": "2"},
        )
    )
    instance = health.instance
    assert instance.tags == ("v2", "https")
    assert instance.metadata["version"] == "2"
    assert instance.zone == "z1"  # from the node's meta when the service has none
    assert instance.weight == 2  # the Warning weight while warning
    assert instance.secure
    assert health.status == "warning"


def test_only_passing_instances_are_routable_unless_warning_is_accepted() -> None:
    passing = parse_entry(entry(checks=[("c", "passing")]))
    warning = parse_entry(entry(checks=[("c", "warning")]))
    critical = parse_entry(entry(checks=[("c", "critical")]))
    zero = parse_entry(entry(checks=[("c", "passing")], weights={"Passing": 0, "Warning": 0}))
    entries = (passing, warning, critical, zero)
    assert routable(entries, accept_warning=False) == (passing.instance,)
    assert routable(entries, accept_warning=True) == (passing.instance, warning.instance)


def test_settings_from_the_standard_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = ConsulSettings.from_env(
        {
            "CONSUL_HTTP_ADDR": "https://consul.internal:8501",
            "CONSUL_HTTP_TOKEN": "secret",
            "CONSUL_CACERT": str(ca),
        },
        datacenter="dc2",
    )
    assert (settings.scheme, settings.host, settings.port) == ("https", "consul.internal", 8501)
    assert settings.token == "secret"
    assert settings.ca_file == str(ca)
    assert settings.datacenter == "dc2"
    plain = ConsulSettings.from_env({"CONSUL_HTTP_ADDR": "127.0.0.1:18500"})
    assert plain.address == "http://127.0.0.1:18500"
    assert ConsulSettings.from_env({}).address == "http://127.0.0.1:8500"
    forced = ConsulSettings.from_env({"CONSUL_HTTP_ADDR": "h:1", "CONSUL_HTTP_SSL": "true"})
    assert forced.scheme == "https"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CONSUL_HTTP_ADDR": "h:notaport"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_ADDR": "ftp://h:1"}, "CONSUL_HTTP_ADDR"),
        ({"CONSUL_HTTP_SSL": "maybe"}, "CONSUL_HTTP_SSL"),
        ({"CONSUL_CACERT": "/nonexistent/ca.pem"}, "CONSUL_CACERT"),
        ({"CONSUL_CLIENT_CERT": "/etc/hostname"}, "CONSUL_CLIENT_KEY"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(DiscoveryConfigError, match=names):
        ConsulSettings.from_env(env)


def test_instance_ids_include_the_node_so_same_named_services_differ() -> None:
    one = parse_entry(entry(checks=[]))
    assert one.instance.instance_id == "orders-1@n1"
    other = entry(checks=[])
    other["Node"]["Node"] = "n2"
    assert parse_entry(other).instance.instance_id == "orders-1@n2"
