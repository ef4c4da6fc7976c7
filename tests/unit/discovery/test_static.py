from __future__ import annotations

from discovery.instance import ServiceInstance
from discovery.static import StaticRegistry


async def test_static_registry_snapshot_and_replace() -> None:
    a = ServiceInstance("orders", "o1", "10.0.0.1", 80, metadata={"zone": "a"})
    registry = StaticRegistry({"orders": [a]})
    await registry.start()
    assert registry.ready
    assert registry.instances("orders") == (a,)
    assert registry.instances("nope") == ()
    assert a.address == "10.0.0.1:80" and a.zone == "a"
    registry.replace({"users": []})
    assert registry.services() == ["users"]
    assert registry.instances("orders") == ()
    await registry.stop()


def test_static_registry_ids_compare_case_insensitively() -> None:
    a = ServiceInstance("Orders-Svc", "o1", "10.0.0.1", 80)
    registry = StaticRegistry({"Orders-Svc": [a]})
    assert registry.has("orders-svc") and registry.has("ORDERS-SVC")
    assert registry.instances("orders-svc") == (a,)
    assert registry.services() == ["Orders-Svc"]  # listed as configured
