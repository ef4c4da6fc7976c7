"""``X-Forwarded-*`` and ``Forwarded`` (RFC 7239) on the upstream request, as SCG sets them.

Values a client sent are kept (and appended to) only when the client is a trusted proxy
(``GATEWAY_TRUSTED_PROXIES``, like SCG's ``trusted-proxies``: the rule is
``security.proxies``', handed in as its ``trusts``); from anyone else they are dropped, so a
client can't forge its own address for the upstream.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.exchange import ORIGINAL_PATHS, Exchange

# Lower-cased names the forwarder always removes from the client's headers; this module
# writes them anew.
FORWARDED_NAMES = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"forwarded",
    }
)


# How a trusted proxy's value and ours are joined: as SCG's XForwardedHeadersFilter does
# (Spring's collectionToCommaDelimitedString, no space) for X-Forwarded-*; RFC 7239's
# ", " between Forwarded elements.
JOIN = {name: b"," for name in FORWARDED_NAMES} | {b"forwarded": b", "}

# Distinct (client address, Host, scheme) combinations remembered; a full cache is simply
# emptied (bounded memory, no eviction bookkeeping on the request path).
_CACHE_SIZE = 4096
_CacheKey = tuple[str, int, str | None, str]


class ForwardedHeaders:
    __slots__ = ("_cache", "_trusted")

    def __init__(self, trusts: Callable[[str], bool] | None = None) -> None:
        """``trusts``: whether a peer address is a trusted proxy (None: none is)."""
        self._trusted = trusts
        self._cache: dict[_CacheKey, tuple[tuple[bytes, bytes], ...]] = {}

    def trusts(self, exchange: Exchange) -> bool:
        return self._trusted is not None and self._trusted(exchange.client_host)

    def append(
        self,
        exchange: Exchange,
        out: list[tuple[bytes, bytes]],
        previous: dict[bytes, bytes] | None = None,
    ) -> None:
        """Append the forwarding headers to ``out``; ``previous`` holds a trusted proxy's
        values by lower-cased name, which ours are appended to."""
        key = (exchange.client_host, exchange.client_port, exchange.original_host, exchange.scheme)
        fields = self._cache.get(key)
        if fields is None:
            fields = self._fields(exchange)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = fields
        originals = exchange.attributes.get(ORIGINAL_PATHS)
        prefix = forwarded_prefix(originals, exchange.request.path) if originals else ""
        if previous is None:
            out.extend(fields)
            if prefix:
                out.append((b"X-Forwarded-Prefix", prefix.encode("latin-1")))
            return
        if prefix:
            fields = (*fields, (b"X-Forwarded-Prefix", prefix.encode("latin-1")))
        written = set()
        for name, value in fields:
            lname = name.lower()
            written.add(lname)
            prior = previous.get(lname)
            out.append((name, value if prior is None else prior + JOIN[lname] + value))
        # What the trusted proxy sent and we add nothing to (X-Forwarded-Prefix on a route
        # that keeps the path) goes on as it came, as SCG leaves it.
        for lname, prior in previous.items():
            if lname not in written:
                out.append((_NAMES[lname], prior))

    @staticmethod
    def _fields(exchange: Exchange) -> tuple[tuple[bytes, bytes], ...]:
        """The fields that depend only on the connection and the Host header: the same for
        every request of a keep-alive connection, so they are built once and cached."""
        client = exchange.client_host
        scheme = exchange.scheme
        host = exchange.original_host or ""
        node = f"[{client}]" if ":" in client else client
        element = f'for="{node}:{exchange.client_port}"'
        if host:
            element += f';host="{host}"'
        element += f";proto={scheme}"
        values = (
            (b"X-Forwarded-For", client),
            (b"X-Forwarded-Proto", scheme),
            (b"X-Forwarded-Host", host),
            (b"X-Forwarded-Port", _port(host, exchange)),
            (b"Forwarded", element),
        )
        return tuple((name, value.encode("latin-1")) for name, value in values if value)


def _port(host: str, exchange: Exchange) -> str:
    """The port the client addressed: from its Host header, else the scheme's default (a
    Host without a port means the default port, whatever port we listen on)."""
    if not host:
        return str(exchange.server_port)
    _, sep, tail = host.rpartition(":")
    if sep and not host.endswith("]"):
        return tail if tail.isdigit() else str(exchange.server_port)
    return "443" if exchange.scheme == "https" else "80"


_NAMES = {
    b"x-forwarded-for": b"X-Forwarded-For",
    b"x-forwarded-proto": b"X-Forwarded-Proto",
    b"x-forwarded-host": b"X-Forwarded-Host",
    b"x-forwarded-port": b"X-Forwarded-Port",
    b"x-forwarded-prefix": b"X-Forwarded-Prefix",
    b"forwarded": b"Forwarded",
}


def forwarded_prefix(originals: list[str], current: str) -> str:
    """X-Forwarded-Prefix as SCG 5.0.4 derives it: for each path a filter replaced (oldest
    first), when it ends with the path now sent (trailing slashes aside), the part before
    that ending; the non-empty ones, comma-joined. So StripPrefix=1 on ``/api/x`` gives
    ``/api``, and PrefixPath=/v2 then StripPrefix=1 gives ``/v2``: the intermediate
    ``/v2/api/x`` ends with the ``/api/x`` sent. (SCG cuts at the ending's last occurrence,
    which for an ending is where it starts.) On the request path: one replaced path, the
    usual case, costs two calls."""
    sent = current[:-1] if current[-1:] == "/" else current
    if len(originals) == 1:
        path = originals[0]
        if path[-1:] == "/":
            path = path[:-1]
        if not path.endswith(sent):
            return ""
        return path[: -len(sent)] if sent else path
    prefixes = [forwarded_prefix([original], current) for original in dict.fromkeys(originals)]
    return ",".join(prefix for prefix in prefixes if prefix)
