"""BasicAuth: HTTP Basic authentication (RFC 7617) against an htpasswd file of bcrypt entries;
the user is the request's principal.

    filters:
      - BasicAuth=/etc/meshgate/htpasswd               # htpasswd-file[, realm]
      - name: BasicAuth
        args:
          htpasswd-file: /etc/meshgate/htpasswd
          realm: orders                                # default meshgate

The file is read when the route is built (at start and on every reload); an entry that is not
bcrypt is a config error naming the file and line (``gateway.security.htpasswd``). bcrypt runs
on the gateway's bcrypt threads, never the event loop (``gateway.security.bcrypt_pool``), and
verified credentials are cached for five minutes (``gateway.security.verified_cache``), so a
valid client pays one check, not one per request. The ``Authorization`` header is removed from
the request whatever the outcome. Missing or wrong credentials: 401 with
``WWW-Authenticate: Basic realm="meshgate", charset="UTF-8"``; more checks waiting than the
pool takes: 503. Like every authentication filter it runs before the route's other filters
(``filters.authentication``).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.args import Args
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Handler, Response
from gateway.extension import BuildContext, FilterFactory, GatewayFilter, WrappingFilter
from gateway.filters.authentication import AUTH_ORDER, realm_argument, refusal, unavailable
from gateway.filters.describe import filter_text
from gateway.security.basic_credentials import BasicAuthenticator, PoolBusy, basic_credentials
from gateway.security.bcrypt_pool import BcryptPool
from gateway.security.htpasswd import read_htpasswd
from gateway.security.verified_cache import VerifiedCache

NAME = "BasicAuth"


class BasicAuth(WrappingFilter):
    name = NAME
    order = AUTH_ORDER

    def __init__(
        self, authenticator: BasicAuthenticator, realm: str, text: str, now: Callable[[], float]
    ) -> None:
        self._authenticator = authenticator
        self._challenge = f'Basic realm="{realm}", charset="UTF-8"'.encode("latin-1")
        self._text = text
        self._now = now

    def wrap(self, inner: Handler) -> Handler:
        authenticator = self._authenticator
        challenge = self._challenge
        now = self._now

        async def basic_auth(exchange: Exchange) -> Response:
            headers = exchange.request.headers
            values = headers.get_all("Authorization")
            if values:
                headers.remove("Authorization")  # never forwarded, whatever the outcome
            credentials = basic_credentials(values[0]) if len(values) == 1 else None
            if credentials is None:
                message = "no Basic credentials in Authorization"
                return refusal(exchange, 401, message, challenge, now)
            key, user = authenticator.cached(credentials)
            if user is None:
                try:
                    user = await authenticator.verify(key, credentials)
                except PoolBusy:
                    return unavailable(exchange, now)
                if user is None:
                    return refusal(exchange, 401, "invalid user or password", challenge, now)
            exchange.principal = user
            return await inner(exchange)

        return basic_auth

    def describe(self) -> str:
        return self._text


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    path: str = args.str("htpasswd-file")
    realm = realm_argument(args)
    try:
        htpasswd = read_htpasswd(path)
    except ConfigError as exc:
        args.fail("htpasswd-file", str(exc))
    # Validation only (no running gateway): a pool of its own stands in; no thread starts
    # before a check.
    pool = ctx.bcrypt if ctx.bcrypt is not None else BcryptPool()
    authenticator = BasicAuthenticator(htpasswd, pool, VerifiedCache(ctx.now))
    text = filter_text(
        NAME, ("htpasswdFile", path), ("realm", realm), ("users", len(htpasswd.users))
    )
    return BasicAuth(authenticator, realm, text, ctx.now)


FACTORIES: tuple[FilterFactory, ...] = (FilterFactory(NAME, ("htpasswd-file", "realm"), _build),)

__all__ = ["FACTORIES", "BasicAuth"]
