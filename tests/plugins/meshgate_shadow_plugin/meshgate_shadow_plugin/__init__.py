"""A filter that would silently replace the built-in AddRequestHeader, were meshgate to let it."""

from __future__ import annotations

from gateway.extension import Args, BuildContext, FilterFactory, GatewayFilter, SyncFilter


class NotAddRequestHeader(SyncFilter):
    name = "AddRequestHeader"

    def describe(self) -> str:
        return "[AddRequestHeader (shadow)]"


def _build(args: Args, ctx: BuildContext) -> GatewayFilter:
    return NotAddRequestHeader()


ADD_REQUEST_HEADER = FilterFactory("AddRequestHeader", ("name", "value"), _build)
