"""The filter contract, in two shapes.

Most SCG filters only edit the request before forwarding and/or the response after it, with no
await. They are ``SyncFilter``s: the chain builder folds a run of them into one layer (pres in
order, then the inner handler, then posts in reverse), because a coroutine hop per filter would
cost more than the work. Filters that must await (rate limit, breaker, retry) are
``WrappingFilter``s and become a layer of their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.args import Args, ShortcutType
from gateway.exchange import Exchange, Handler, Response
from gateway.routing.context import BuildContext


class GatewayFilter(ABC):
    name: str = ""

    @abstractmethod
    def describe(self) -> str:
        """The text SCG's actuator shows, e.g. ``[AddRequestHeader X-Request-red = 'blue']``."""


class SyncFilter(GatewayFilter):
    """Override ``pre`` and/or ``post``. ``pre`` may return a Response to answer the request
    without forwarding it (later filters and the upstream are skipped; posts of the filters whose
    pre already ran still see the response)."""

    def pre(self, exchange: Exchange) -> Response | None:
        return None

    def post(self, exchange: Exchange, response: Response) -> None:
        return None

    @property
    def has_pre(self) -> bool:
        return type(self).pre is not SyncFilter.pre

    @property
    def has_post(self) -> bool:
        return type(self).post is not SyncFilter.post


class WrappingFilter(GatewayFilter):
    @abstractmethod
    def wrap(self, inner: Handler) -> Handler: ...


@dataclass(frozen=True, slots=True)
class FilterFactory:
    name: str
    shortcut_fields: tuple[str, ...]
    build: Callable[[Args, BuildContext], GatewayFilter]
    shortcut_type: ShortcutType = ShortcutType.DEFAULT
