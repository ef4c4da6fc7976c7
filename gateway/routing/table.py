"""The route table: built routes in match order, and the lookup that picks one per request."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from gateway.errors import ConfigError
from gateway.exchange import Exchange
from gateway.routing.route import Route

_Test = Callable[[Exchange], bool]


class RouteTable:
    """Routes sorted by ``order``, ties kept in file order (SCG sorts the same way, stably).

    ``match`` returns the first route whose predicates all hold; a route without predicates
    matches everything, as in SCG. Immutable once built: a reload builds a new table and swaps
    it in whole, so a request never sees half of one table and half of another.
    """

    __slots__ = ("_by_id", "_candidates", "_routes")

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
        self._candidates: tuple[tuple[Route, tuple[_Test, ...]], ...] = tuple(
            (route, tuple(predicate.test for predicate in route.predicates)) for route in ordered
        )

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
        # Index seam: today every route is a candidate, tried in order. An index (say, by the
        # literal prefix of each route's Path patterns and its Host) would narrow this to the
        # routes that could match, keeping their relative order so the result is unchanged.
        for route, tests in self._candidates:
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
