"""IpFilter=allow|deny, CIDR...: refused clients get 403 and go nowhere."""

from __future__ import annotations

import json

import pytest

from gateway.config.errors import ConfigErrors
from gateway.errors import ConfigError
from gateway.exchange import Exchange, Response
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from tests.unit.filters.conftest import BuildFilter, MakeExchange


def from_client(exchange_for: MakeExchange, client: str, resolved: str | None = None) -> Exchange:
    ex = exchange_for(path="/admin")
    ex.client_host = client
    ex.resolved_client = resolved
    return ex


def refused(response: Response | None) -> bool:
    if response is None:
        return False
    assert response.status == 403
    assert response.headers.get("Content-Type") == "application/json"
    assert isinstance(response.body, bytes)
    body = json.loads(response.body)
    assert (body["status"], body["error"], body["path"]) == (403, "Forbidden", "/admin")
    return True


def test_allow_lets_only_its_networks_pass(build: BuildFilter, exchange_for: MakeExchange) -> None:
    f = build("IpFilter", "allow, 10.0.0.0/8, 192.168.1.7, 2001:db8::/32")
    for client in ("10.1.2.3", "192.168.1.7", "2001:db8::9", "::ffff:10.0.0.1"):
        assert not refused(f.pre(from_client(exchange_for, client))), client
    for client in ("11.0.0.1", "192.168.1.8", "2001:db9::1", "::ffff:11.0.0.1", ""):
        assert refused(f.pre(from_client(exchange_for, client))), client


def test_deny_refuses_its_networks(build: BuildFilter, exchange_for: MakeExchange) -> None:
    f = build("IpFilter", "deny, 203.0.113.0/24, ::1")
    for client in ("203.0.113.9", "::1", "::ffff:203.0.113.1"):
        assert refused(f.pre(from_client(exchange_for, client))), client
    for client in ("203.0.114.1", "127.0.0.1", "::2", ""):
        assert not refused(f.pre(from_client(exchange_for, client))), client


def test_the_resolved_client_decides_not_the_peer(
    build: BuildFilter, exchange_for: MakeExchange
) -> None:
    allow = build("IpFilter", "allow, 203.0.113.0/24")
    assert not refused(allow.pre(from_client(exchange_for, "127.0.0.1", "203.0.113.5")))
    assert refused(allow.pre(from_client(exchange_for, "203.0.113.5", "127.0.0.1")))


def test_the_expanded_form(build: BuildFilter, exchange_for: MakeExchange) -> None:
    f = build("IpFilter", args={"action": "DENY", "sources": ["10.0.0.0/8", "fd00::/8"]})
    assert refused(f.pre(from_client(exchange_for, "fd00::1")))
    assert not refused(f.pre(from_client(exchange_for, "172.16.0.1")))
    assert f.describe() == "[IpFilter action = 'deny', sources = list['10.0.0.0/8', 'fd00::/8']]"
    one = build("IpFilter", args={"action": "allow", "sources": "10.0.0.1"})
    assert not refused(one.pre(from_client(exchange_for, "10.0.0.1")))


@pytest.mark.parametrize(
    ("shortcut", "says"),
    [
        ("allow, 10.0.0.0/33", "argument 'sources': not an IP address or CIDR: '10.0.0.0/33'"),
        ("deny, 10.0.0.0/8, example.org", "not an IP address or CIDR: 'example.org'"),
        ("permit, 10.0.0.0/8", "argument 'action': expected one of allow, deny, got 'permit'"),
        ("allow", "argument 'sources': at least one"),
        ("", "argument 'action'"),
    ],
)
def test_bad_arguments_are_refused(shortcut: str, says: str, build: BuildFilter) -> None:
    with pytest.raises(ConfigError) as caught:
        build("IpFilter", shortcut)
    assert says in str(caught.value)


def test_a_bad_cidr_names_its_route_and_filter() -> None:
    text = """\
routes:
  - id: admin
    uri: http://127.0.0.1:9
    predicates: [Path=/admin/**]
    filters:
      - StripPrefix=1
      - IpFilter=allow, 10.0.0.300
"""
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "routes.yml", builtin_predicates(), builtin_filters())
    error = caught.value
    messages = [str(e) for e in error.errors] if isinstance(error, ConfigErrors) else [str(error)]
    assert messages == [
        "routes.yml: routes[0] (admin) filters[1] (IpFilter): argument 'sources': "
        "not an IP address or CIDR: '10.0.0.300' "
        "('10.0.0.300' does not appear to be an IPv4 or IPv6 network)"
    ]
