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
