"""One request through the gateway, with the echo upstream's report (if it answered) decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy


@dataclass
class Echoed:
    status: int
    headers: CIMultiDictProxy[str]  # the response headers the client got
    body: bytes
    # The echo upstream's JSON report; empty when the answer did not come from it.
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream(self) -> str | None:
        value = self.report.get("upstream")
        return value if isinstance(value, str) else None

    @property
    def path(self) -> str:
        return str(self.report["path"])

    @property
    def query(self) -> str:
        return str(self.report["query"])

    @property
    def request_headers(self) -> CIMultiDict[str]:
        """The headers the upstream received, repeated names kept."""
        return CIMultiDict((name, value) for name, value in self.report["headers"])

    def json(self) -> Any:
        return json.loads(self.body)


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Echoed:
    kwargs.setdefault("allow_redirects", False)
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.read()
        report: dict[str, Any] = {}
        if resp.content_type == "application/json":
            decoded = json.loads(body)
            if isinstance(decoded, dict) and {"upstream", "method", "headers"} <= decoded.keys():
                report = decoded
        return Echoed(resp.status, resp.headers, body, report)


async def get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Echoed:
    return await call(session, "GET", url, **kwargs)
