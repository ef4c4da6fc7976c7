"""IP addresses and sets of networks, read one way for every rule that looks at a client:
trusted proxies, the ``X-Forwarded-For`` walk and ``IpFilter``.

One reading matters more than any detail of it: an address written ``::ffff:10.0.0.1`` (a
dual-stack listener's view of an IPv4 client) is the IPv4 address 10.0.0.1, and so is the
network ``::ffff:10.0.0.0/104``; otherwise an IPv4 deny rule is stepped around by
connecting over IPv6.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The IPv6 prefix of IPv4-mapped addresses (RFC 4291 2.5.5.2).
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

# Distinct address texts whose verdict a set remembers; a full memory is simply emptied
# (bounded, and no eviction bookkeeping on the request path).
VERDICT_CACHE_SIZE = 4096


def parse_address(text: str) -> Address | None:
    """An IP literal as a socket or a proxy writes it: surrounding brackets and an IPv6 zone
    (``%eth0``) dropped, IPv4-mapped IPv6 unwrapped; None when it is not an IP address (a
    host name, ``unknown``, a Unix socket's empty peer)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        if ":" in text:
            address = ipaddress.IPv6Address(text.split("%", 1)[0])
            return address.ipv4_mapped or address
        # Strict dotted quad: ``010.1.2.3`` is refused rather than guessed at (octal? decimal?).
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def parse_network(text: str) -> Network:
    """A CIDR or a bare address (a single host: /32, /128). Host bits may be set
    (``10.1.1.1/24`` is 10.1.1.0/24), as SCG's ``RemoteAddr`` reads its sources. An
    IPv4-mapped network is its IPv4 network. Raises ValueError saying why."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [::1] or [::1]/128
        inner, _, rest = text[1:].partition("]")
        text = inner + rest
    network = ipaddress.ip_network(text, strict=False)
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.prefixlen >= _MAPPED.prefixlen
        and network.subnet_of(_MAPPED)
    ):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # inside ::ffff:0:0/96
        return ipaddress.IPv4Network((mapped, network.prefixlen - _MAPPED.prefixlen))
    return network


class NetworkSet:
    """Networks an address is tested against. ``contains`` takes the address as text and
    remembers its verdict, so a keep-alive client (or a proxy's few addresses) costs one
    dictionary lookup per request, not a parse."""

    __slots__ = ("_verdicts", "networks", "sources")

    def __init__(self, sources: tuple[str, ...], networks: tuple[Network, ...]) -> None:
        self.sources = sources
        self.networks = networks
        self._verdicts: dict[str, bool] = {}

    @classmethod
    def parse(cls, items: Iterable[str]) -> NetworkSet:
        """Raises ValueError naming the first item that is not an address or a CIDR."""
        sources: list[str] = []
        networks: list[Network] = []
        for item in items:
            try:
                networks.append(parse_network(item))
            except ValueError as exc:
                raise ValueError(f"not an IP address or CIDR: {item!r} ({exc})") from None
            sources.append(item.strip())
        return cls(tuple(sources), tuple(networks))

    def contains(self, text: str) -> bool:
        verdict = self._verdicts.get(text)
        if verdict is None:
            address = parse_address(text)
            verdict = address is not None and self.contains_address(address)
            if len(self._verdicts) >= VERDICT_CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[text] = verdict
        return verdict

    def contains_address(self, address: Address) -> bool:
        # ``in`` is False across IP versions (an IPv4 client is never in ::/0), as Netty's
        # subnet rule under SCG is; mapped addresses were made IPv4 above.
        return any(address in network for network in self.networks)
