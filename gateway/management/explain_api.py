"""``GET``/``POST /actuator/gateway/explain``: which route a described request takes, which
filters run and what they change, the lane, and the instance the balancer would pick now
(``gateway/explain.py``; nothing is sent and no state moves)."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from gateway.explain import ExplainInputError, ExplainRequest
from gateway.management.responses import error_response, json_response
from gateway.management.view import ManagementView

# A described request is a few headers, not a body to stream.
MAX_BODY = 64 * 1024


def add_routes(app: web.Application, key: web.AppKey[ManagementView]) -> None:
    async def explain_get(request: web.Request) -> web.Response:
        query = {name: request.query.getall(name) for name in request.query}
        return _answer(request, key, lambda: ExplainRequest.from_query(query))

    async def explain_post(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return error_response(
                415, "send the request to explain as application/json", request.path
            )
        if request.content_length is not None and request.content_length > MAX_BODY:
            return error_response(413, f"the body is over {MAX_BODY} bytes", request.path)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return error_response(413, f"the body is over {MAX_BODY} bytes", request.path)
        try:
            data = json.loads(raw or b"null")
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return error_response(400, f"the body is not JSON: {exc}", request.path)
        return _answer(request, key, lambda: ExplainRequest.from_json(data))

    app.router.add_get("/actuator/gateway/explain", explain_get)
    app.router.add_post("/actuator/gateway/explain", explain_post)


def _answer(
    request: web.Request,
    key: web.AppKey[ManagementView],
    described: Callable[[], ExplainRequest],
) -> web.Response:
    try:
        return json_response(request.app[key].explainer.explain(described()))
    except ExplainInputError as exc:
        return error_response(400, str(exc), request.path)
