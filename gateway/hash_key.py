"""Where a consistent-hash route takes its key from: ``header:<Name>``, ``cookie:<name>``,
``query:<name>`` or ``client_ip`` (validated by ``resilience.balancer.factory``)."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from gateway.exchange import Exchange

KeyOf = Callable[[Exchange], str | None]


def key_extractor(hash_on: str) -> KeyOf:
    kind, _, name = hash_on.partition(":")
    if kind == "client_ip":
        return lambda exchange: exchange.client_address or None
    if kind == "header":
        return lambda exchange: exchange.request.headers.get(name)
    if kind == "cookie":

        def cookie(exchange: Exchange) -> str | None:
            for header in exchange.request.headers.get_all("cookie"):
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(header)
                except CookieError:
                    continue
                if name in jar:
                    return jar[name].value
            return None

        return cookie
    if kind == "query":

        def query(exchange: Exchange) -> str | None:
            for key, value in parse_qsl(exchange.request.query, keep_blank_values=True):
                if key == name:
                    return value
            return None

        return query
    raise ValueError(f"unknown hash-on {hash_on!r}")
