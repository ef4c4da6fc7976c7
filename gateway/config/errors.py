"""Every mistake in one route document, each with its place in it, in document order.

An ``ErrorCollector`` gathers them while the document is read (``gateway.config.reader``) and
while its routes are built (``gateway.routing.builder``); ``ConfigErrors`` raises them together,
so the user fixes them all in one go; a ``DocumentLayout`` maps a config's routes and default
filters back to the keys and indexes the document wrote them at.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gateway.config.schema import GatewayConfig
from gateway.errors import ConfigError

# Sort ranks of the parts of a document, so errors come out in a predictable order: an error's
# key is its part's rank, then (for lists) the index of its entry.
RANK_DOCUMENT, RANK_DEFAULT_FILTERS, RANK_ROUTES, RANK_SERVICES = range(4)


class ConfigErrors(ConfigError):
    """Every error found in one document, in document order. ``str()`` is one error per line,
    each with its full location, e.g. ``routes.yml: routes[2] (orders) uri: ...``."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))

    def __iter__(self) -> Iterator[ConfigError]:
        return iter(self.errors)

    def __len__(self) -> int:
        return len(self.errors)


class ErrorCollector:
    """Gathers the errors of one document with their places. ``add`` takes the labels from the
    outside in (``"routes[2] (orders)"``, ``"filters[0] (RewritePath)"``) and a sort key, and
    prefixes the document's name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._items: list[tuple[tuple[int, ...], ConfigError]] = []

    def add(self, error: ConfigError, *labels: str, key: tuple[int, ...] = ()) -> None:
        if isinstance(error, ConfigErrors):
            for item in error.errors:
                self.add(item, *labels, key=key)
            return
        for label in reversed(labels):
            error = error.at(label)
        location = f"{self.source}: {error.location}" if error.location else self.source
        self._items.append((key, ConfigError(error.reason, location)))

    def fail(self, reason: str, *labels: str, key: tuple[int, ...]) -> None:
        """``add`` for a mistake found here rather than raised by something called."""
        self.add(ConfigError(reason), *labels, key=key)

    def __len__(self) -> int:
        return len(self._items)

    def errors(self) -> list[ConfigError]:
        # A stable sort: errors with the same key keep the order they were found in.
        return [error for _, error in sorted(self._items, key=lambda item: item[0])]

    def raise_if_any(self) -> None:
        if self._items:
            raise ConfigErrors(self.errors())


@dataclass(frozen=True, slots=True)
class DocumentLayout:
    """Where each part of a (possibly partial) config sits in its document, so errors found
    later — while building — name the document's keys and indexes, not the config's."""

    source: str
    routes_key: str = "routes"
    default_filters_key: str = "default-filters"
    # The document index of each ``config.routes`` / ``config.default_filters`` entry.
    route_indexes: tuple[int, ...] = ()
    default_filter_indexes: tuple[int, ...] = ()

    @classmethod
    def of(cls, config: GatewayConfig) -> DocumentLayout:
        """The layout of a complete config that came from a top-level document."""
        return cls(
            source=config.source,
            route_indexes=tuple(range(len(config.routes))),
            default_filter_indexes=tuple(range(len(config.default_filters))),
        )

    def route_index(self, position: int) -> int:
        return self.route_indexes[position] if position < len(self.route_indexes) else position

    def default_filter_index(self, position: int) -> int:
        if position < len(self.default_filter_indexes):
            return self.default_filter_indexes[position]
        return position

    def route_label(self, position: int, route_id: str | None) -> str:
        label = f"{self.routes_key}[{self.route_index(position)}]"
        return f"{label} ({route_id})" if route_id else label

    def default_filter_label(self, position: int, name: str | None) -> str:
        label = f"{self.default_filters_key}[{self.default_filter_index(position)}]"
        return f"{label} ({name})" if name else label

    def route_key(self, position: int) -> tuple[int, ...]:
        return (RANK_ROUTES, self.route_index(position))

    def default_filter_key(self, position: int) -> tuple[int, ...]:
        return (RANK_DEFAULT_FILTERS, self.default_filter_index(position))
