"""``uri: no://op``, SCG's idiom for a route its own filters answer or re-target."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.routing.route import RouteUri


@pytest.mark.parametrize("raw", ["no://op", "NO://op", "no://anything", " no://op "])
def test_no_scheme_is_accepted(raw: str) -> None:
    uri = RouteUri.parse(raw)
    assert (uri.scheme, uri.is_noop, uri.raw) == ("no", True, raw)
    assert (uri.is_lb, uri.is_forward, uri.service, uri.host) == (False, False, None, "")


def test_no_scheme_needs_something_after_it() -> None:
    with pytest.raises(ConfigError, match="write no://op"):
        RouteUri.parse("no:")


def test_other_unknown_schemes_stay_refused() -> None:
    with pytest.raises(ConfigError, match="unsupported URI scheme 'ftp'"):
        RouteUri.parse("ftp://files")


@pytest.mark.parametrize("raw", ["http://h", "lb://svc", "forward:/x", "ws://h", "lb://no"])
def test_only_no_is_noop(raw: str) -> None:
    assert not RouteUri.parse(raw).is_noop
