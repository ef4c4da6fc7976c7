from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.observability.access_log import FIELDS, AccessLog, AccessTuple, format_record

START = 1_700_000_000.123456  # 2023-11-14T22:13:20.123+00:00


class FakeStream:
    """Collects writes; ``gate`` (when given) holds every write until it is set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.writes: list[str] = []
        self.flushes = 0
        self.gate = gate
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def write(self, s: str, /) -> int:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        with self._lock:
            self.writes.append(s)
        return len(s)

    def flush(self) -> None:
        self.flushes += 1

    def lines(self) -> list[dict[str, Any]]:
        with self._lock:
            text = "".join(self.writes)
        assert text == "" or text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]


def rec(**overrides: Any) -> AccessTuple:
    values: dict[str, Any] = {
        "start_time": START,
        "request_id": "req-1",
        "route_id": "users",
        "method": "GET",
        "path": "/users/42?x=1",
        "status": 200,
        "duration": 0.0123456,
        "upstream": "10.0.0.5:8080",
        "bytes_in": 12,
        "bytes_out": 3456,
        "client": "192.0.2.7",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "lane": "canary",
        "lane_fallback": False,
        "principal": "billing",
    }
    values.update(overrides)
    return tuple(values.values())


@pytest.fixture
def make_log() -> Iterator[Callable[..., AccessLog]]:
    made: list[AccessLog] = []

    def factory(**kwargs: Any) -> AccessLog:
        log = AccessLog(**kwargs)
        made.append(log)
        return log

    yield factory
    for log in made:
        log.close(timeout=2)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# -- formatting ------------------------------------------------------------------------------


def test_line_has_exactly_the_fields_with_their_types() -> None:
    line = format_record(rec())
    assert line.endswith("\n")
    assert line.count("\n") == 1
    entry = json.loads(line)
    assert list(entry) == list(FIELDS)
    assert entry == {
        "time": "2023-11-14T22:13:20.123+00:00",
        "requestId": "req-1",
        "route": "users",
        "method": "GET",
        "path": "/users/42?x=1",
        "status": 200,
        "durationMs": 12.346,
        "upstream": "10.0.0.5:8080",
        "bytesIn": 12,
        "bytesOut": 3456,
        "client": "192.0.2.7",
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "lane": "canary",
        "laneFallback": False,
        "principal": "billing",
    }
    for name in ("status", "bytesIn", "bytesOut"):
        assert type(entry[name]) is int
    assert type(entry["durationMs"]) is float


def test_duration_is_a_float_even_when_whole() -> None:
    entry = json.loads(format_record(rec(duration=2.0)))
    assert entry["durationMs"] == 2000.0
    assert type(entry["durationMs"]) is float


def test_no_principal_is_null() -> None:
    entry = json.loads(format_record(rec(principal=None)))
    assert entry["principal"] is None
    assert list(entry) == list(FIELDS)


def test_lane_fallback_is_a_json_boolean() -> None:
    entry = json.loads(format_record(rec(lane="stable", lane_fallback=True)))
    assert entry["lane"] == "stable"
    assert entry["laneFallback"] is True


def test_none_becomes_null() -> None:
    line = format_record(rec(route_id=None, upstream=None, trace_id=None, span_id=None, lane=None))
    entry = json.loads(line)
    assert entry["lane"] is None
    assert entry["route"] is None
    assert entry["upstream"] is None
    assert entry["traceId"] is None
    assert entry["spanId"] is None
    assert '"route":null' in line


@pytest.mark.parametrize(
    "start_time",
    [0.0, 1.0005, 1.9999995, 1_700_000_000.0, 1_700_000_000.9995, 1_700_000_000.999_999_7, -1.5],
)
def test_time_matches_datetime_isoformat(start_time: float) -> None:
    expected = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="milliseconds")
    assert json.loads(format_record(rec(start_time=start_time)))["time"] == expected


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_time_matches_datetime_isoformat_everywhere(start_time: float) -> None:
    expected = datetime.fromtimestamp(start_time, UTC).isoformat(timespec="milliseconds")
    assert json.loads(format_record(rec(start_time=start_time)))["time"] == expected


TRICKY = [
    'say "hi"',
    "back\\slash\\",
    "ctl \x00\x01\x08\t\n\r\x1b\x1f\x7f end",
    "non-ascii: é ü 漢字 \u2028\u2029 🚀",
    "lone surrogate \ud800 here",
    "</script>{}[],:",
    "",
]


@pytest.mark.parametrize("text", TRICKY)
def test_strings_round_trip(text: str) -> None:
    line = format_record(
        rec(
            request_id=text,
            route_id=text,
            method=text,
            path=text,
            upstream=text,
            client=text,
            trace_id=text,
            span_id=text,
        )
    )
    assert line.isascii()
    assert line.count("\n") == 1  # escaped newlines stay inside the one line
    entry = json.loads(line)
    for name in ("requestId", "route", "method", "path", "upstream", "client", "traceId"):
        assert entry[name] == text
    assert entry["spanId"] == text


@given(st.text(), st.text())
def test_any_string_round_trips(path: str, client: str) -> None:
    entry = json.loads(format_record(rec(path=path, client=client)))
    assert entry["path"] == path
    assert entry["client"] == client


def test_bad_values_still_give_one_valid_line() -> None:
    for record in (
        rec(status="200"),
        rec(duration=float("nan")),
        rec(duration=float("inf")),
        rec(path=b"/bytes"),
        rec(start_time=float("inf")),
    ):
        line = format_record(record)
        assert line.endswith("\n")
        assert line.count("\n") == 1
        entry = json.loads(line)
        assert list(entry) == list(FIELDS)
    assert json.loads(format_record(rec(duration=float("nan"))))["durationMs"] is None


# -- the writer ------------------------------------------------------------------------------


def record_n(log: AccessLog, n: int, path: str = "/p") -> None:
    for i in range(n):
        log.record(
            START + i, f"r{i}", "route", "GET", path, 200, 0.001, "up", 0, 10, "c", None, None
        )


def test_written_lines_end_to_end(make_log: Callable[..., AccessLog]) -> None:
    stream = FakeStream()
    log = make_log(stream=stream, flush_interval=0.01)
    log.start()
    log.record(*rec())
    wait_until(lambda: bool(stream.writes))
    assert stream.lines() == [json.loads(format_record(rec()))]
    assert stream.flushes == len(stream.writes)


def test_many_records_few_writes(make_log: Callable[..., AccessLog]) -> None:
    stream = FakeStream()
    log = make_log(stream=stream, flush_interval=60, batch_size=100)
    log.start()
    record_n(log, 1000)
    log.close()
    lines = stream.lines()
    assert [entry["requestId"] for entry in lines] == [f"r{i}" for i in range(1000)]
    assert len(stream.writes) <= 11
    assert stream.flushes == len(stream.writes)


def test_one_write_per_batch(make_log: Callable[..., AccessLog]) -> None:
    stream = FakeStream()
    log = make_log(stream=stream, flush_interval=60)
    log.start()
    record_n(log, 500)
    log.close()
    assert len(stream.writes) == 1
    assert len(stream.lines()) == 500


def test_a_full_batch_wakes_the_writer_before_the_interval(
    make_log: Callable[..., AccessLog],
) -> None:
    stream = FakeStream()
    log = make_log(stream=stream, flush_interval=60, batch_size=50)
    log.start()
    record_n(log, 50)
    wait_until(lambda: len(stream.lines()) == 50)


def test_close_drains_everything(make_log: Callable[..., AccessLog]) -> None:
    stream = FakeStream()
    log = make_log(stream=stream, flush_interval=60, batch_size=1000)
    log.start()
    record_n(log, 5000)
    log.close()
    assert len(stream.lines()) == 5000
    assert log.pending == 0
    assert log.dropped == 0
    log.record(*rec())  # after close: ignored
    log.close()
    assert len(stream.lines()) == 5000


def test_records_before_start_are_written(make_log: Callable[..., AccessLog]) -> None:
    stream = FakeStream()
    log = make_log(stream=stream)
    record_n(log, 3)
    log.close()  # never started: close still writes them
    assert len(stream.lines()) == 3


def test_blocked_output_does_not_block_record_and_drops_are_reported(
    make_log: Callable[..., AccessLog],
) -> None:
    gate = threading.Event()
    stream = FakeStream(gate)
    log = make_log(stream=stream, flush_interval=0.01, max_pending=1000, batch_size=100)
    log.start()
    log.record(*rec())
    assert stream.entered.wait(5)  # the writer now sits in a blocked write()

    began = time.perf_counter()
    record_n(log, 10_000)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.0
    assert log.pending == 1000
    assert log.dropped == 9000

    gate.set()
    log.close()
    lines = stream.lines()
    assert len(lines) == 1 + 1000 + 1
    assert lines[-1] == {"accessLogDropped": 9000}
    assert all(list(entry) == list(FIELDS) for entry in lines[:-1])
    assert [entry["requestId"] for entry in lines[1:-1]] == [f"r{i}" for i in range(1000)]


def test_drops_are_reported_once(make_log: Callable[..., AccessLog]) -> None:
    gate = threading.Event()
    stream = FakeStream(gate)
    log = make_log(stream=stream, flush_interval=0.01, max_pending=10, batch_size=5)
    log.start()
    log.record(*rec())
    assert stream.entered.wait(5)
    record_n(log, 15)
    gate.set()
    wait_until(lambda: any("accessLogDropped" in entry for entry in stream.lines()))
    record_n(log, 3)
    log.close()
    reports = [entry for entry in stream.lines() if "accessLogDropped" in entry]
    assert reports == [{"accessLogDropped": 5}]
    assert log.dropped == 5


class FailingOnceStream(FakeStream):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def write(self, s: str, /) -> int:
        if not self.failed:
            self.failed = True
            raise BrokenPipeError("gone")
        return super().write(s)


def test_a_failed_write_is_counted_and_the_writer_goes_on(
    make_log: Callable[..., AccessLog],
) -> None:
    stream = FailingOnceStream()
    log = make_log(stream=stream, flush_interval=60)
    log.start()
    record_n(log, 4)
    log.close()  # the first batch fails
    assert log.dropped == 4

    stream2 = FailingOnceStream()
    log2 = make_log(stream=stream2, flush_interval=0.01)
    record_n(log2, 4)  # queued before start: the first (failing) write has all four
    log2.start()
    wait_until(lambda: stream2.failed)
    record_n(log2, 2)
    log2.close()
    lines = stream2.lines()
    assert len(lines) == 3
    assert [entry for entry in lines if "accessLogDropped" in entry] == [{"accessLogDropped": 4}]
    assert [entry.get("requestId") for entry in lines if "requestId" in entry] == ["r0", "r1"]


def test_disabled_log_writes_nothing(make_log: Callable[..., AccessLog]) -> None:
    stream = FakeStream()
    log = make_log(stream=stream, enabled=False)
    assert not log.enabled
    log.start()
    record_n(log, 10)
    assert log.pending == 0
    log.close()
    assert stream.writes == []
    assert log.dropped == 0


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog()
    log.start()
    log.record(*rec())
    log.close()
    assert json.loads(capsys.readouterr().out) == json.loads(format_record(rec()))


def test_writer_is_a_daemon_thread_and_stops_on_close(
    make_log: Callable[..., AccessLog],
) -> None:
    log = make_log(stream=FakeStream())
    log.start()
    log.start()  # idempotent
    threads = [t for t in threading.enumerate() if t.name == "meshgate-access-log"]
    assert threads
    assert all(t.daemon for t in threads)
    log.close()
    with pytest.raises(RuntimeError):
        log.start()


@pytest.mark.parametrize("kwargs", [{"flush_interval": 0}, {"max_pending": 0}, {"batch_size": 0}])
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        AccessLog(**kwargs)
