"""The management port's JSON answers: a body, or Spring Boot's error shape (``status``,
``error``, ``message``, ``path``) that every refusal on this port uses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=None, default=str),
        status=status,
        content_type="application/json",
    )


def error_response(status: int, message: str, path: str) -> web.Response:
    body = {"status": status, "error": PHRASES.get(status, ""), "message": message, "path": path}
    return json_response(body, status)
