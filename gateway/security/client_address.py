"""The one client address of a request: what ``RemoteAddr``, ``IpFilter``, the rate limiter's
``remote-addr`` key, the ``client_ip`` hash key and the access log all read
(``Exchange.client_address``).

The client is the socket peer. Only when that peer is a trusted proxy is ``X-Forwarded-For``
believed, and then only as far as the chain of trusted proxies reaches: the header is walked
from the right (the hop the trusted peer itself saw) to the first address that is not a
trusted proxy, and that address is the client. This is nginx's ``real_ip_recursive on`` with
``real_ip_header X-Forwarded-For``:

- every ``X-Forwarded-For`` line counts, joined in the order they came (as nginx and RFC 9110
  read a repeated list field); empty entries are skipped;
- when every entry is a trusted proxy, the leftmost one is the client (nothing further left
  was vouched for);
- an entry that is not an IP address (``unknown``, a host name, garbage a client put there)
  ends the walk and the last good address stays the client. Whatever stands left of it was
  never vouched for by a proxy we trust; the address right of it was, by the one that
  appended it. Entries may carry a port (``10.0.0.1:4711``, ``[2001:db8::1]:443``), which is
  dropped;
- the walk takes at most ``MAX_HOPS`` steps: a longer chain of trusted proxies stops at the
  last one reached, so a long header of trusted addresses costs a bounded amount of work.

Envoy's ``xff_num_trusted_hops`` counts hops instead of testing them; testing each hop against
the list is what the list is for, and it keeps being right when a proxy is added in front.

An address taken from the header is written canonically (``::ffff:10.0.0.1`` as ``10.0.0.1``,
IPv6 compressed, no port or zone); the socket peer is used as the socket gives it.
``RFC 7239 Forwarded`` is not read for the client address: proxies in front of gateways send
``X-Forwarded-For``.
"""

from __future__ import annotations

from gateway.exchange import Exchange
from gateway.security.addresses import parse_address
from gateway.security.proxies import TrustedProxies

MAX_HOPS = 16

_XFF = b"x-forwarded-for"


def forwarded_hop(entry: str) -> str | None:
    """One ``X-Forwarded-For`` entry (already trimmed) as a canonical address text, a port
    dropped; None when it is not an IP address."""
    if entry.startswith("["):  # [v6] or [v6]:port
        inner, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
        address = parse_address(inner) if ":" in inner else None
    elif entry.count(":") == 1:  # v4:port
        host, _, port = entry.partition(":")
        address = parse_address(host) if port.isdigit() and ":" not in host else None
        if address is not None and address.version != 4:
            address = None
    else:  # v4, or bare v6 (a port can't be told from the address there)
        address = parse_address(entry)
    return None if address is None else str(address)


class ClientAddresses:
    """Resolves the client address of each request once (the dispatcher calls it before
    routing). Built only when trusted proxies are configured: without them the client is the
    socket peer and nothing runs per request."""

    __slots__ = ("_max_hops", "trusted")

    def __init__(self, trusted: TrustedProxies, *, max_hops: int = MAX_HOPS) -> None:
        self.trusted = trusted
        self._max_hops = max_hops

    def __call__(self, exchange: Exchange) -> str:
        peer = exchange.client_host
        if not self.trusted.trusts(peer):
            return peer
        values = [
            value.decode("latin-1")
            for name, value in exchange.request.headers.raw
            if name.lower() == _XFF
        ]
        return self.resolve(peer, values) if values else peer

    def resolve(self, peer: str, forwarded_for: list[str]) -> str:
        """The client behind ``peer`` (a trusted proxy) as ``forwarded_for`` (the header's
        lines, in order) names it."""
        client = peer
        hops = 0
        trusts = self.trusted.trusts
        for entry in reversed(",".join(forwarded_for).split(",")):
            entry = entry.strip(" \t")
            if not entry:
                continue
            hop = forwarded_hop(entry)
            if hop is None:
                break
            client = hop
            hops += 1
            if hops >= self._max_hops or not trusts(hop):
                break
        return client
