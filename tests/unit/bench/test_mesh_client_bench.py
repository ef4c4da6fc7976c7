from __future__ import annotations

import itertools
import sys

import pytest

from bench.mesh_client import (
    CLIENTS,
    TARGET,
    ClientPlan,
    Phase,
    command,
    drive,
    order,
    parse_args,
    summarise,
)
from bench.run import FULL, QUICK, SMALL_50, client_plan, run_mesh_client


def test_the_command_line_reads_back_as_the_same_plan() -> None:
    plan = ClientPlan(port=8080, path="/x", calls=300, concurrency=4, rounds=2, warmup=7)
    argv = command(plan, python="py")
    assert argv[:3] == ["py", "-m", "bench.mesh_client"]
    assert parse_args(argv[3:]) == plan


def test_defaults_need_only_the_port() -> None:
    assert parse_args(["--port", "9"]) == ClientPlan(port=9)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
        (["--port", "9", "--path", "x"], "--path"),
        (["--port", "9", "--calls", "0"], "--calls"),
        (["--port", "9", "--rounds", "0"], "--rounds"),
        (["--port", "9", "--concurrency", "0"], "--concurrency"),
        (["--port", "9", "--warmup", "-1"], "--warmup"),
        (["--port", "9", "--calls", "3", "--concurrency", "4"], "--concurrency"),
        ([], "--port"),
    ],
)
def test_a_wrong_argument_is_refused_by_name(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_rounds_alternate_which_client_goes_first() -> None:
    assert order(0) == CLIENTS
    assert order(1) == CLIENTS[::-1]
    assert order(2) == CLIENTS


def _phase(client: str, round_no: int, cpu_s: float, wall_s: float, errors: int = 0) -> Phase:
    return Phase(client, round_no, 1000, cpu_s, wall_s, errors)


def test_the_ratio_is_the_median_of_each_rounds_own() -> None:
    phases = [
        _phase("aiohttp", 0, 0.10, 0.20),
        _phase("mesh", 0, 0.12, 0.25),  # 1.2x the CPU, 0.8x the rate
        _phase("mesh", 1, 0.30, 0.50),  # a slow round for both: 1.5x, 0.5x
        _phase("aiohttp", 1, 0.20, 0.25),
        _phase("aiohttp", 2, 0.10, 0.20),
        _phase("mesh", 2, 0.11, 0.20, errors=3),  # 1.1x, 1.0x
    ]
    out = summarise(phases)
    assert out["cpu_ratio"] == pytest.approx(1.2)
    assert out["rate_ratio"] == pytest.approx(0.8)
    assert out["aiohttp"]["cpu_us_per_call"] == pytest.approx(100.0)  # median of 100, 200, 100
    assert out["mesh"]["cpu_us_per_call"] == pytest.approx(120.0)
    assert out["mesh"]["calls_per_s"] == pytest.approx(4000.0)
    assert out["mesh"]["errors"] == 3 and out["aiohttp"]["errors"] == 0
    assert out["target"] == TARGET == 1.25


def test_a_round_missing_one_client_gives_no_ratio_of_its_own() -> None:
    phases = [_phase("aiohttp", 0, 0.1, 0.2), _phase("mesh", 0, 0.2, 0.2)]
    phases.append(_phase("aiohttp", 1, 0.1, 0.2))
    assert summarise(phases)["cpu_ratio"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="mesh"):
        summarise([_phase("aiohttp", 0, 0.1, 0.2)])


async def test_drive_makes_exactly_the_calls_asked_and_counts_what_is_not_200() -> None:
    statuses = itertools.cycle([200, 200, 503])
    made = 0

    async def call() -> int:
        nonlocal made
        made += 1
        return next(statuses)

    ticks = itertools.count()
    cpu, wall, errors = await drive(
        call, 30, 4, cpu_clock=lambda: float(next(ticks)), wall_clock=lambda: 10.0
    )
    assert made == 30
    assert errors == 10
    assert cpu == 1.0 and wall == 0.0  # each clock read once before and once after


def test_the_run_sizes_the_client_benchmark_from_its_plan() -> None:
    full, quick = client_plan(FULL, 81), client_plan(QUICK, 81)
    assert full.port == quick.port == 81 and full.path == SMALL_50.path
    assert full.concurrency == quick.concurrency == 16
    assert (full.calls, full.rounds) == (FULL.client_calls, FULL.client_rounds)
    assert quick.calls < full.calls and quick.warmup <= quick.calls // 4


def test_a_failed_client_benchmark_is_an_error_entry_not_a_crash() -> None:
    # Port 0 is refused by the benchmark's own argument check: a real process that exits 2.
    result = run_mesh_client(ClientPlan(port=0))
    assert set(result) == {"error"}
    assert "exited 2" in result["error"] and "--port" in result["error"]


def test_the_benchmark_runs_as_its_own_python() -> None:
    assert command(ClientPlan(port=1))[0] == sys.executable
