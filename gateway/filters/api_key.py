"""ApiKey: a request passes with a known key in a header; the key's name is its principal.

    filters:
      - ApiKey=/etc/meshgate/api-keys.txt              # keys-file[, header]
      - name: ApiKey
        args:
          header: X-Api-Key                            # default X-Api-Key
          consul-key: meshgate/api-keys                # or keys-file: PATH (exactly one)
          realm: orders                                # the challenge's realm, default meshgate

Keys are stored as ``name:sha256-hex-of-key`` lines (``gateway.security.api_keys``): in a file,
read when the route is built (at start and on every reload: SIGHUP or the actuator's refresh),
or in Consul KV, watched live (``gateway.security.consul_keys``; Consul discovery only).
The key header is removed from the request whatever the outcome, so the upstream never sees
a key. A missing, repeated or unknown key is a 401 with Kong's challenge,
``WWW-Authenticate: Key realm="meshgate"``; until a Consul key is first read, 503. Like every
authentication filter it runs before the route's other filters (``filters.authentication``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gateway.config.args import Args
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, SyncFilter
from gateway.filters.authentication import AUTH_ORDER, realm_argument, refusal, unavailable
from gateway.filters.describe import filter_text
from gateway.filters.header_args import check_header_name
from gateway.security.api_keys import ApiKeySet, FixedKeys, KeySetView, read_api_keys

NAME = "ApiKey"
DEFAULT_HEADER = "X-Api-Key"


class _NotRead:
    """A Consul key's set while a file is only validated: never read."""

    @property
    def current(self) -> ApiKeySet | None:
        return None


class ApiKey(SyncFilter):
    name = NAME
    order = AUTH_ORDER

    def __init__(
        self,
        header: str,
        keys: KeySetView,
        realm: str,
        text: str,
        now: Callable[[], float],
        consul_key: str | None = None,
    ) -> None:
        self.header = header
        self.consul_key = consul_key  # watched while a route uses it
        self._wanted = header.lower().encode("latin-1")
        self._keys = keys
        self._challenge = f'Key realm="{realm}"'.encode("latin-1")
        self._text = text
        self._now = now

    def pre(self, exchange: Exchange) -> Response | None:
        headers = exchange.request.headers
        wanted = self._wanted
        presented: list[bytes] = [v for n, v in headers.raw if n.lower() == wanted]
        if presented:
            headers.remove(self.header)  # never forwarded, whatever the outcome
        keys = self._keys.current
        if keys is None:
            return unavailable(exchange, self._now)
        if len(presented) != 1 or not presented[0].strip():
            reason = "more than one" if len(presented) > 1 else "no"
            message = f"{reason} API key in {self.header}"
            return refusal(exchange, 401, message, self._challenge, self._now)
        name = keys.match(presented[0].strip())
        if name is None:
            return refusal(exchange, 401, "invalid API key", self._challenge, self._now)
        exchange.principal = name
        return None

    def describe(self) -> str:
        return self._text


def consul_keys(filters: Iterable[GatewayFilter]) -> set[str]:
    """The Consul keys these filters read their API keys from."""
    return {f.consul_key for f in filters if isinstance(f, ApiKey) and f.consul_key is not None}


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    header = check_header_name(args, "header", args.str("header", DEFAULT_HEADER))
    realm = realm_argument(args)
    keys_file: str | None = args.str("keys-file", None)
    consul_key: str | None = args.str("consul-key", None)
    if (keys_file is None) == (consul_key is None):
        args.fail("keys-file", "give exactly one of keys-file (a file) or consul-key (Consul KV)")
    keys: KeySetView
    if keys_file is not None:
        try:
            keys = FixedKeys(read_api_keys(keys_file))
        except ConfigError as exc:
            args.fail("keys-file", str(exc))
        source = ("keysFile", keys_file)
    else:
        assert consul_key is not None
        consul_key = consul_key.strip().strip("/")
        if not consul_key:
            args.fail("consul-key", "must name a key")
        if ctx.api_keys is None:
            keys = _NotRead()  # only validating: nothing is watched
        else:
            try:
                keys = ctx.api_keys.live(consul_key)
            except ValueError as exc:
                args.fail("consul-key", str(exc))
        source = ("consulKey", consul_key)
    text = filter_text(NAME, ("header", header), source)
    return ApiKey(header, keys, realm, text, ctx.now, consul_key)


FACTORIES: tuple[FilterFactory, ...] = (FilterFactory(NAME, ("keys-file", "header"), _build),)

__all__ = ["DEFAULT_HEADER", "FACTORIES", "ApiKey", "consul_keys"]
