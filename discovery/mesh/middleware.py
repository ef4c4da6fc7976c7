"""``mesh_middleware``: an aiohttp server middleware that makes an inbound request's trace and
lane the current ``CallContext`` while its handler runs, so every ``MeshClient`` call the
handler makes (in its own task or the tasks it starts) carries them on.

The inbound ``lane`` is trusted: a service is called by the gateway (which drops a client's
lane unless told to trust it) or by other services. ``make_mesh_middleware(trust_lane=False)``
is the middleware for a service reachable from outside the mesh.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from discovery.mesh.context import call_context, from_headers


def make_mesh_middleware(*, trust_lane: bool = True) -> Middleware:
    @web.middleware
    async def mesh(request: web.Request, handler: Handler) -> web.StreamResponse:
        with call_context(from_headers(request.headers, trust_lane=trust_lane)):
            return await handler(request)

    return mesh


mesh_middleware = make_mesh_middleware()
