"""Discovery's own exceptions (no dependency on the gateway: services use this package too)."""

from __future__ import annotations


class DiscoveryError(Exception):
    """Base of every discovery failure."""


class DiscoveryConfigError(DiscoveryError):
    """Settings that can't work; the message names the variable."""


class RegistryUnavailable(DiscoveryError):
    """The registry (Consul agent) could not be reached or answered with an error."""
