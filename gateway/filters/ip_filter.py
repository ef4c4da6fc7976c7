"""``IpFilter``: a route open only to some client networks (``allow``), or closed to some
(``deny``). Not an SCG factory (SCG has the ``RemoteAddr`` predicate, which makes a request
fall through to another route or a 404 rather than be refused).

    filters:
      - IpFilter=allow, 10.0.0.0/8, 2001:db8::/32
      - name: IpFilter
        args: {action: deny, sources: [203.0.113.0/24]}

The client is the request's one resolved address (``Exchange.client_address``: the socket
peer, or the client a trusted proxy names; ``security/client_address.py``). IPv4 and IPv6,
IPv4-mapped IPv6 read as IPv4 on both sides; a bare address is a single host; host bits may
be set, as in ``RemoteAddr``. A refused request gets 403 with the gateway's JSON error body
and goes nowhere. A client address that is not an IP (a Unix socket) is in no network: an
``allow`` list refuses it, a ``deny`` list lets it pass.
"""

from __future__ import annotations

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.describe import filter_text
from gateway.filters.local_response import json_error
from gateway.security.addresses import NetworkSet

ACTIONS = ("allow", "deny")


class IpFilter(SyncFilter):
    name = "IpFilter"

    def __init__(self, allow: bool, networks: NetworkSet) -> None:
        self._allow = allow
        self._networks = networks

    def pre(self, exchange: Exchange) -> Response | None:
        if self._networks.contains(exchange.client_address) is self._allow:
            return None
        return json_error(exchange, 403, "the client address is not allowed on this route")

    def describe(self) -> str:
        action = "allow" if self._allow else "deny"
        return filter_text(self.name, ("action", action), ("sources", self._networks.sources))


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    # The shortcut gathers every value into ``sources`` (``allow, 10.0.0.0/8, ...``): the
    # action is then its first item. The expanded form may name it as ``action``.
    sources: list[str] = args.str_list("sources", [])
    action: str | None = args.str("action", None)
    args.finish()
    if action is None:
        if not sources:
            args.fail("action", f"expected one of {', '.join(ACTIONS)}, then the CIDRs")
        action, *sources = sources
    action = action.strip().lower()
    if action not in ACTIONS:
        args.fail("action", f"expected one of {', '.join(ACTIONS)}, got {action!r}")
    if not sources:
        args.fail("sources", "at least one IP address or CIDR is required")
    try:
        networks = NetworkSet.parse(sources)
    except ValueError as exc:
        args.fail("sources", str(exc))
    return IpFilter(action == "allow", networks)


FACTORIES: tuple[FilterFactory, ...] = (
    FilterFactory("IpFilter", ("sources",), _build, ShortcutType.GATHER_LIST),
)
