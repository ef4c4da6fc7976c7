"""The gateway as a mesh member: what it registers in Consul about itself."""

from __future__ import annotations

import socket

from discovery.consul.registry import ConsulRegistry
from discovery.registration import Registration, default_service_id
from gateway import __version__
from gateway.settings import Settings


def self_registration(
    settings: Settings,
    consul: ConsulRegistry | None,
    port: int,
    management_port: int,
    *,
    app_health: str | None = None,
    secure: bool = False,
) -> Registration:
    """The service entry for this gateway: its proxy port, and an HTTP check on the
    management port's readiness. A sidecar (``app_health``, its app's health path) registers
    its app instead: the same address and port, checked through the proxy port, so the
    check fails when either the sidecar or the app does."""
    address = settings.advertise_address or _advertise_address(settings, consul)
    if app_health is not None:
        check_url = f"{'https' if secure else 'http'}://{address}:{port}{app_health}"
    else:
        # The agent checks the management port where it listens (127.0.0.1 by default: the
        # usual local agent); a wildcard listener is checked at the advertised address.
        wildcard = settings.management_host in ("0.0.0.0", "::", "")
        check_host = address if wildcard else settings.management_host
        check_url = f"http://{check_host}:{management_port}/actuator/health/readiness"
    return Registration(
        name=settings.service_name,
        service_id=settings.service_id or default_service_id(settings.service_name, address, port),
        address=address,
        port=port,
        check_url=check_url,
        tags=settings.tags,
        meta={"version": __version__, **settings.meta},
        check_interval=settings.check_interval,
        check_timeout=settings.check_timeout,
        deregister_critical_after=settings.deregister_critical_after,
        # Also how soon a registration lost by the agent (a restart) is noticed and redone.
        resync_interval=settings.check_interval,
    )


def _advertise_address(settings: Settings, consul: ConsulRegistry | None) -> str:
    """The proxy's own address when it listens on one; otherwise the local address this
    host uses to reach the Consul agent (what the agent will see, and can check)."""
    if settings.host not in ("0.0.0.0", "::", ""):
        return settings.host
    target = consul.settings.host if consul is not None else "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))  # UDP connect sends nothing; it only picks a route
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
