"""Which peers are trusted proxies: ``GATEWAY_TRUSTED_PROXIES`` (or SCG's ``trusted-proxies``
in the route file).

Two spellings, told apart by what the value is:

- a comma-separated list of addresses and CIDRs (``127.0.0.1/32, 10.0.0.0/8, ::1``), what
  operators write: every item must be one (a bare address is a single host, /32 or /128);
- anything else is a regular expression matched against the whole address text, as SCG's
  ``trusted-proxies`` is (``10\\.0\\.0\\.\\d+``).

A value made only of the characters an address list uses (hex digits, ``.``, ``:``, ``/``,
``[``, ``]``, commas, spaces) that is not a valid list is refused rather than read as a
regex: ``10.0.0.0/33`` or ``10.0.0.300`` as a pattern matches no peer ever, so the typo
would silently trust nobody. A regex always has some other character (``\\``, ``|``, ``*``).
"""

from __future__ import annotations

import re
from typing import Protocol

from gateway.security.addresses import NetworkSet

_LIST_ALPHABET = re.compile(r"[0-9A-Fa-f.:/\[\],\s]+")


class TrustedProxies(Protocol):
    """Decides whether an address (a socket peer, or a hop in ``X-Forwarded-For``) is a
    proxy whose forwarding headers are believed."""

    def trusts(self, address: str) -> bool: ...

    def describe(self) -> str:
        """The rule as the operator wrote it, for logs."""
        ...


class TrustedNetworks:
    """Trusted proxies as a list of networks; IPv4-mapped IPv6 peers count as IPv4."""

    __slots__ = ("networks",)

    def __init__(self, networks: NetworkSet) -> None:
        self.networks = networks

    def trusts(self, address: str) -> bool:
        return self.networks.contains(address)

    def describe(self) -> str:
        return ", ".join(self.networks.sources)


class TrustedPattern:
    """Trusted proxies as SCG's regex: it must match the whole address text."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def trusts(self, address: str) -> bool:
        return self.pattern.fullmatch(address) is not None

    def describe(self) -> str:
        return self.pattern.pattern


def trusted_proxies(text: str) -> TrustedProxies | None:
    """The rule ``text`` writes; None when it is empty (no proxy is trusted). Raises
    ValueError saying what is wrong with it."""
    text = text.strip()
    if not text:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if _LIST_ALPHABET.fullmatch(text):
        try:
            return TrustedNetworks(NetworkSet.parse(items))
        except ValueError as exc:
            raise ValueError(
                f"reads as a list of IP addresses/CIDRs, but {exc}; a regular expression "
                r"needs a character such as \ | * to be read as one"
            ) from None
    try:
        return TrustedPattern(re.compile(text))
    except re.error as exc:
        raise ValueError(
            f"neither a list of IP addresses/CIDRs nor a valid regular expression: {exc}"
        ) from None
