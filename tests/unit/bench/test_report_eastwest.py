# The report writes real multiplication signs, as bench/report.py does.
# ruff: noqa: RUF001
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import chart, markdown, mesh_client_lines, mesh_client_summary, sidecar_lines


def _row(
    candidate: str, rps: float, cpu: float | None, p50: float, p99: float, workload: str = ""
) -> dict[str, Any]:
    return {
        "workload": workload or "small c=50",
        "candidate": candidate,
        "rps": rps,
        "rps_min": rps,
        "rps_max": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_us": cpu,
        "errors": 0,
    }


SUMMARY = [
    _row("direct", 60000, None, 0.50, 2.00),
    _row("nginx", 40000, 20.0, 1.00, 4.00),
    _row("meshgate-sidecar-outbound", 10000, 90.0, 4.25, 9.50),
    _row("meshgate-sidecar-outbound", 1, 1.0, 1, 1, workload="64 KiB c=50"),
]
UNLOADED = [
    _row("meshgate-sidecar-outbound", 2500, 300.0, 0.400, 0.900, workload="small c=1"),
    _row("nginx", 9000, 40.0, 0.110, 0.250, workload="small c=1"),
    _row("direct", 15000, None, 0.060, 0.120, workload="small c=1"),
]

CLIENT: dict[str, Any] = {
    "plan": {"port": 1, "path": "/", "calls": 2000, "concurrency": 16, "rounds": 3, "warmup": 9},
    "tracer_provider": "ProxyTracerProvider",
    "aiohttp": {"cpu_us_per_call": 100.0, "calls_per_s": 9000.0, "errors": 0},
    "mesh": {"cpu_us_per_call": 118.0, "calls_per_s": 7600.0, "errors": 0},
    "cpu_ratio": 1.18,
    "rate_ratio": 0.84,
    "target": 1.25,
}


def _table(lines: list[str]) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in lines if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_the_sidecar_hop_against_nginx_and_the_latency_it_adds_over_direct() -> None:
    lines = sidecar_lines(SUMMARY)
    assert lines[0].startswith("**Sidecar hop** (small c=50)")
    table = _table(lines)
    assert table["meshgate-sidecar-outbound"] == [
        "10000",
        "0.25×",
        "90.0",
        "4.50×",
        "4.25 (+3.75)",
        "9.50 (+7.50)",
    ]
    assert table["nginx"] == ["40000", "1.00×", "20.0", "1.00×", "1.00 (+0.50)", "4.00 (+2.00)"]
    assert table["direct"] == ["60000", "–", "–", "–", "0.50", "2.00"]


def test_without_nginx_or_direct_the_missing_figures_are_dashes() -> None:
    table = _table(sidecar_lines(SUMMARY[2:]))
    assert set(table) == {"meshgate-sidecar-outbound"}
    assert table["meshgate-sidecar-outbound"] == ["10000", "–", "90.0", "–", "4.25 (–)", "9.50 (–)"]


def test_no_sidecar_no_lines() -> None:
    assert sidecar_lines(SUMMARY[:2]) == []


def test_the_mesh_client_line_gives_both_ratios_the_target_and_the_tracing_state() -> None:
    (line, blank) = mesh_client_lines(CLIENT)
    assert blank == ""
    assert "CPU per call 118.0 µs ÷ 100.0 µs: 1.18× (target ≤ 1.25×)" in line
    assert "calls/s 7600 ÷ 9000: 0.84×." in line
    assert "16 concurrent tasks, 2,000 calls per client per round, 3 interleaved rounds" in line
    assert "no OpenTelemetry SDK configured" in line and "`ProxyTracerProvider`" in line
    assert "not 200" not in line
    assert mesh_client_summary(CLIENT) == ("MeshClient 118.0 µs/call, aiohttp 100.0 µs/call: 1.18×")


def test_failed_calls_and_a_failed_benchmark_are_said() -> None:
    failing = {**CLIENT, "mesh": {**CLIENT["mesh"], "errors": 4}}
    assert mesh_client_lines(failing)[0].endswith("; 4 calls not 200.")
    broken = {"error": "bench.mesh_client exited 1: boom"}
    assert mesh_client_lines(broken)[0] == (
        "**Mesh client**: the benchmark failed: bench.mesh_client exited 1: boom"
    )
    assert mesh_client_summary(broken) == "failed: bench.mesh_client exited 1: boom"
    assert mesh_client_lines({}) == [] and mesh_client_lines(None) == []


def test_the_run_entry_carries_the_east_west_lines_after_the_tables() -> None:
    result = {
        "started": "2026-12-03T10:00:00+00:00",
        "mode": "quick",
        "machine": {"cpus": 2, "python": "3.11.7"},
        "plan": {"rounds": 1, "duration_s": 3},
        "summary": SUMMARY,
        "peak_rss_bytes": {},
        "mesh_client": CLIENT,
    }
    text = markdown(result, None)
    assert text.index("### 64 KiB c=50") < text.index("**Sidecar hop**")
    assert text.index("**Sidecar hop**") < text.index("**Mesh client**")
    old = {k: v for k, v in result.items() if k != "mesh_client"}  # a run from before
    assert "**Mesh client**" not in markdown(old, None)


def test_a_run_of_the_mesh_client_alone_reports_without_any_workload(tmp_path: Path) -> None:
    result = {
        "started": "2026-12-03T10:00:00+00:00",
        "mode": "quick",
        "machine": {"cpus": 2, "python": "3.11.7"},
        "plan": {"rounds": 1, "duration_s": 3},
        "summary": [],
        "peak_rss_bytes": {},
        "layers": [{"layer": "route match", "us": 0.5}],
        "mesh_client": CLIENT,
    }
    text = markdown(result, None)
    assert "**Mesh client**" in text and "| route match | 0.50 |" in text
    assert chart(result, tmp_path / "chart.png") is None
    assert not (tmp_path / "chart.png").exists()


def test_the_unloaded_hop_gives_the_latency_it_adds_in_microseconds() -> None:
    lines = sidecar_lines(SUMMARY + UNLOADED)
    start = lines.index(next(line for line in lines if line.startswith("**Sidecar hop, unloaded")))
    assert "(small c=1: one request at a time" in lines[start]
    table = _table(lines[start:])
    assert table == {
        "meshgate-sidecar-outbound": ["400 (+340)", "900 (+780)"],
        "nginx": ["110 (+50)", "250 (+130)"],
        "direct": ["60", "120"],
    }
    # The loaded table comes first and is unchanged by the unloaded rows.
    assert _table(lines[:start]) == _table(sidecar_lines(SUMMARY))


def test_no_unloaded_sidecar_row_no_unloaded_table() -> None:
    lines = sidecar_lines(SUMMARY + UNLOADED[1:])
    assert not any(line.startswith("**Sidecar hop, unloaded") for line in lines)
