"""``X-Forwarded-*`` and ``Forwarded`` (RFC 7239) on the upstream request, as SCG sets them.

Values a client sent are kept (and appended to) only when the client is a trusted proxy
(``GATEWAY_TRUSTED_PROXIES``, a regex on its address, like SCG's ``trusted-proxies``); from
anyone else they are dropped first, so a client can't forge its own address for the upstream.
"""

from __future__ import annotations

import re

from gateway.exchange import Exchange

_X_FORWARDED = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"forwarded",
    }
)


def _b(text: str) -> bytes:
    return text.encode("latin-1")


def _forwarded_node(host: str, port: int) -> str:
    node = f"[{host}]" if ":" in host else host
    return f'"{node}:{port}"'


class ForwardedHeaders:
    def __init__(self, trusted_proxies: str = "") -> None:
        self._trusted = re.compile(trusted_proxies) if trusted_proxies else None

    def apply(self, exchange: Exchange, headers: list[tuple[bytes, bytes]]) -> None:
        """Edit ``headers`` (the upstream request's, hop-by-hop already removed) in place."""
        trusted = self._trusted is not None and self._trusted.fullmatch(exchange.client_host)
        previous: dict[bytes, bytes] = {}
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            lname = name.lower()
            if lname in _X_FORWARDED:
                if trusted:
                    prior = previous.get(lname)
                    previous[lname] = value if prior is None else prior + b", " + value
            else:
                kept.append((name, value))
        headers[:] = kept

        def add(name: bytes, value: str) -> None:
            prior = previous.get(name.lower())
            encoded = _b(value)
            headers.append((name, encoded if prior is None else prior + b", " + encoded))

        host = exchange.original_host or ""
        port = exchange.server_port
        if host:
            _, sep, tail = host.rpartition(":")
            if sep and tail.isdigit() and not host.endswith("]"):
                port = int(tail)
            elif not sep or host.endswith("]"):
                port = 443 if exchange.scheme == "https" else 80
        add(b"X-Forwarded-For", exchange.client_host)
        add(b"X-Forwarded-Proto", exchange.scheme)
        if host:
            add(b"X-Forwarded-Host", host)
        add(b"X-Forwarded-Port", str(port))
        prefix = _stripped_prefix(exchange.original_path, exchange.request.path)
        if prefix:
            add(b"X-Forwarded-Prefix", prefix)
        element = f"for={_forwarded_node(exchange.client_host, exchange.client_port)}"
        if host:
            element += f';host="{host}"'
        element += f";proto={exchange.scheme}"
        add(b"Forwarded", element)


def _stripped_prefix(original: str, current: str) -> str:
    """The part of the original path that filters removed from its front (StripPrefix,
    RewritePath to a suffix), which SCG reports as X-Forwarded-Prefix."""
    if not original or original == current:
        return ""
    if current == "/":
        return original.rstrip("/")
    if original.endswith(current):
        return original[: -len(current)]
    return ""
