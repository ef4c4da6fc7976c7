"""The Consul fixture against the real agent: health follows TTL checks, KV round-trips, and a
restart comes back on the same port with nothing in it. If these fail, the discovery tests that
build on the fixture cannot be trusted either."""

from __future__ import annotations

from tests.support.consul import ConsulAgent, wait_until


def passing_ids(consul: ConsulAgent, name: str) -> set[str]:
    return {entry["Service"]["ID"] for entry in consul.health_service(name, passing=True)}


def test_service_with_passing_ttl_check_is_healthy(consul: ConsulAgent) -> None:
    consul.register("orders", "orders-1", 8081, tags=["v1"], meta={"zone": "a"})

    wait_until(lambda: "orders-1" in passing_ids(consul, "orders"), what="orders-1 passing")
    [entry] = consul.health_service("orders", passing=True)
    assert entry["Service"]["Port"] == 8081
    assert entry["Service"]["Tags"] == ["v1"]
    assert entry["Service"]["Meta"] == {"zone": "a"}
    checks = {check["CheckID"]: check["Status"] for check in consul.health_checks("orders")}
    assert checks == {"service:orders-1": "passing"}


def test_failed_ttl_check_leaves_the_passing_list(consul: ConsulAgent) -> None:
    consul.register("orders", "orders-1", 8081)
    consul.register("orders", "orders-2", 8082)
    wait_until(lambda: passing_ids(consul, "orders") == {"orders-1", "orders-2"})

    consul.fail_ttl("orders-1")

    wait_until(lambda: passing_ids(consul, "orders") == {"orders-2"}, what="orders-1 failing")
    # Still registered, only unhealthy.
    assert {entry["ServiceID"] for entry in consul.catalog_service("orders")} == {
        "orders-1",
        "orders-2",
    }

    consul.pass_ttl("orders-1")
    wait_until(lambda: passing_ids(consul, "orders") == {"orders-1", "orders-2"})


def test_kv_round_trip(consul: ConsulAgent) -> None:
    consul.kv_put("meshgate/routes/a b", "uri: http://héllo")
    assert consul.kv_get("meshgate/routes/a b") == "uri: http://héllo"

    consul.kv_delete("meshgate/routes/a b")
    assert consul.kv_get("meshgate/routes/a b") is None


def test_restart_comes_back_on_the_same_port_with_an_empty_catalog(consul: ConsulAgent) -> None:
    port = consul.port
    consul.register("orders", "orders-1", 8081)
    wait_until(lambda: consul.catalog_service("orders"), what="orders in the catalog")

    consul.restart(down_for=0.2)

    assert consul.port == port
    assert consul.leader()
    assert consul.catalog_service("orders") == []
    assert set(consul.catalog_services()) <= {"consul"}


def test_reset_leaves_no_services_and_no_keys(consul: ConsulAgent) -> None:
    consul.register("orders", "orders-1", 8081)
    consul.kv_put("meshgate/x", "1")
    wait_until(lambda: consul.catalog_service("orders"))

    consul.reset()

    assert set(consul.catalog_services()) <= {"consul"}
    assert consul.kv_get("meshgate/x") is None
