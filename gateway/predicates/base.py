"""The predicate contract: a route matches when every one of its predicates holds."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange
from gateway.routing.context import BuildContext


class Predicate(ABC):
    """Tests a request. Must be cheap and synchronous: it runs for every candidate route.

    A predicate that captures template variables (Path, Host) writes them into
    ``exchange.uri_variables`` only when it returns True.
    """

    @abstractmethod
    def test(self, exchange: Exchange) -> bool: ...

    def path_keys(self) -> frozenset[str] | None:
        """First path segments outside which this predicate can never hold, or None when it
        does not constrain the path. Lets the route table index routes by path."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """The text SCG's actuator shows for this predicate, e.g. ``Paths: [/a/**], match
        trailing slash: true``."""


@dataclass(frozen=True, slots=True)
class PredicateFactory:
    name: str
    shortcut_fields: tuple[str, ...]
    build: Callable[[Args, BuildContext], Predicate]
    shortcut_type: ShortcutType = ShortcutType.DEFAULT
