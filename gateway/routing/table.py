"""The route table: built routes in match order, and the lookup that picks one per request."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.patterns.path_pattern import first_segment_of
from gateway.routing.route import Route

_Test = Callable[[Exchange], bool]


class RouteTable:
    """Routes sorted by ``order``, ties kept in file order (SCG sorts the same way, stably).

    ``match`` returns the first route whose predicates all hold; a route without predicates
    matches everything, as in SCG. Immutable once built: a reload builds a new table and swaps
    it in whole, so a request never sees half of one table and half of another.
    """

    __slots__ = ("_by_id", "_candidates", "_index", "_routes", "_unkeyed")

    def __init__(self, routes: Iterable[Route]) -> None:
        ordered = sorted(routes, key=lambda route: route.order)
        by_id: dict[str, Route] = {}
        for route in ordered:
            if route.id in by_id:
                raise ConfigError(f"duplicate route id {route.id!r}")
            by_id[route.id] = route
        self._routes: tuple[Route, ...] = tuple(ordered)
        self._by_id = by_id
        # The bound ``test`` methods, looked up once here rather than per request.
        entries: list[_Candidate] = [
            (route, tuple(predicate.test for predicate in route.predicates)) for route in ordered
        ]
        self._candidates: tuple[_Candidate, ...] = tuple(entries)
        self._index, self._unkeyed = _index(entries)

    @property
    def routes(self) -> tuple[Route, ...]:
        return self._routes

    def get(self, route_id: str) -> Route | None:
        return self._by_id.get(route_id)

    def __len__(self) -> int:
        return len(self._routes)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def match(self, exchange: Exchange) -> Route | None:
        """The first matching route, or None. Afterwards ``exchange.uri_variables`` holds
        exactly the matched route's captures."""
        if exchange.uri_variables:
            exchange.uri_variables.clear()
        path = exchange.request.path
        candidates = self._index.get(first_segment_of(path), self._unkeyed)
        for route, tests in candidates:
            for test in tests:
                if not test(exchange):
                    break
            else:
                return route
            # A predicate that held before a later one failed may have captured variables;
            # they belong to a route that did not match.
            if exchange.uri_variables:
                exchange.uri_variables.clear()
        return None


_Candidate = tuple[Route, tuple[_Test, ...]]


def _route_keys(route: Route) -> frozenset[str] | None:
    """First path segments the route can match (intersection over its Path predicates), or
    None when its predicates don't pin the first segment down."""
    keys: frozenset[str] | None = None
    for predicate in route.predicates:
        constraint = predicate.path_keys()
        if constraint is not None:
            keys = constraint if keys is None else keys & constraint
    return keys


def _index(
    entries: list[_Candidate],
) -> tuple[dict[str, tuple[_Candidate, ...]], tuple[_Candidate, ...]]:
    """Candidate lists per first path segment, each in table order.

    A request whose first segment is ``k`` can only match routes keyed by ``k`` or routes
    without a key; merging the two in table order keeps "first match wins" exactly as in a
    full scan, while a table of 10,000 ``/svcN/**`` routes tries one route instead of 10,000.
    """
    keyed: dict[str, list[int]] = {}
    unkeyed: list[int] = []
    for position, (route, _) in enumerate(entries):
        keys = _route_keys(route)
        if keys is None:
            unkeyed.append(position)
        else:
            for key in keys:
                keyed.setdefault(key, []).append(position)
    if len(keyed) * len(unkeyed) > _MAX_INDEX_ENTRIES:
        # Every key's list would repeat the many unkeyed routes: scan instead (still correct).
        return {}, tuple(entries)
    index = {
        key: tuple(entries[i] for i in sorted(positions + unkeyed))
        for key, positions in keyed.items()
    }
    return index, tuple(entries[i] for i in unkeyed)


_MAX_INDEX_ENTRIES = 2_000_000
