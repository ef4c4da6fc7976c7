from __future__ import annotations

import pytest

from bench.wrk import parse_wrk

REPORT = """Running 10s test @ http://127.0.0.1:8080/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.37ms  820.52us  21.27ms   87.54%
    Req/Sec     7.46k   515.68     8.24k    80.50%
  Latency Distribution
     50%    3.21ms
     75%    3.59ms
     90%    4.12ms
     99%    6.24ms
  148512 requests in 10.01s, 21.81MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  14836.91
Transfer/sec:      2.18MB
"""


def test_parses_every_figure() -> None:
    result = parse_wrk(REPORT)
    assert result.requests == 148512
    assert result.duration_s == pytest.approx(10.01)
    assert result.rps == pytest.approx(14836.91)
    assert result.p50_ms == pytest.approx(3.21)
    assert result.p90_ms == pytest.approx(4.12)
    assert result.p99_ms == pytest.approx(6.24)
    assert result.socket_errors == 3
    assert result.non_2xx == 4
    assert result.errors == 7


def test_units_are_normalised_to_milliseconds() -> None:
    report = REPORT.replace("99%    6.24ms", "99%    1.02s").replace(
        "50%    3.21ms", "50%  850.00us"
    )
    result = parse_wrk(report)
    assert result.p99_ms == pytest.approx(1020.0)
    assert result.p50_ms == pytest.approx(0.85)


def test_a_report_without_latency_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a wrk --latency report"):
        parse_wrk(REPORT.split("  Latency Distribution")[0])


def test_clean_run_has_no_errors() -> None:
    clean = "\n".join(
        line for line in REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert parse_wrk(clean).errors == 0
