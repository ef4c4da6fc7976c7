"""The in-process mesh client: a Python service's own outbound calls through discovery and
resilience, the same call path the gateway drives (``MeshClient``); the aiohttp middleware that
carries an inbound request's trace and lane on (``mesh_middleware``); and self-registration in
Consul as an aiohttp ``cleanup_ctx`` (``registration_ctx``).

It lives in ``discovery`` because it needs the registries, and ``resilience`` (below) must not
import ``discovery``; nothing here imports ``gateway``.
"""

from __future__ import annotations

from discovery.mesh.client import MeshClient, RequestContext
from discovery.mesh.context import CallContext, call_context, current
from discovery.mesh.middleware import make_mesh_middleware, mesh_middleware
from discovery.mesh.policy import IDEMPOTENT, RetrySpec, ServicePolicy
from discovery.mesh.registration import MeshRegistration, registration_ctx

__all__ = [
    "IDEMPOTENT",
    "CallContext",
    "MeshClient",
    "MeshRegistration",
    "RequestContext",
    "RetrySpec",
    "ServicePolicy",
    "call_context",
    "current",
    "make_mesh_middleware",
    "mesh_middleware",
    "registration_ctx",
]
