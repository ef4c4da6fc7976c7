"""The dashboard's data on the management port (ours, not SCG's):

- ``GET /actuator/gateway/stats``: per route and per service instance, request rate, error
  rate and p50/p99 latency over the last 1 and 5 minutes, in flight, and each instance's
  health, ejection, lane, zone and weight, the services' breakers and snapshot age; the whole
  gateway's series (one point per 5 s) for the charts;
- ``GET /actuator/gateway/stats/stream``: the same as Server-Sent Events, once a second;
- ``GET /actuator/gateway/config``: the route sources, the last reload and the last error.

Numbers are every worker's (``observability/live.py``); breaker and ejection state are the
management worker's view, as on ``/actuator/gateway/services``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from discovery.lane import lane_of
from gateway.management.responses import error_response, json_response
from gateway.management.view import ManagementView

STREAM_INTERVAL = 1.0
WRITE_TIMEOUT = 5.0
# Each stream costs a task and a JSON document a second: a handful of dashboards is plenty.
MAX_STREAMS = 16


class Streams:
    """The open event streams and the one JSON document they share per sample."""

    def __init__(self) -> None:
        self.open = 0
        self._sampled: float | None = None
        self._text = ""

    def document(self, gw: ManagementView) -> str:
        sampled = gw.live.sampled_at
        if sampled is None or sampled != self._sampled:
            self._text = json.dumps(stats_view(gw), separators=(",", ":"), default=str)
            self._sampled = sampled
        return self._text


STREAMS_KEY = web.AppKey("live-streams", Streams)


def breakers_by_service(gw: ManagementView) -> dict[str, dict[str, Any]]:
    """Each service's circuit breakers (the CircuitBreaker filters of the routes to it)."""
    breakers = gw.runtimes.breakers.snapshot()
    out: dict[str, dict[str, Any]] = {}
    for route in gw.table:
        for gateway_filter in route.filters:
            name = getattr(gateway_filter, "breaker_name", None)
            if name is not None and route.uri.service is not None and name in breakers:
                out.setdefault(route.uri.service, {})[name] = breakers[name]
    return out


def stats_view(gw: ManagementView) -> dict[str, Any]:
    live = gw.live
    now = time.time()
    breakers = breakers_by_service(gw)
    runtimes = gw.runtimes.known()
    services: list[dict[str, Any]] = []
    for view in gw.registry.describe():
        name = view["service"]
        runtime = runtimes.get(name)
        outlier = runtime.outlier.snapshot() if runtime is not None else {}
        instances = []
        for instance in view.get("instances") or ():
            metadata = instance.get("metadata") or {}
            iid = instance["instanceId"]
            until = (outlier.get(iid) or {}).get("ejected_until")
            ejected = until is not None and until > now
            instances.append(
                {
                    "instanceId": iid,
                    "host": instance.get("host"),
                    "port": instance.get("port"),
                    "lane": lane_of(metadata, instance.get("tags") or ()),
                    "zone": metadata.get("zone"),
                    "weight": instance.get("weight"),
                    "health": instance.get("health"),
                    "healthy": bool(instance.get("routable", True)) and not ejected,
                    "ejected": ejected,
                    "ejectedUntil": until if ejected else None,
                    **live.instance(name, iid),
                }
            )
        services.append(
            {
                "service": name,
                "source": view.get("source"),
                "snapshotAgeSeconds": view.get("snapshotAgeSeconds"),
                "error": view.get("error"),
                "breakers": {
                    breaker: state.get("state") for breaker, state in breakers.get(name, {}).items()
                },
                "instances": instances,
            }
        )
    return {
        "timestamp": live.sampled_at,
        "workers": gw.settings.workers,
        "windows": ["1m", "5m"],
        "totals": live.totals(),
        "series": live.series(),
        "routes": [{"id": r.id, "uri": r.uri.raw, **live.route(r.id)} for r in gw.table],
        "unrouted": live.route(""),
        "services": services,
    }


def config_view(gw: ManagementView) -> dict[str, Any]:
    manager = gw.routes
    settings = gw.settings
    file = manager.file_config
    kv = manager.kv_config
    sources: list[dict[str, Any]] = [
        {
            "kind": "file",
            "location": settings.config or "(embedded defaults)",
            "routes": len(file.routes),
        }
    ]
    if settings.discovery_mode == "consul" and settings.consul_routes_key:
        sources.append(
            {
                "kind": "consul-kv",
                "location": settings.consul_routes_key,
                "routes": len(kv.routes) if kv is not None else 0,
            }
        )
    sources.append(
        {
            "kind": "actuator",
            "location": "POST /actuator/gateway/routes/{id}",
            "routes": len(manager.api_definitions),
            "writable": settings.management_write,
        }
    )
    return {
        "sources": sources,
        "routes": len(gw.table),
        "lastReload": manager.built_at,
        "lastReloadOk": manager.last_error is None,
        "lastError": manager.last_error,
        "lastErrorAt": manager.failed_at,
        "discovery": settings.discovery_mode,
        "workers": settings.workers,
        "managementTokenRequired": settings.management_token is not None,
    }


def add_routes(app: web.Application, key: web.AppKey[ManagementView], *, stats: bool) -> None:
    """``stats``: serve the live numbers (``GATEWAY_DASHBOARD``); the config view always."""
    app[STREAMS_KEY] = Streams()

    async def stats_handler(request: web.Request) -> web.Response:
        return json_response(stats_view(request.app[key]))

    async def config(request: web.Request) -> web.Response:
        return json_response(config_view(request.app[key]))

    async def stream(request: web.Request) -> web.StreamResponse:
        gw = request.app[key]
        streams = request.app[STREAMS_KEY]
        if streams.open >= MAX_STREAMS:
            return error_response(503, f"{MAX_STREAMS} stat streams are open already", request.path)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a buffering proxy in front would hold events
            }
        )
        streams.open += 1
        try:
            await response.prepare(request)
            # The stream ends with the gateway's drain, so shutdown never waits on it.
            while gw.serving:
                data = streams.document(gw)
                # A reader that stopped reading would block the write for ever (and hold a
                # place and the drain): it gets a few seconds, then the connection goes.
                await asyncio.wait_for(
                    response.write(f"event: stats\ndata: {data}\n\n".encode()), WRITE_TIMEOUT
                )
                await asyncio.sleep(STREAM_INTERVAL)
        except TimeoutError:
            if request.transport is not None:
                request.transport.abort()
        except (ConnectionResetError, ConnectionError):
            pass  # the dashboard went away
        finally:
            streams.open -= 1
        return response

    if stats:
        app.router.add_get("/actuator/gateway/stats", stats_handler)
        app.router.add_get("/actuator/gateway/stats/stream", stream)
    app.router.add_get("/actuator/gateway/config", config)
