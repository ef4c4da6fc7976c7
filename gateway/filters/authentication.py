"""What the authentication filters (ApiKey, BasicAuth) share: where they sit in a route's chain
and how they refuse.

They run before every other filter of the route, whatever their place in the list: SCG leaves
authentication to Spring Security, which runs before any gateway filter, and meshgate keeps that
promise by giving them SCG's highest precedence as their order. Two reasons it matters: a
response cache (LocalResponseCache, order -4) listed or turned on globally would otherwise
answer from its cache before the credentials are checked, and a RequestRateLimiter keyed by
``principal`` needs the principal set before it runs. Several authentication filters on one
route (default-filters and the route's own) run in their SCG order among themselves, and each
must pass.

A refusal is SCG's JSON error body with a ``WWW-Authenticate`` challenge, written as final
(``committed``): nothing after it adds to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.config.args import Args
from gateway.exchange import Exchange, Response
from gateway.filters.local_response import json_error

# Spring's Ordered.HIGHEST_PRECEDENCE (Integer.MIN_VALUE).
AUTH_ORDER = -(2**31)
DEFAULT_REALM = "meshgate"
# A realm is written inside a quoted-string: no quote, backslash or control character.
_REALM = re.compile(r"[^\"\\\x00-\x1f\x7f]*")


def realm_argument(args: Args) -> str:
    realm: str = args.str("realm", DEFAULT_REALM)
    if not _REALM.fullmatch(realm):
        args.fail("realm", "must not hold a double quote, a backslash or a control character")
    return realm


def refusal(
    exchange: Exchange,
    status: int,
    message: str,
    challenge: bytes | None,
    now: Callable[[], float],
) -> Response:
    """``status`` with the JSON error body (``message`` in it) and, when given, the
    ``WWW-Authenticate`` challenge."""
    response = json_error(exchange, status, message, now=now)
    if challenge is not None:
        response.headers.raw.append((b"WWW-Authenticate", challenge))
    response.committed = True
    return response


def unavailable(exchange: Exchange, now: Callable[[], float]) -> Response:
    """503 with ``Retry-After: 1``: the filter cannot decide now (its keys are not loaded yet,
    its password checks are all taken). A 5xx body keeps its details out."""
    response = refusal(exchange, 503, "", None, now)
    response.headers.raw.append((b"Retry-After", b"1"))
    return response
