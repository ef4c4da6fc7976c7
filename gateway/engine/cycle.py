"""One request on a client connection, from its parsed head to the last byte of its response."""

from __future__ import annotations

import asyncio

from gateway.engine.body import StreamBody
from gateway.engine.listener import ExchangeListener
from gateway.exchange import Exchange

# The most request body we read and drop after answering, to keep a connection alive.
MAX_LINGER_BYTES = 4 * 1024 * 1024
# nginx's status for "the client closed the connection before the response was complete".
CLIENT_CLOSED = 499


class RequestCycle:
    """The per-request state the connection and the response writer share."""

    __slots__ = (
        "begun",
        "body",
        "bytes_out",
        "chunked_out",
        "exchange",
        "expect_continue",
        "keep_alive",
        "method",
        "observed",
        "status",
        "task",
        "upgrade_buffer",
        "version",
    )

    def __init__(self, exchange: Exchange, method: bytes, version: bytes, keep_alive: bool) -> None:
        self.exchange = exchange
        self.method = method
        self.version = version
        self.keep_alive = keep_alive
        self.body: StreamBody | None = None  # the request body, when there is one
        self.chunked_out = False  # the response body is re-framed as chunked
        self.expect_continue = False  # a 100 Continue is owed when the body is first read
        self.task: asyncio.Task[None] | None = None
        self.begun = False  # the task has taken its first step
        self.upgrade_buffer = b""  # bytes the client sent after an upgrade request's head
        self.status = 0  # what the client got (0: nothing yet)
        self.bytes_out = 0
        self.observed = False  # the listener was told it finished

    def report(self, listener: ExchangeListener | None, status: int) -> None:
        """Tell the listener this request is over, once, with the status the client got."""
        if listener is not None and not self.observed:
            self.observed = True
            body = self.body
            listener.finished(
                self.exchange, status, body.received if body is not None else 0, self.bytes_out
            )

    def abandon(self, listener: ExchangeListener | None, exc: BaseException) -> None:
        """The client went away: the request ends (499 unless a status went out), its body
        fails with ``exc`` and its handler is cancelled."""
        self.report(listener, self.status or CLIENT_CLOSED)
        if self.body is not None:
            self.body.feed_error(exc)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def can_linger(self, body: StreamBody) -> bool:
        """Answered before its body was all in: may the rest be read and dropped, so the
        connection can carry the next request?"""
        if not self.keep_alive:
            return False
        if self.expect_continue:
            return False  # the client is waiting for our go-ahead: it won't send the body
        remaining = None if body.length is None else body.length - body.received
        return remaining is None or remaining <= MAX_LINGER_BYTES
