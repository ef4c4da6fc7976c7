"""ApiKey and BasicAuth as route filters: what passes (with its principal), what is refused and
how (401 + challenge, 503), that credentials are not forwarded, their arguments' errors, and
their place in the chain (before every other filter, so the rate limiter sees the principal)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from gateway.config.args import Args, normalize_expanded, normalize_shortcut, split_shortcut
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.extension import BuildContext, GatewayFilter, SyncFilter, WrappingFilter
from gateway.filters.api_key import ApiKey, consul_keys
from gateway.filters.authentication import AUTH_ORDER
from gateway.filters.catalog import builtin_filters
from gateway.headers import Headers
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from gateway.security.api_keys import WithoutConsul
from gateway.security.consul_keys import ConsulKeySets
from resilience.ratelimit.local import LocalRateLimiters
from tests.support.clock import FakeClock
from tests.unit.filters.conftest import make_exchange

NOW = 1_700_000_000.0


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "api-keys.txt"
    path.write_text(f"# test keys\nbilling:{sha('b-key')}\nreports:{sha('r-key')}\n")
    return path


@pytest.fixture
def htpasswd_file(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    path.write_text(f"alice:{hashed}\n")
    return path


def build(
    name: str, args: Mapping[str, Any] | None = None, shortcut: str | None = None, **ctx: Any
) -> GatewayFilter:
    factory = builtin_filters()[name]
    if args is not None:
        values = normalize_expanded(args)
    else:
        values = normalize_shortcut(
            split_shortcut(shortcut or ""), factory.shortcut_fields, factory.shortcut_type
        )
    checked = Args(values)
    built = factory.build(checked, BuildContext(**{"now": lambda: NOW, **ctx}))
    checked.finish()
    return built


def body(response: Response) -> dict[str, Any]:
    assert isinstance(response.body, bytes)
    parsed: dict[str, Any] = json.loads(response.body)
    return parsed


def keyed(*values: str, header: str = "X-Api-Key") -> Exchange:
    return make_exchange(headers=[*((header, v) for v in values), ("Accept", "*/*")])


# -- ApiKey ------------------------------------------------------------------------------------
def test_a_known_key_passes_as_its_name_and_is_not_forwarded(keys_file: Path) -> None:
    api_key = build("ApiKey", shortcut=str(keys_file))
    assert isinstance(api_key, SyncFilter)
    exchange = keyed("b-key")
    assert api_key.pre(exchange) is None
    assert exchange.principal == "billing"
    assert "X-Api-Key" not in exchange.request.headers
    assert exchange.request.headers.get("Accept") == "*/*"  # the rest stays


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((), "no API key in X-Api-Key"),
        (("",), "no API key in X-Api-Key"),
        (("wrong",), "invalid API key"),
        (("b-key", "r-key"), "more than one API key in X-Api-Key"),
        ((sha("b-key"),), "invalid API key"),
    ],
)
def test_a_missing_unknown_or_repeated_key_is_a_401_with_kongs_challenge(
    keys_file: Path, values: tuple[str, ...], message: str
) -> None:
    api_key = build("ApiKey", {"keys-file": str(keys_file)})
    assert isinstance(api_key, SyncFilter)
    exchange = keyed(*values)
    refused = api_key.pre(exchange)
    assert refused is not None
    assert refused.status == 401
    assert refused.committed
    assert refused.headers.get("WWW-Authenticate") == 'Key realm="meshgate"'
    assert refused.headers.get("Content-Type") == "application/json"
    assert body(refused)["message"] == message
    assert body(refused)["status"] == 401
    assert exchange.principal is None
    assert "X-Api-Key" not in exchange.request.headers


def test_the_header_and_realm_can_be_set(keys_file: Path) -> None:
    api_key = build("ApiKey", {"keys-file": str(keys_file), "header": "X-Key", "realm": "orders"})
    assert isinstance(api_key, SyncFilter)
    assert api_key.describe() == f"[ApiKey header = 'X-Key', keysFile = '{keys_file}']"
    passed = keyed("r-key", header="x-key")  # header names are case-insensitive
    assert api_key.pre(passed) is None and passed.principal == "reports"
    refused = api_key.pre(keyed("r-key"))  # in X-Api-Key: not looked at
    assert refused is not None
    assert refused.headers.get("WWW-Authenticate") == 'Key realm="orders"'


def test_a_consul_key_set_not_read_yet_answers_503() -> None:
    sets = ConsulKeySets()
    api_key = build("ApiKey", {"consul-key": "/meshgate/api-keys/"}, api_keys=sets)
    assert isinstance(api_key, ApiKey)
    assert api_key.consul_key == "meshgate/api-keys"
    assert consul_keys([api_key]) == {"meshgate/api-keys"}
    waiting = api_key.pre(keyed("b-key"))
    assert waiting is not None and waiting.status == 503
    assert waiting.headers.get("Retry-After") == "1"
    sets.live("meshgate/api-keys").apply(f"billing:{sha('b-key')}".encode())
    exchange = keyed("b-key")
    assert api_key.pre(exchange) is None and exchange.principal == "billing"


def test_consul_key_errors_and_validation_only() -> None:
    with pytest.raises(ConfigError, match="with static discovery use keys-file"):
        build("ApiKey", {"consul-key": "k"}, api_keys=WithoutConsul())
    # Only validating (no gateway): accepted, nothing watched.
    assert isinstance(build("ApiKey", {"consul-key": "k"}), ApiKey)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give exactly one of keys-file"),
        ({"keys-file": "x", "consul-key": "k"}, "give exactly one of keys-file"),
        ({"consul-key": "/"}, "argument 'consul-key': must name a key"),
        ({"keys-file": "KEYS", "header": "X Bad"}, "'X Bad' is not a valid header name"),
        ({"keys-file": "KEYS", "realm": 'a"b'}, "argument 'realm': must not hold a double"),
        ({"keys-file": "KEYS", "key-header": "X"}, "key-header"),
    ],
)
def test_bad_arguments(keys_file: Path, args: dict[str, str], message: str) -> None:
    values = {k: str(keys_file) if v == "KEYS" else v for k, v in args.items()}
    with pytest.raises(ConfigError, match=message):
        build("ApiKey", values)


def test_a_malformed_keys_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"billing:{sha('k')}\n\n# fine so far\nreports:{sha('k')[:10]}\n")
    with pytest.raises(ConfigError) as caught:
        build("ApiKey", {"keys-file": str(path)})
    assert f"argument 'keys-file': {path}:4: reports: expected the key's SHA-256" in str(
        caught.value
    )
    with pytest.raises(ConfigError, match="cannot read it"):
        build("ApiKey", {"keys-file": str(tmp_path / "missing.txt")})


# -- BasicAuth ---------------------------------------------------------------------------------
def authorization(value: bytes, scheme: str = "Basic") -> Exchange:
    token = base64.b64encode(value).decode()
    return make_exchange(headers=[("Authorization", f"{scheme} {token}")])


class Upstream:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    async def __call__(self, exchange: Exchange) -> Response:
        self.seen.append(exchange)
        return Response(200, Headers(), b"ok")


async def test_basic_auth_passes_a_bcrypt_user_and_refuses_the_rest(htpasswd_file: Path) -> None:
    clock = FakeClock()
    basic = build("BasicAuth", shortcut=str(htpasswd_file), now=clock.time)
    assert isinstance(basic, WrappingFilter)
    assert basic.describe() == (
        f"[BasicAuth htpasswdFile = '{htpasswd_file}', realm = 'meshgate', users = 1]"
    )
    upstream = Upstream()
    handler = basic.wrap(upstream)
    response = await handler(authorization(b"alice:s3cret"))
    assert response.status == 200
    (seen,) = upstream.seen
    assert seen.principal == "alice"
    assert "Authorization" not in seen.request.headers
    refusals = [
        authorization(b"alice:wrong"),
        authorization(b"bob:s3cret"),
        authorization(b"alice:s3cret", scheme="Bearer"),
        make_exchange(),
    ]
    for exchange in refusals:
        refused = await handler(exchange)
        assert refused.status == 401
        assert refused.committed
        assert refused.headers.get("WWW-Authenticate") == 'Basic realm="meshgate", charset="UTF-8"'
        assert body(refused)["status"] == 401
        assert exchange.principal is None
    assert len(upstream.seen) == 1
    assert body(await handler(authorization(b"bob:x")))["message"] == "invalid user or password"
    assert body(await handler(make_exchange()))["message"] == (
        "no Basic credentials in Authorization"
    )


async def test_basic_auth_realm_and_bad_files(htpasswd_file: Path, tmp_path: Path) -> None:
    basic = build("BasicAuth", {"htpasswd-file": str(htpasswd_file), "realm": "orders"})
    assert isinstance(basic, WrappingFilter)
    refused = await basic.wrap(Upstream())(make_exchange())
    assert refused.headers.get("WWW-Authenticate") == 'Basic realm="orders", charset="UTF-8"'
    md5 = tmp_path / "md5.htpasswd"
    md5.write_text("# made with htpasswd -m\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n")
    with pytest.raises(ConfigError) as caught:
        build("BasicAuth", {"htpasswd-file": str(md5)})
    assert f"argument 'htpasswd-file': {md5}:2: user 'bob': only bcrypt" in str(caught.value)
    assert "Apache MD5 ($apr1$)" in str(caught.value)
    with pytest.raises(ConfigError, match="missing required argument 'htpasswd-file'"):
        build("BasicAuth", {})


# -- the chain: before every other filter ------------------------------------------------------
ROUTES = """\
default-filters:
  - AddRequestHeader=X-Default, 1
