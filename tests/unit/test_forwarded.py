from __future__ import annotations

import pytest

from gateway.engine.pool import ConnectionPool, PoolSettings
from gateway.exchange import ORIGINAL_PATHS, Exchange, Request, Target
from gateway.forwarded import ForwardedHeaders, forwarded_prefix
from gateway.forwarder import Forwarder
from gateway.headers import Headers
from gateway.security.proxies import TrustedProxies, trusted_proxies


def exchange(
    client: str = "10.0.0.9",
    host: str | None = "gw.example.org:8443",
    path: str = "/x",
    original: str = "/x",
    scheme: str = "http",
) -> Exchange:
    ex = Exchange(Request("GET", path, "", Headers()), client, 5555, "0.0.0.0", 8080, scheme=scheme)
    ex.original_host = host
    ex.original_path = original
    return ex


def apply(
    fwd: ForwardedHeaders, ex: Exchange, incoming: list[tuple[bytes, bytes]]
) -> dict[str, str]:
    """The upstream request head the forwarder builds, as a dict of its fields."""
    ex.request.headers = Headers(incoming)
    forwarder = Forwarder(ConnectionPool(PoolSettings()), fwd, response_timeout=1)
    head = forwarder.head(ex, Target("10.9.9.9", 8000))
    lines = head.decode("latin-1").split("\r\n")[1:-2]
    out: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        assert name not in out, f"{name} twice"
        out[name] = value
    return out


def trusting(rule: str) -> ForwardedHeaders:
    proxies: TrustedProxies | None = trusted_proxies(rule)
    assert proxies is not None
    return ForwardedHeaders(proxies.trusts)


SPOOF = [(b"X-Forwarded-For", b"1.2.3.4"), (b"Forwarded", b"for=1.2.3.4"), (b"X-Keep", b"k")]


def test_untrusted_client_cannot_forge_its_address() -> None:
    out = apply(ForwardedHeaders(), exchange(), SPOOF)
    assert out["X-Forwarded-For"] == "10.0.0.9"
    assert out["Forwarded"] == 'for="10.0.0.9:5555";host="gw.example.org:8443";proto=http'
    assert out["X-Forwarded-Host"] == "gw.example.org:8443"
    assert out["X-Forwarded-Port"] == "8443"
    assert out["X-Forwarded-Proto"] == "http"
    assert out["X-Keep"] == "k"
    assert "X-Forwarded-Prefix" not in out


def test_trusted_proxy_values_are_appended_to() -> None:
    out = apply(trusting(r"10\.0\.0\.\d+"), exchange(), SPOOF)
    # X-Forwarded-* joined as SCG joins them (no space); RFC 7239's ", " for Forwarded.
    assert out["X-Forwarded-For"] == "1.2.3.4,10.0.0.9"
    assert out["Forwarded"].startswith("for=1.2.3.4, for=")


def test_a_trusted_proxys_prefix_is_kept_and_appended_to() -> None:
    trusted = trusting(r"10\.0\.0\.\d+")
    proxied = [(b"X-Forwarded-Prefix", b"/edge"), (b"X-Forwarded-Proto", b"https")]
    out = apply(trusted, exchange(), proxied)
    assert (out["X-Forwarded-Prefix"], out["X-Forwarded-Proto"]) == ("/edge", "https,http")
    stripped = exchange(path="/b")
    stripped.attributes[ORIGINAL_PATHS] = ["/api/b"]
    assert apply(trusted, stripped, proxied)["X-Forwarded-Prefix"] == "/edge,/api"
    # From a client that isn't trusted it is dropped, like the rest.
    assert "X-Forwarded-Prefix" not in apply(ForwardedHeaders(), exchange(), proxied)


@pytest.mark.parametrize(
    ("originals", "sent", "prefix"),
    [
        (["/api/b"], "/b", "/api"),  # StripPrefix=1
        (["/api/b/"], "/b/", "/api"),  # trailing slashes aside
        (["/api"], "/", "/api"),  # stripped to the root
        (["/a/b/c"], "/c", "/a/b"),  # StripPrefix=2
        (["/a/b", "/b"], "/v2/b", ""),  # StripPrefix=1, PrefixPath=/v2
        (["/a/b", "/v2/a/b"], "/a/b", "/v2"),  # PrefixPath=/v2, StripPrefix=1: SCG's /v2
        (["/set/q"], "/x/q", ""),  # SetPath to another path
        (["/x/a/x/a"], "/x/a", "/x/a"),  # the last occurrence, as Java's substringBeforeLast
        (["/"], "/", ""),
    ],
)
def test_prefix_derived_as_scg_derives_it(originals: list[str], sent: str, prefix: str) -> None:
    assert forwarded_prefix(originals, sent) == prefix


def test_prefix_after_strip_and_default_port() -> None:
    stripped = exchange(host="example.org", path="/b", original="/api/b")
    stripped.attributes[ORIGINAL_PATHS] = ["/api/b"]
    out = apply(ForwardedHeaders(), stripped, [])
    assert out["X-Forwarded-Prefix"] == "/api"
    assert out["X-Forwarded-Port"] == "80"
    out = apply(ForwardedHeaders(), exchange(host="[::1]", scheme="https"), [])
    assert out["X-Forwarded-Port"] == "443"


def test_ipv6_client_is_bracketed_in_forwarded() -> None:
    out = apply(ForwardedHeaders(), exchange(client="::1", host=None), [])
    assert out["Forwarded"] == 'for="[::1]:5555";proto=http'
    assert "X-Forwarded-Host" not in out


def test_hop_by_hop_and_connection_named_fields_are_dropped() -> None:
    incoming = [
        (b"Host", b"gw"),
        (b"Connection", b"close, X-Hop, Host"),
        (b"X-Hop", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Expect", b"100-continue"),
        (b"X-Keep", b"k"),
    ]
    out = apply(ForwardedHeaders(), exchange(), incoming)
    assert out["Host"] == "10.9.9.9:8000"  # the upstream's authority, not the client's
    assert out["X-Keep"] == "k"
    for name in ("Connection", "X-Hop", "Keep-Alive", "Expect"):
        assert name not in out
