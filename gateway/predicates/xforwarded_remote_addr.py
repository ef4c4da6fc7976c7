"""SCG's ``XForwardedRemoteAddr`` predicate: ``RemoteAddr``'s networks, tested against the client
that the ``X-Forwarded-For`` header names instead of the connection's peer.

As SCG 5.0.4 resolves it (``XForwardedRemoteAddressResolver`` with ``maxTrustedIndex`` 1, checked
against the real SCG):
- the client is the *last* entry of the header: the address the proxy in front of the gateway
  saw (entries are split on commas, trimmed, empty ones dropped);
- no header, a header with no entries, or more than one ``X-Forwarded-For`` line (SCG trusts
  none of them then) fall back to the connection's peer, as ``RemoteAddr`` does;
- the entry is read as Java's ``InetAddress`` reads a literal: IPv4 in one to four decimal parts
  (``10.1`` is 10.0.0.1, ``010.1.2.3`` is 10.1.2.3), IPv6 with or without brackets and a zone.

``maxTrustedIndex`` can't be set from configuration in SCG: the predicate's GATHER_LIST binding
turns *every* argument into a source (``maxTrustedIndex: 2`` becomes the source 0.0.0.2, and the
index stays 1). meshgate refuses the argument with that reason rather than trust another hop or
add a bogus source.

One difference: an entry that is a host name is resolved by SCG through DNS, on the request
path; meshgate never resolves it, so it matches nothing (as an unresolvable name does in SCG).
"""

from __future__ import annotations

import ipaddress

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict
from gateway.predicates import remote_addr
from gateway.predicates.remote_addr import Address, Network, client_address

X_FORWARDED_FOR = "X-Forwarded-For"

# What Java's String.trim() and Spring's tokenizer strip from a header's entries (no Unicode
# spaces: a header value is latin-1).
_JAVA_WHITESPACE = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def java_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """Java's ``IPAddressUtil.textToNumericFormatV4``: ``a``, ``a.b``, ``a.b.c`` or ``a.b.c.d``
    in decimal (leading zeros stay decimal), the last part filling the remaining bytes; at most
    15 characters."""
    if not 0 < len(text) <= 15:
        return None
    parts = text.split(".")
    if len(parts) > 4 or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    values = [int(part) for part in parts]
    *head, last = values
    if any(value > 0xFF for value in head) or last >= 1 << (8 * (5 - len(parts))):
        return None
    number = 0
    for value in head:
        number = number << 8 | value
    number = number << (8 * (5 - len(parts))) | last
    return ipaddress.IPv4Address(number)


def java_address(text: str) -> Address | None:
    """The address Java's ``InetAddress.getByName`` makes of a literal, IPv4-mapped IPv6 as IPv4
    (Java returns an ``Inet4Address`` for it); None for anything that would need DNS."""
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]  # Java takes only IPv6 inside brackets
        return _ipv6(inner) if ":" in inner else None
    if ":" in text:
        return _ipv6(text)
    return java_ipv4(text)


def _ipv6(text: str) -> Address | None:
    try:
        address = ipaddress.IPv6Address(text.split("%", 1)[0])  # the zone plays no part
    except ValueError:
        return None
    return address.ipv4_mapped or address


def forwarded_client(exchange: Exchange) -> Address | None:
    """The client as SCG's XForwardedRemoteAddressResolver.maxTrustedIndex(1) resolves it."""
    values = exchange.request.headers.get_all(X_FORWARDED_FOR)
    if len(values) == 1:
        entries = [entry.strip(_JAVA_WHITESPACE) for entry in values[0].split(",")]
        entries = [entry for entry in entries if entry]
        if entries:
            return java_address(entries[-1])
    return client_address(exchange.client_host)


class XForwardedRemoteAddrPredicate(Predicate):
    __slots__ = ("networks", "sources")

    def __init__(self, sources: tuple[str, ...], networks: tuple[Network, ...]) -> None:
        self.sources = sources
        self.networks = networks

    def test(self, exchange: Exchange) -> bool:
        address = forwarded_client(exchange)
        if address is None:
            return False
        return any(address in network for network in self.networks)

    def describe(self) -> str:
        # SCG shows a Java lambda's identity here (``XForwardedRemoteAddrRoutePredicateFactory
        # $$Lambda/0x...``), which says nothing; this says what the predicate tests.
        return f"XForwardedRemoteAddrs: [{', '.join(self.sources)}]"

    def explain(self, exchange: Exchange) -> Verdict:
        address = forwarded_client(exchange)
        listed = ", ".join(self.sources)
        if address is None:
            return Verdict(False, "no client address in X-Forwarded-For (nor a peer address)")
        if self.test(exchange):
            return Verdict(True, f"forwarded client {address} is in {listed}")
        return Verdict(False, f"forwarded client {address} is not in {listed}")


def build(args: Args, ctx: BuildContext) -> Predicate:
    if args.has("maxTrustedIndex"):
        args.fail(
            "maxTrustedIndex",
            "SCG can't set it from configuration: its binding makes every argument of this "
            "predicate a source (maxTrustedIndex: 2 becomes the source 0.0.0.2) and always "
            "trusts only the last X-Forwarded-For entry (maxTrustedIndex 1), as meshgate does; "
            "remove it",
        )
    # The sources are RemoteAddr's, parsed and checked the same way.
    parsed = remote_addr.build(args, ctx)
    assert isinstance(parsed, remote_addr.RemoteAddrPredicate)
    return XForwardedRemoteAddrPredicate(parsed.sources, parsed.networks)


FACTORY = PredicateFactory(
    name="XForwardedRemoteAddr",
    shortcut_fields=("sources",),
    build=build,
    shortcut_type=ShortcutType.GATHER_LIST,
)
