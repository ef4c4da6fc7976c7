"""Who may use the management port: ``GATEWAY_MANAGEMENT_TOKEN`` as a bearer token, and the
start-up rule that route writes are never open to the network.

The token, when set, guards every actuator endpoint but the two probes an orchestrator (or
the Consul agent's HTTP check) must reach without a secret: ``/actuator/health/liveness`` and
``/actuator/health/readiness``. They say UP or not and nothing else; ``/actuator/health``
itself lists routes, errors and discovery details, so it needs the token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging

from gateway.errors import ConfigError

log = logging.getLogger("meshgate.security")

OPEN_PATHS = frozenset(
    {
        "/actuator/health/liveness",
        "/actuator/health/readiness",
        # The dashboard's files (no data in them): the page asks for the token itself.
        "/dashboard",
        "/dashboard/",
        "/dashboard/{name}",
        "/dashboard/vendor/{name}",
    }
)


class BearerToken:
    """The management token. Comparison is constant-time and also hides the token's length:
    both sides are hashed first, so ``compare_digest`` always compares 32 bytes."""

    __slots__ = ("_digest",)

    def __init__(self, token: str) -> None:
        self._digest = _digest(token)

    def admits(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value presents this token (scheme ``Bearer``,
        any case, as RFC 9110 makes auth schemes case-insensitive)."""
        if authorization is None:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(_digest(credentials.strip()), self._digest)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (also written ``[::1]`` or IPv4-mapped). Anything
    else, a wildcard or another host name included, reaches beyond this machine."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_management_exposure(host: str, *, writes: bool, token: str | None) -> None:
    """Refuse (ConfigError) route writes on a management address other hosts can reach with
    no token: anyone on the network could replace the routes. Without writes, an exposed
    port with no token is allowed (metrics scrapers), with a warning."""
    if token or is_loopback(host):
        return
    if writes:
        raise ConfigError(
            f"GATEWAY_MANAGEMENT_WRITE=true on the non-loopback management address {host!r} "
            "needs GATEWAY_MANAGEMENT_TOKEN (or bind GATEWAY_MANAGEMENT_HOST to 127.0.0.1)",
            "environment",
        )
    log.warning(
        "the management port listens on %s without GATEWAY_MANAGEMENT_TOKEN: its actuator "
        "endpoints (routes, metrics, health details) are open to whoever can reach it",
        host,
    )
