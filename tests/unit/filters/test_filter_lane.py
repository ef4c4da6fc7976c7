"""Lane, LaneSplit and LaneStrict: what they set on a request, and located errors for bad
arguments."""

from __future__ import annotations

import random
import textwrap

import pytest

from gateway.config.args import Args
from gateway.config.errors import ConfigErrors
from gateway.errors import ConfigError
from gateway.extension import BuildContext
from gateway.filters.catalog import builtin_filters
from gateway.filters.lane import Lane, LaneSplit, LaneStrict
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text
from resilience.lanes import STABLE
from tests.unit.filters.conftest import BuildFilter, MakeExchange


def errors(filters: str) -> list[str]:
    text = textwrap.dedent(
        f"""
        routes:
          - id: orders
            uri: lb://orders
            filters: {filters}
        """
    )
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "routes.yml", builtin_predicates(), builtin_filters())
    if isinstance(caught.value, ConfigErrors):
        return [str(error) for error in caught.value.errors]
    return [str(caught.value)]


def where(name: str) -> str:
    return f"routes.yml: routes[0] (orders) filters[0] ({name}): "


@pytest.mark.parametrize(
    ("filters", "name", "message"),
    [
        ("['LaneSplit=canary, 120']", "LaneSplit", "argument 'percent': must be between 0 and 100"),
        ("['LaneSplit=canary, -1']", "LaneSplit", "argument 'percent': must be between 0 and 100"),
        ("['LaneSplit=canary, lots']", "LaneSplit", "argument 'percent': expected a number"),
        ("['LaneSplit=canary']", "LaneSplit", "missing required argument 'percent'"),
        (
            "['LaneSplit=canary, 20, X-User-Id']",
            "LaneSplit",
            "argument 'key': expected header:NAME or cookie:NAME, got 'X-User-Id'",
        ),
        (
            "['LaneSplit=canary, 20, query:user']",
            "LaneSplit",
            "argument 'key': expected header:NAME or cookie:NAME, got 'query:user'",
        ),
        ("['LaneSplit=canary, 20, header:']", "LaneSplit", "argument 'key': expected header:"),
        (
            "['LaneSplit=canary, 20, header:X User']",
            "LaneSplit",
            "argument 'key': 'X User' is not a valid header name",
        ),
        ("['LaneSplit=can ary, 20']", "LaneSplit", "argument 'lane': 'can ary' is not a lane"),
        ("['Lane=']", "Lane", "missing required argument 'lane'"),
        ("['Lane=canary;x']", "Lane", "argument 'lane': 'canary;x' is not a lane name"),
        ("['Lane=a, b']", "Lane", "takes at most 1 argument(s)"),
        ("['LaneStrict=yes']", "LaneStrict", "takes at most 0 argument(s)"),
        ("[{name: LaneStrict, args: {x: 1}}]", "LaneStrict", "unknown argument(s): x"),
        (
            "[{name: LaneSplit, args: {lane: canary, percent: 20, keys: header:X}}]",
            "LaneSplit",
            "unknown argument(s): keys",
        ),
    ],
)
def test_bad_arguments_are_located_errors(filters: str, name: str, message: str) -> None:
    found = errors(filters)
    assert len(found) == 1
    assert found[0].startswith(where(name) + message), found[0]


def test_lane_sets_the_requests_lane(build: BuildFilter, exchange_for: MakeExchange) -> None:
    lane = build("Lane", "canary")
    assert isinstance(lane, Lane)
    ex = exchange_for()
    ex.lane = "blue"  # as a trusted inbound baggage would have: the route filter wins
    assert lane.pre(ex) is None
    assert ex.lane == "canary"
    assert lane.describe() == "[Lane lane = 'canary']"


def test_lane_split_by_header_is_sticky(build: BuildFilter, exchange_for: MakeExchange) -> None:
    split = build("LaneSplit", "canary, 20, header:X-User-Id")
    assert isinstance(split, LaneSplit)

    def lane_of(headers: list[tuple[str, str]]) -> str | None:
        ex = exchange_for(headers=headers)
        split.pre(ex)
        return ex.lane

    # Buckets pinned in tests/unit/resilience/test_lanes.py: user-1000 -> 1714, user-1 -> 8623.
    assert lane_of([("x-user-id", "user-1000")]) == "canary"
    assert lane_of([("X-User-Id", "user-1")]) == STABLE
    assert lane_of([("X-User-Id", "user-1000"), ("X-User-Id", "user-1")]) == "canary"  # first
    assert lane_of([]) == STABLE  # no key: stable
    assert lane_of([("X-User-Id", "")]) == STABLE
    lanes = [lane_of([("X-User-Id", f"user-{i}")]) for i in range(2000)]
    assert 0.17 < lanes.count("canary") / len(lanes) < 0.23
    assert split.describe() == (
        "[LaneSplit lane = 'canary', percent = 20.0, key = 'header:X-User-Id']"
    )


def test_lane_split_by_cookie(build: BuildFilter, exchange_for: MakeExchange) -> None:
    split = build("LaneSplit", "canary, 20, cookie:uid")

    def lane_of(cookie: str) -> str | None:
        ex = exchange_for(headers=[("Cookie", cookie)])
        split.pre(ex)
        return ex.lane

    assert lane_of("a=b; uid=user-1000") == "canary"
    assert lane_of('uid="user-1000"') == "canary"
    assert lane_of("uid=user-1") == STABLE
    assert lane_of("xuid=user-1000; bad cookie;;") == STABLE
    assert lane_of("bad cookie; uid=user-1000") == "canary"  # one odd cookie spoils nothing


def test_lane_split_without_key_draws_from_the_context_rng(exchange_for: MakeExchange) -> None:
    factory = builtin_filters()["LaneSplit"]

    def draws(seed: int) -> list[str | None]:
        split = factory.build(
            Args({"lane": "canary", "percent": "25"}), BuildContext(rng=random.Random(seed))
        )
        assert isinstance(split, LaneSplit)
        out = []
        for _ in range(2000):
            ex = exchange_for()
            split.pre(ex)
            out.append(ex.lane)
        return out

    first = draws(7)
    assert first == draws(7)  # the injected rng decides
    assert 0.22 < first.count("canary") / len(first) < 0.28
    assert set(first) == {"canary", STABLE}


def test_lane_strict_is_a_marker(build: BuildFilter) -> None:
    strict = build("LaneStrict")
    assert isinstance(strict, LaneStrict)
    assert not strict.has_pre and not strict.has_post
    assert strict.describe() == "[LaneStrict]"
