"""Every built-in predicate's verdict for the explain API: the same answer as ``test`` and a
reason that names what was compared, on both sides."""

from __future__ import annotations

import random

import pytest

from gateway.exchange import Exchange
from gateway.extension import (
    BuildContext,
    Predicate,
    Verdict,
    WeightForecast,
    WeightGroups,
)
from gateway.predicates.catalog import builtin_predicates
from tests.unit.predicates.conftest import BuildPredicate, MakeExchange, build_predicate

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def verdict(predicate: Predicate, exchange: Exchange) -> Verdict:
    """The verdict, checked against ``test`` on a fresh copy of the request."""
    answer = predicate.explain(exchange)
    assert answer.matched == predicate.test(exchange)
    return answer


@pytest.mark.parametrize(
    ("name", "shortcut", "request_", "expected"),
    [
        ("Path", "/orders/**", {"path": "/orders/1"}, (True, "path /orders/1 matches /orders/**")),
        (
            "Path",
            "/orders/**,/carts/**",
            {"path": "/order/1"},
            (False, "path /order/1 does not match /orders/**, /carts/**"),
        ),
        ("Method", "GET,POST", {"method": "POST"}, (True, "method POST is one of GET, POST")),
        ("Method", "GET", {"method": "DELETE"}, (False, "method DELETE is not one of GET")),
        (
            "Header",
            "X-Version, v\\d",
            {"headers": [("X-Version", "v2")]},
            (True, "header X-Version matches v\\d"),
        ),
        (
            "Header",
            "X-Version, v\\d",
            {"headers": [("X-Version", "beta")]},
            (False, "header X-Version = 'beta' does not match v\\d"),
        ),
        ("Header", "X-Version", {}, (False, "no header X-Version")),
        (
            "Header",
            "X-Version",
            {"headers": [("x-version", "")]},
            (True, "header X-Version is present"),
        ),
        (
            "Host",
            "**.example.org",
            {"headers": [("Host", "api.example.org")]},
            (True, "host api.example.org matches **.example.org"),
        ),
        (
            "Host",
            "**.example.org",
            {"headers": [("Host", "example.com")]},
            (False, "host example.com does not match **.example.org"),
        ),
        (
            "Cookie",
            "session, s-.*",
            {"headers": [("Cookie", "a=1; session=s-42")]},
            (True, "cookie session matches s-.*"),
        ),
        (
            "Cookie",
            "session, s-.*",
            {"headers": [("Cookie", "session=x")]},
            (False, "cookie session = 'x' does not match s-.*"),
        ),
        ("Cookie", "session, s-.*", {}, (False, "no cookie session")),
        ("Query", "debug", {"query": "debug=1"}, (True, "query parameter debug is present")),
        ("Query", "debug", {"query": "x=1"}, (False, "query parameter debug is absent")),
        ("Query", "v, 2.*", {"query": "v=21"}, (True, "query parameter v matches 2.*")),
        (
            "Query",
            "v, 2.*",
            {"query": "v=1&v"},
            (False, "query parameter v = '1', (no value) does not match 2.*"),
        ),
        ("Query", "v, 2.*", {}, (False, "no query parameter v")),
        (
            "RemoteAddr",
            "10.0.0.0/8",
            {"client_host": "10.1.2.3"},
            (True, "client address 10.1.2.3 is in 10.0.0.0/8"),
        ),
        (
            "RemoteAddr",
            "10.0.0.0/8",
            {"client_host": "192.168.1.1"},
            (False, "client address 192.168.1.1 is not in 10.0.0.0/8"),
        ),
        (
            "XForwardedRemoteAddr",
            "10.0.0.0/8",
            {"headers": [("X-Forwarded-For", "10.9.9.9")]},
            (True, "forwarded client 10.9.9.9 is in 10.0.0.0/8"),
        ),
        (
            "XForwardedRemoteAddr",
            "10.0.0.0/8",
            {"headers": [("X-Forwarded-For", "8.8.8.8")]},
            (False, "forwarded client 8.8.8.8 is not in 10.0.0.0/8"),
        ),
    ],
)
def test_request_predicates_say_what_they_compared(
    name: str,
    shortcut: str,
    request_: dict[str, object],
    expected: tuple[bool, str],
    build: BuildPredicate,
    exchange: MakeExchange,
) -> None:
    predicate = build(name, shortcut)
    answer = verdict(predicate, exchange(**request_))
    assert (answer.matched, answer.reason) == expected


