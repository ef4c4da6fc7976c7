from __future__ import annotations

import pytest

from gateway.engine.body import StreamBody
from tests.unit.engine.fakes import Sink


class Reader:
    """Stands in for the transport whose reading the body pauses (our own protocol)."""

    def __init__(self) -> None:
        self.paused = False
        self.aborted = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def abort(self) -> None:
        self.aborted = True


def make(length: int | None = None, high_water: int = 10) -> tuple[StreamBody, Reader]:
    reader = Reader()
    body = StreamBody(
        length,
        pause_reading=reader.pause,
        resume_reading=reader.resume,
        abort=reader.abort,
        high_water=high_water,
    )
    return body, reader


def test_buffers_until_started_then_streams() -> None:
    body, _ = make()
    body.feed(b"ab")
    sink = Sink()
    body.start(sink)
    body.feed(b"cd")
    body.feed_end()
    assert sink.data == [b"ab", b"cd"]
    assert sink.ended and body.complete


def test_buffering_past_high_water_pauses_reading_until_started() -> None:
    body, reader = make(high_water=4)
    body.feed(b"12345")
    assert reader.paused
    body.start(Sink())
    assert not reader.paused


def test_error_before_start_is_delivered_on_start() -> None:
    body, _ = make()
    body.feed(b"x")
    body.feed_error(ConnectionResetError("gone"))
    sink = Sink()
    body.start(sink)
    assert sink.data == [b"x"]
    assert isinstance(sink.error, ConnectionResetError)
    assert not sink.ended


def test_end_is_reported_once_and_error_after_end_is_ignored() -> None:
    body, _ = make()
    sink = Sink()
    body.start(sink)
    body.feed_end()
    body.feed_end()
    body.feed_error(RuntimeError("late"))
    assert sink.ended and sink.error is None


def test_discard_drops_data_and_resumes_reading() -> None:
    body, reader = make(high_water=2)
    body.feed(b"abc")
    assert reader.paused
    body.discard()
    assert not reader.paused
    body.feed(b"more")
    body.feed_end()
    assert body.complete and body.received == 7


def test_abort_of_unfinished_body_aborts_the_transport() -> None:
    body, reader = make()
    body.abort()
    assert reader.aborted
    done, reader2 = make()
    done.feed_end()
    done.abort()
    assert not reader2.aborted


def test_when_done_runs_once_at_the_end() -> None:
    body, _ = make()
    calls: list[str] = []
    body.when_done(lambda: calls.append("done"))
    body.start(Sink())
    body.feed(b"x")
    assert calls == []
    body.feed_end()
    body.abort()
    assert calls == ["done"]


@pytest.mark.parametrize("how", ["end", "error", "abort"])
def test_when_done_on_a_body_already_over_runs_at_once(how: str) -> None:
    body, _ = make()
    if how == "end":
        body.feed_end()
    elif how == "error":
        body.feed_error(ConnectionResetError("gone"))
    else:
        body.abort()
    calls: list[str] = []
    body.when_done(lambda: calls.append("done"))
    assert calls == ["done"]
