"""SCG's ``RemoteAddr`` predicate: the client address lies in one of a list of networks.

The client address is the request's one resolved address (``Exchange.client_address``). With
no ``GATEWAY_TRUSTED_PROXIES`` that is the socket peer, as SCG's default resolver reads it;
with trusted proxies it is the client they name in ``X-Forwarded-For``
(``security/client_address.py``), so a route's networks and the access log, rate-limit keys
and ``IpFilter`` agree on who the client is. ``XForwardedRemoteAddr`` keeps SCG's own reading
of the header (its last entry, whoever sent it)."""

from __future__ import annotations

import ipaddress

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(host: str) -> Address | None:
    """The client's address, IPv4-mapped IPv6 (``::ffff:10.0.0.1``) unwrapped so IPv4 rules
    still apply on a dual-stack listener; None when it is not an IP address (a Unix socket)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class RemoteAddrPredicate(Predicate):
    __slots__ = ("networks", "sources")

    def __init__(self, sources: tuple[str, ...], networks: tuple[Network, ...]) -> None:
        self.sources = sources
        self.networks = networks

    def test(self, exchange: Exchange) -> bool:
        address = client_address(exchange.client_address)
        if address is None:
            return False
        # `in` is False across IP versions, as Netty's subnet rule is.
        return any(address in network for network in self.networks)

    def describe(self) -> str:
        return f"RemoteAddrs: [{', '.join(self.sources)}]"

    def explain(self, exchange: Exchange) -> Verdict:
        address = exchange.client_address
        listed = ", ".join(self.sources)
        if client_address(address) is None:
            return Verdict(False, f"client address {address!r} is not an IP address")
        if self.test(exchange):
            return Verdict(True, f"client address {address} is in {listed}")
        return Verdict(False, f"client address {address} is not in {listed}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    sources: list[str] = args.str_list("sources")
    args.finish()
    if not sources:
        args.fail("sources", "at least one address or CIDR is required")
    networks: list[Network] = []
    for source in sources:
        try:
            # strict=False: SCG accepts host bits set (10.1.1.1/24 means 10.1.1.0/24); a bare
            # address is a single host (/32, /128).
            networks.append(ipaddress.ip_network(source, strict=False))
        except ValueError as exc:
            args.fail("sources", f"not an IP address or CIDR: {source!r} ({exc})")
    return RemoteAddrPredicate(tuple(sources), tuple(networks))


FACTORY = PredicateFactory(
    name="RemoteAddr",
    shortcut_fields=("sources",),
    build=build,
    shortcut_type=ShortcutType.GATHER_LIST,
)
