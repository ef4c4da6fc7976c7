"""Responses the gateway makes itself: a bad request gets the right status and a JSON body in
the shape Spring Boot's error handler uses, so clients of SCG see the same fields."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

from gateway.exchange import Exchange, Response
from gateway.headers import Headers

# Current RFC 9110 wording where Python's table still has the older phrase.
_REASONS = {413: "Payload Too Large", 414: "URI Too Long", 422: "Unprocessable Entity"}


def reason_phrase(status: int) -> str:
    if status in _REASONS:
        return _REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


def json_error(
    exchange: Exchange,
    status: int,
    message: str,
    *,
    now: Callable[[], float] = time.time,
) -> Response:
    """``{"timestamp", "path", "status", "error", "message", "requestId"}`` with
    ``Content-Type: application/json``. ``now`` is injectable for deterministic tests."""
    error = reason_phrase(status)
    stamp = datetime.fromtimestamp(now(), UTC).isoformat(timespec="milliseconds")
    body = {
        "timestamp": stamp,
        "path": exchange.request.path,
        "status": status,
        "error": error,
        "message": message,
        "requestId": exchange.request_id,
    }
    headers = Headers([(b"Content-Type", b"application/json")])
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return Response(status=status, headers=headers, body=payload, reason=error)
