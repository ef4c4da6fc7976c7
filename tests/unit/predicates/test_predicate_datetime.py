from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate
from gateway.predicates import datetime as dtp

Build = Callable[..., Predicate]
Make = Callable[..., Exchange]

# 2017-01-20T17:42:47.789-07:00 is 2017-01-21T00:42:47.789Z.
DOC_INSTANT = 1484959367.789
DOC_TEXT = "2017-01-20T17:42:47.789-07:00[America/Denver]"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_factory_shapes() -> None:
    assert (dtp.AFTER.name, dtp.AFTER.shortcut_fields) == ("After", ("datetime",))
    assert (dtp.BEFORE.name, dtp.BEFORE.shortcut_fields) == ("Before", ("datetime",))
    assert (dtp.BETWEEN.name, dtp.BETWEEN.shortcut_fields) == (
        "Between",
        ("datetime1", "datetime2"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DOC_TEXT, DOC_INSTANT),
        ("2017-01-20T17:42:47.789-07:00", DOC_INSTANT),
        ("2017-01-21T00:42:47.789Z", DOC_INSTANT),
        ("2017-01-21T00:42:47.789Z[UTC]", DOC_INSTANT),
        ("2017-01-20T17:42:47.789[America/Denver]", DOC_INSTANT),
        ("1484959367789", DOC_INSTANT),
        (1484959367789, DOC_INSTANT),
        (dt.datetime(2017, 1, 21, 0, 42, 47, 789000, tzinfo=dt.UTC), DOC_INSTANT),
        ("2017-01-21T00:42:47.789123456Z", 1484959367.789123),
    ],
)
def test_parse_instant(text: object, expected: float) -> None:
    instant, _ = dtp.parse_instant(text)
    assert instant == pytest.approx(expected, abs=1e-6)


def test_offset_wins_over_region_as_in_java() -> None:
    # Java resolves an explicit offset first; the region only names the zone.
    instant, _ = dtp.parse_instant("2017-01-20T17:42:47.789-07:00[Europe/Paris]")
    assert instant == pytest.approx(DOC_INSTANT)


@pytest.mark.parametrize(
    "text",
    [
        "2017-01-20T17:42:47",
        "2017-01-20T17:42:47-07:00[Mars/Olympus]",
        "yesterday",
        "2017-13-01T00:00:00Z",
        True,
        dt.datetime(2017, 1, 1),
    ],
)
def test_parse_instant_rejects(text: object) -> None:
    with pytest.raises(ValueError, match=r"date-time|time zone|needs an offset"):
        dtp.parse_instant(text)


def test_after(build: Build, exchange: Make) -> None:
    clock = Clock(DOC_INSTANT - 1)
    predicate = build("After", DOC_TEXT, ctx=BuildContext(now=clock))
    assert not predicate.test(exchange())
    clock.now = DOC_INSTANT
    assert not predicate.test(exchange())  # strictly after, as ZonedDateTime.isAfter
    clock.now = DOC_INSTANT + 0.001
    assert predicate.test(exchange())
    assert predicate.describe() == f"After: {DOC_TEXT}"


def test_before(build: Build, exchange: Make) -> None:
    clock = Clock(DOC_INSTANT - 1)
    predicate = build("Before", DOC_TEXT, ctx=BuildContext(now=clock))
    assert predicate.test(exchange())
    clock.now = DOC_INSTANT
    assert not predicate.test(exchange())
    assert predicate.describe() == f"Before: {DOC_TEXT}"


def test_between_doc_example(build: Build, exchange: Make) -> None:
    second = "2017-01-21T17:42:47.789-07:00[America/Denver]"
    clock = Clock(DOC_INSTANT + 3600)
    predicate = build("Between", f"{DOC_TEXT}, {second}", ctx=BuildContext(now=clock))
    assert predicate.test(exchange())
    clock.now = DOC_INSTANT - 1
    assert not predicate.test(exchange())
    clock.now = DOC_INSTANT + 86400
    assert not predicate.test(exchange())
    assert predicate.describe() == f"Between: {DOC_TEXT} and {second}"


def test_epoch_millis_describe(build: Build) -> None:
    assert build("After", "1484959367789").describe() == "After: 2017-01-21T00:42:47.789000Z"


def test_between_order_checked_at_build(build: Build) -> None:
    with pytest.raises(ConfigError, match=r"argument 'datetime2'.*must be after"):
        build("Between", f"{DOC_TEXT}, {DOC_TEXT}")


def test_bad_datetime_names_the_argument(build: Build) -> None:
    with pytest.raises(ConfigError, match="argument 'datetime'"):
        build("After", "soon")
    with pytest.raises(ConfigError, match="missing required argument 'datetime2'"):
        build("Between", DOC_TEXT)