routes:
  - id: keyed
    uri: http://127.0.0.1:9
    predicates: [Path=/**]
    filters:
      - name: RequestRateLimiter
        args:
          redis-rate-limiter.replenishRate: 1
          redis-rate-limiter.burstCapacity: 2
      - LocalResponseCache=1m
      - ApiKey={keys}
"""


def test_auth_filters_run_before_every_other_filter(keys_file: Path) -> None:
    factory = LocalRateLimiters(FakeClock())
    _, routes = validate_text(
        ROUTES.format(keys=keys_file),
        "routes.yml",
        builtin_predicates(),
        builtin_filters(),
        lambda: BuildContext(now=lambda: NOW, rate_limiters=factory),
    )
    (route,) = routes
    names = [f.name for f in route.filters]
    assert names[0] == "ApiKey"  # listed last, it still runs first: the cache can't answer
    assert route.filters[0].order == AUTH_ORDER
    assert names.index("RequestRateLimiter") > 0
    # The limiter's principal key is the one the ApiKey set: each key name has its bucket.
    api_key, limiter = route.filters[0], route.filters[names.index("RequestRateLimiter")]
    assert isinstance(api_key, SyncFilter) and isinstance(limiter, SyncFilter)

    def call(key: str) -> int:
        exchange = keyed(key)
        refused = api_key.pre(exchange) or limiter.pre(exchange)
        return 200 if refused is None else refused.status

    assert [call("b-key") for _ in range(3)] == [200, 200, 429]
    assert call("r-key") == 200
    assert call("nope") == 401
