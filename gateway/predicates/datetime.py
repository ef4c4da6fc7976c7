"""SCG's ``After``, ``Before`` and ``Between`` predicates: the request arrives after, before, or
strictly between configured instants.

Instants are written as SCG accepts them: a Java ``ZonedDateTime`` string
(``2017-01-20T17:42:47.789-07:00[America/Denver]``), plain ISO-8601 with an offset or ``Z``, or
epoch milliseconds. The clock is ``BuildContext.now`` (epoch seconds), read per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.args import Args
from gateway.exchange import Exchange
from gateway.extension import BuildContext, Predicate, PredicateFactory, Verdict

_ZONED = re.compile(r"(?P<local>[^\[\]]+?)(?:\[(?P<zone>[^\[\]]+)\])?")
_MILLIS = re.compile(r"[+-]?\d+")


def parse_instant(value: Any) -> tuple[float, str]:
    """(epoch seconds, display text) of a configured instant; ``ValueError`` if unusable.

    When both an offset and a ``[Region/City]`` are given, the offset fixes the instant and the
    region is only checked to exist, exactly as Java's ``ZonedDateTime.parse`` resolves it. A
    region without an offset is accepted too and resolved in that zone.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a date-time: {value!r}")
    if isinstance(value, int):  # YAML hands epoch millis over as a number
        return _from_millis(value)
    if isinstance(value, datetime):  # YAML parses unquoted ISO timestamps itself
        if value.tzinfo is None:
            raise ValueError(f"date-time {value.isoformat()!r} needs an offset (e.g. Z, +01:00)")
        return value.timestamp(), value.isoformat()
    text = str(value).strip()
    if _MILLIS.fullmatch(text):
        return _from_millis(int(text))
    found = _ZONED.fullmatch(text)
    if found is None:
        raise ValueError(f"not a date-time: {text!r}")
    try:
        parsed = datetime.fromisoformat(found.group("local"))
    except ValueError:
        raise ValueError(
            f"not a date-time: {text!r} (use e.g. 2017-01-20T17:42:47.789-07:00[America/Denver])"
        ) from None
    zone_name = found.group("zone")
    if zone_name is not None:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone_name!r} in {text!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
    if parsed.tzinfo is None:
        raise ValueError(f"date-time {text!r} needs an offset (e.g. Z, +01:00) or a [Region/City]")
    return parsed.timestamp(), text


def _from_millis(millis: int) -> tuple[float, str]:
    try:
        moment = datetime.fromtimestamp(millis / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch milliseconds out of range: {millis}") from None
    return millis / 1000, moment.isoformat().replace("+00:00", "Z")


def _instant(args: Args, name: str) -> tuple[float, str]:
    try:
        return parse_instant(args.raw(name))
    except ValueError as exc:
        args.fail(name, str(exc))


class _InstantPredicate(Predicate):
    """A moment in time compared with the injected clock; subclasses pick the side."""

    __slots__ = ("_now", "instant", "text")

    def __init__(self, instant: float, text: str, now: Callable[[], float]) -> None:
        self.instant = instant
        self.text = text
        self._now = now


class AfterPredicate(_InstantPredicate):
    __slots__ = ()

    def test(self, exchange: Exchange) -> bool:
        return self._now() > self.instant

    def describe(self) -> str:
        return f"After: {self.text}"

    def explain(self, exchange: Exchange) -> Verdict:
        now = _when(self._now())
        if self.test(exchange):
            return Verdict(True, f"now ({now}) is after {self.text}")
        return Verdict(False, f"now ({now}) is not after {self.text}")


class BeforePredicate(_InstantPredicate):
    __slots__ = ()

    def test(self, exchange: Exchange) -> bool:
        return self._now() < self.instant

    def describe(self) -> str:
        return f"Before: {self.text}"

    def explain(self, exchange: Exchange) -> Verdict:
        now = _when(self._now())
        if self.test(exchange):
            return Verdict(True, f"now ({now}) is before {self.text}")
        return Verdict(False, f"now ({now}) is not before {self.text}")


class BetweenPredicate(Predicate):
    __slots__ = ("_now", "end", "end_text", "start", "start_text")

    def __init__(
        self, start: tuple[float, str], end: tuple[float, str], now: Callable[[], float]
    ) -> None:
        self.start, self.start_text = start
        self.end, self.end_text = end
        self._now = now

    def test(self, exchange: Exchange) -> bool:
        return self.start < self._now() < self.end

    def describe(self) -> str:
        return f"Between: {self.start_text} and {self.end_text}"

    def explain(self, exchange: Exchange) -> Verdict:
        now = _when(self._now())
        span = f"{self.start_text} and {self.end_text}"
        if self.test(exchange):
            return Verdict(True, f"now ({now}) is between {span}")
        return Verdict(False, f"now ({now}) is not between {span}")


def _when(instant: float) -> str:
    """An instant as the explain API shows it: UTC, to the second."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_after(args: Args, ctx: BuildContext) -> Predicate:
    instant, text = _instant(args, "datetime")
    args.finish()
    return AfterPredicate(instant, text, ctx.now)


def build_before(args: Args, ctx: BuildContext) -> Predicate:
    instant, text = _instant(args, "datetime")
    args.finish()
    return BeforePredicate(instant, text, ctx.now)


def build_between(args: Args, ctx: BuildContext) -> Predicate:
    start = _instant(args, "datetime1")
    end = _instant(args, "datetime2")
    args.finish()
    if not start[0] < end[0]:
        args.fail("datetime2", f"{end[1]} must be after datetime1 {start[1]}")
    return BetweenPredicate(start, end, ctx.now)


AFTER = PredicateFactory(name="After", shortcut_fields=("datetime",), build=build_after)
BEFORE = PredicateFactory(name="Before", shortcut_fields=("datetime",), build=build_before)
BETWEEN = PredicateFactory(
    name="Between", shortcut_fields=("datetime1", "datetime2"), build=build_between
)
FACTORIES = (AFTER, BEFORE, BETWEEN)
