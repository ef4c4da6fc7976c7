"""Consul's ``/v1/health/service`` entries → ``ServiceInstance`` plus the health the gateway
routes on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from discovery.instance import ServiceInstance

# Worst first. A node or service in maintenance mode shows a critical check with these ids.
_RANK = {"critical": 3, "maintenance": 3, "warning": 2, "passing": 1}
_MAINTENANCE = ("_service_maintenance", "_node_maintenance")


@dataclass(frozen=True, slots=True)
class InstanceHealth:
    instance: ServiceInstance
    status: str  # passing | warning | critical | maintenance
    node: str
    checks: tuple[tuple[str, str, str], ...]  # (check id, status, output)


def health_status(checks: Sequence[Mapping[str, Any]]) -> str:
    """The worst check wins: one critical node or service check makes the instance critical."""
    worst = "passing"
    for check in checks:
        check_id = str(check.get("CheckID", ""))
        status = str(check.get("Status", "critical"))
        if check_id.startswith(_MAINTENANCE):  # also "_service_maintenance:<service id>"
            status = "maintenance"
        if _RANK.get(status, 3) > _RANK[worst]:
            worst = status if status in _RANK else "critical"
    return worst


def parse_entry(entry: Mapping[str, Any]) -> InstanceHealth:
    node = entry.get("Node") or {}
    service = entry.get("Service") or {}
    checks = entry.get("Checks") or []
    status = health_status(checks)
    # An empty service address means "the node's address" (Consul's own rule).
    host = str(service.get("Address") or node.get("Address") or "")
    meta = {str(k): str(v) for k, v in (service.get("Meta") or {}).items()}
    tags = tuple(str(t) for t in service.get("Tags") or ())
    weights = service.get("Weights") or {}
    weight = weights.get("Warning", 1) if status == "warning" else weights.get("Passing", 1)
    name = str(service.get("Service", ""))
    # TLS to the instance: meta secure=true, or a "secure" (or "https") tag.
    secure = meta.get("secure", "").strip().lower() == "true" or "secure" in tags or "https" in tags
    server_name = (meta.get("tls_server_name", "").strip() or None) if secure else None
    zone = meta.get("zone")
    if zone is None and node.get("Meta"):
        node_zone = node["Meta"].get("zone")
        if node_zone:
            meta["zone"] = str(node_zone)
    node_name = str(node.get("Node", ""))
    service_id = str(service.get("ID") or name)
    instance = ServiceInstance(
        service=name,
        # Service ids are unique per agent only (and default to the name): with the node,
        # the id tells instances on different nodes apart (ejection, retries, hashing).
        instance_id=f"{service_id}@{node_name}" if node_name else service_id,
        host=host,
        port=int(service.get("Port") or 0),
        secure=secure,
        weight=max(0, int(weight)),
        metadata=meta,
        tags=tags,
        tls_server_name=server_name,
    )
    return InstanceHealth(
        instance=instance,
        status=status,
        node=node_name,
        checks=tuple(
            (str(c.get("CheckID", "")), str(c.get("Status", "")), str(c.get("Output", ""))[:200])
            for c in checks
        ),
    )


def routable(
    entries: Sequence[InstanceHealth], accept_warning: bool
) -> tuple[ServiceInstance, ...]:
    """Instances a request may go to: passing (and warning, when accepted) with a weight > 0."""
    ok = ("passing", "warning") if accept_warning else ("passing",)
    return tuple(
        e.instance
        for e in entries
        if e.status in ok and e.instance.weight > 0 and e.instance.host and e.instance.port
    )
