"""``ReplayableBody`` and its kept replays as ``BodySource``s, ``when_done`` included."""

from __future__ import annotations

from gateway.engine.body import StreamBody
from gateway.engine.replay import ReplayableBody
from tests.unit.engine.fakes import Sink


def client_body(length: int | None = None) -> StreamBody:
    return StreamBody(length, pause_reading=_nothing, resume_reading=_nothing, abort=_nothing)


def sent_once(chunks: list[bytes], limit: int = 100) -> ReplayableBody:
    source = client_body()
    body = ReplayableBody(source, limit)
    body.start(Sink())
    for chunk in chunks:
        source.feed(chunk)
    source.feed_end()
    return body


def test_the_first_attempt_is_done_when_the_clients_body_is() -> None:
    source = client_body()
    body = ReplayableBody(source, 100)
    calls: list[str] = []
    body.when_done(lambda: calls.append("done"))
    body.start(Sink())
    source.feed(b"abc")
    assert calls == []
    source.feed_end()
    assert calls == ["done"]


def test_a_replay_carries_the_same_bytes() -> None:
    replay = sent_once([b"ab", b"cd"]).replay()
    sink = Sink()
    replay.start(sink)
    assert sink.data == [b"ab", b"cd"] and sink.ended


def test_a_replay_is_done_once_written_out() -> None:
    replay = sent_once([b"ab"]).replay()
    calls: list[str] = []
    replay.when_done(lambda: calls.append("done"))
    assert calls == []
    replay.start(Sink())
    assert calls == ["done"]
    replay.when_done(lambda: calls.append("again"))  # already over: at once
    assert calls == ["done", "again"]


def test_an_aborted_replay_is_done() -> None:
    replay = sent_once([b"ab"]).replay()
    calls: list[str] = []
    replay.when_done(lambda: calls.append("done"))
    replay.abort()
    assert calls == ["done"]


def test_a_body_over_the_limit_is_not_replayable() -> None:
    assert sent_once([b"a" * 10], limit=100).replayable
    assert not sent_once([b"a" * 101], limit=100).replayable


def _nothing() -> None:
    return None