A, B, C = "2025-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "2026-06-01T00:00:00Z"
SAID = "now (2026-01-01T00:00:00Z) is"


@pytest.mark.parametrize(
    ("name", "shortcut", "expected"),
    [
        ("After", A, (True, f"{SAID} after {A}")),
        ("After", B, (False, f"{SAID} not after {B}")),
        ("Before", B, (True, f"{SAID} before {B}")),
        ("Before", A, (False, f"{SAID} not before {A}")),
        ("Between", f"{A}, {B}", (True, f"{SAID} between {A} and {B}")),
        ("Between", f"{C}, {B}", (False, f"{SAID} not between {C} and {B}")),
    ],
)
def test_time_predicates_read_the_injected_clock(
    name: str, shortcut: str, expected: tuple[bool, str], exchange: MakeExchange
) -> None:
    predicate = build_predicate(name, shortcut, ctx=BuildContext(now=lambda: NOW))
    answer = verdict(predicate, exchange())
    assert (answer.matched, answer.reason) == expected


def test_weight_says_which_route_was_drawn_and_the_forecast_moves_nothing(
    exchange: MakeExchange,
) -> None:
    groups = WeightGroups(random.Random(5))
    built = {
        route: build_predicate(
            "Weight", f"g, {weight}", ctx=BuildContext(weights=groups, route_id=route)
        )
        for route, weight in (("blue", 3), ("green", 1))
    }
    draws: list[str | None] = []
    for _ in range(12):
        forecast = exchange()
        forecast.weight_choices = WeightForecast([groups])
        said = {route: p.explain(forecast) for route, p in built.items()}
        winner = next(route for route, v in said.items() if v.matched)
        loser = next(route for route in built if route != winner)
        assert said[winner].reason.startswith("this route was drawn (weight ")
        assert said[loser].reason.startswith(f"route {winner} was drawn (weight ")
        assert "of 4 in group g" in said[loser].reason
        # The forecast is the draw the next real request gets.
        real = exchange()
        assert built[winner].test(real)
        assert not built[loser].test(real)
        draws.append(winner)
    assert set(draws) == {"blue", "green"}


def test_every_builtin_predicate_has_its_own_reason() -> None:
    # A new built-in without an ``explain`` would fall back to the generic "holds" text.
    generic = Predicate.explain
    classes = {
        type(build_predicate(name, shortcut, ctx=BuildContext(route_id="r")))
        for name, shortcut in (
            ("After", "2025-01-01T00:00:00Z"),
            ("Before", "2025-01-01T00:00:00Z"),
            ("Between", "2025-01-01T00:00:00Z, 2026-01-01T00:00:00Z"),
            ("Cookie", "a, b"),
            ("Header", "a"),
            ("Host", "a"),
            ("Method", "GET"),
            ("Path", "/a"),
            ("Query", "a"),
            ("RemoteAddr", "10.0.0.0/8"),
            ("Weight", "g, 1"),
            ("XForwardedRemoteAddr", "10.0.0.0/8"),
        )
    }
    assert len(classes) == len(builtin_predicates())
    assert all(cls.explain is not generic for cls in classes)


def test_a_predicate_without_its_own_explain_is_explained_by_its_description(
    exchange: MakeExchange,
) -> None:
    class Plugin(Predicate):
        def test(self, exchange: Exchange) -> bool:
            return exchange.request.path == "/p"

        def describe(self) -> str:
            return "Plugin: /p"

    assert Plugin().explain(exchange(path="/p")) == Verdict(True, "Plugin: /p: holds")
    assert Plugin().explain(exchange(path="/q")) == Verdict(False, "Plugin: /p: does not hold")
