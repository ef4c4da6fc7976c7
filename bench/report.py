"""Benchmark results as people read them: a markdown table of ratios and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
# A candidate named <base>-tls is <base> terminating TLS; JWT_VARIANT is JWT_BASE with JwtAuth.
TLS_SUFFIX = "-tls"
JWT_VARIANT, JWT_BASE = "meshgate-1w-typical-jwt", "meshgate-1w-typical"
TLS_TARGET = 0.80  # meshgate over TLS, keep-alive: at least this share of its plain req/s
JWT_TARGET = 0.10  # JwtAuth: at most this share of typical's CPU per request
# East-west: the sidecar hop against direct and against nginx making the same hop.
SIDECAR, SIDECAR_PEER, SIDECAR_WORKLOAD = "meshgate-sidecar-outbound", "nginx", "small c=50"
SIDECAR_UNLOADED = "small c=1"  # one request at a time: the hop's own latency, no queue
# The dashboard's live numbers, on by default, against the same set-up without them.
DASHBOARD_BASE, DASHBOARD_OFF = "meshgate-1w-typical", "meshgate-1w-typical-nodashboard"
DASHBOARD_TARGET = 0.97


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "–"
    return f"{value / base:.2f}×"


def _row_for(summary: list[dict[str, Any]], workload: str, candidate: str) -> dict[str, Any] | None:
    for row in summary:
        if row["workload"] == workload and row["candidate"] == candidate:
            return row
    return None


def _pct(value: float, base: float) -> str:
    return f"{(value / base - 1) * 100:+.1f} %"


def security_lines(summary: list[dict[str, Any]]) -> list[str]:
    """The price of TLS termination and of JwtAuth, each candidate against itself without it,
    as ratios of figures measured in the same run."""
    lines: list[str] = []
    names = list(dict.fromkeys(row["candidate"] for row in summary))
    workloads = list(dict.fromkeys(row["workload"] for row in summary))
    tls = [n for n in names if n.endswith(TLS_SUFFIX) and n.removesuffix(TLS_SUFFIX) in names]
    measured = [w for w in workloads if any(_row_for(summary, w, n) for n in tls)]
    if tls and measured:
        lines += [
            f"**TLS termination**: each candidate over TLS ÷ itself over plain HTTP (req/s; "
            f"CPU µs/req), same certificate, TLS 1.2/1.3 with ECDHE; *new-conn* is a full "
            f"handshake per request. Target: meshgate on keep-alive connections ≥ "
            f"{TLS_TARGET:.2f}× its own plain-HTTP req/s.",
            "",
            "| TLS ÷ plain | " + " | ".join(measured) + " |",
            "|---|" + "---|" * len(measured),
        ]
        for name in tls:
            base = name.removesuffix(TLS_SUFFIX)
            cells = []
            for workload in measured:
                row, plain = _row_for(summary, workload, name), _row_for(summary, workload, base)
                if row is None or plain is None:
                    cells.append("–")
                    continue
                cells.append(
                    f"{_ratio(row['rps'], plain['rps'])} ({row['rps']:.0f} ÷ {plain['rps']:.0f}"
                    f" req/s; CPU {_ratio(row['cpu_us'], plain['cpu_us'])})"
                )
            lines.append(f"| {name} ÷ {base} | " + " | ".join(cells) + " |")
        lines.append("")
    for workload in workloads:
        jwt = _row_for(summary, workload, JWT_VARIANT)
        typical = _row_for(summary, workload, JWT_BASE)
        if jwt is None or typical is None or not jwt["cpu_us"] or not typical["cpu_us"]:
            continue
        lines += [
            f"**JwtAuth** (RS256, a configured public key, the same valid token on every "
            f"request; {workload}): {JWT_VARIANT} {jwt['cpu_us']:.1f} CPU µs/req ÷ "
            f"{JWT_BASE}'s {typical['cpu_us']:.1f}: {_ratio(jwt['cpu_us'], typical['cpu_us'])} "
            f"({_pct(jwt['cpu_us'], typical['cpu_us'])}; target ≤ +{JWT_TARGET * 100:.0f} %); "
            f"req/s {_ratio(jwt['rps'], typical['rps'])} "
            f"({jwt['rps']:.0f} ÷ {typical['rps']:.0f}).",
            "",
        ]
        break
    return lines


def dashboard_lines(summary: list[dict[str, Any]]) -> list[str]:
    """The live numbers' price: typical (they are on by default) ÷ typical without them."""
    for workload in dict.fromkeys(row["workload"] for row in summary):
        with_ = _row_for(summary, workload, DASHBOARD_BASE)
        without = _row_for(summary, workload, DASHBOARD_OFF)
        if with_ is None or without is None:
            continue
        return [
            f"**The dashboard's live numbers** ({workload}): {DASHBOARD_BASE} (kept, the "
            f"default) ÷ {DASHBOARD_OFF} (`GATEWAY_DASHBOARD=false`): req/s "
            f"{_ratio(with_['rps'], without['rps'])} ({with_['rps']:.0f} ÷ "
            f"{without['rps']:.0f}; target ≥ {DASHBOARD_TARGET:.2f}×), CPU µs/req "
            f"{_ratio(with_['cpu_us'], without['cpu_us'])}.",
            "",
        ]
    return []


def _added(value: float, direct: dict[str, Any] | None, key: str, scale: float = 1.0) -> str:
    digits = 0 if scale != 1.0 else 2
    return f"{(value - direct[key]) * scale:+.{digits}f}" if direct else "–"


def _unloaded_lines(summary: list[dict[str, Any]]) -> list[str]:
    rows = [_row_for(summary, SIDECAR_UNLOADED, n) for n in (SIDECAR, SIDECAR_PEER, "direct")]
    if rows[0] is None:
        return []
    direct = rows[2]
    lines = [
        f"**Sidecar hop, unloaded** ({SIDECAR_UNLOADED}: one request at a time, so the latency "
        f"is the hop's own); *added* is over `direct`'s.",
        "",
        "| hop | p50 µs (added) | p99 µs (added) |",
        "|---|---|---|",
    ]
    for row in rows:
        if row is None:
            continue
        added = row is not direct
        p50 = f"{row['p50_ms'] * 1000:.0f}"
        p99 = f"{row['p99_ms'] * 1000:.0f}"
        if added:
            p50 += f" ({_added(row['p50_ms'], direct, 'p50_ms', 1000)})"
            p99 += f" ({_added(row['p99_ms'], direct, 'p99_ms', 1000)})"
        lines.append(f"| {row['candidate']} | {p50} | {p99} |")
    lines.append("")
    return lines


def sidecar_lines(summary: list[dict[str, Any]]) -> list[str]:
    """The sidecar hop (meshgate's outbound port) against nginx making the same hop and
    against no hop at all, from the same run."""
    sidecar = _row_for(summary, SIDECAR_WORKLOAD, SIDECAR)
    if sidecar is None:
        return []
    nginx = _row_for(summary, SIDECAR_WORKLOAD, SIDECAR_PEER)
    direct = _row_for(summary, SIDECAR_WORKLOAD, "direct")
    lines = [
        f"**Sidecar hop** ({SIDECAR_WORKLOAD}): wrk → a sidecar on 127.0.0.1 → the upstream. "
        f"{SIDECAR} is meshgate in sidecar mode (1 worker) taking the app's calls on its "
        f"outbound port with `Host: bench`, a service of one instance (the upstream) in static "
        f"discovery; {SIDECAR_PEER} is the `nginx` proxy (proxy_pass over keep-alive "
        f"connections, 1 worker), the same hop an nginx sidecar makes; `direct` is no hop. "
        f"Both hops run flat out at c=50, so their latency is mostly queueing; *added* is "
        f"over `direct`'s.",
        "",
        f"| hop | req/s | ÷ {SIDECAR_PEER} | CPU µs/req | ÷ {SIDECAR_PEER} | p50 ms (added) "
        f"| p99 ms (added) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in (sidecar, nginx):
        if row is None:
            continue
        cpu = row["cpu_us"]
        lines.append(
            f"| {row['candidate']} | {row['rps']:.0f}"
            f" | {_ratio(row['rps'], nginx['rps'] if nginx else None)}"
            f" | {f'{cpu:.1f}' if cpu else '–'}"
            f" | {_ratio(cpu, nginx['cpu_us'] if nginx else None)}"
            f" | {row['p50_ms']:.2f} ({_added(row['p50_ms'], direct, 'p50_ms')})"
            f" | {row['p99_ms']:.2f} ({_added(row['p99_ms'], direct, 'p99_ms')}) |"
        )
    if direct is not None:
        lines.append(
            f"| direct | {direct['rps']:.0f} | – | – | – | {direct['p50_ms']:.2f} "
            f"| {direct['p99_ms']:.2f} |"
        )
    lines.append("")
    return lines + _unloaded_lines(summary)


def mesh_client_summary(client: dict[str, Any]) -> str:
    """One line for the console: the two clients' CPU per call and the ratio."""
    if "error" in client:
        return f"failed: {client['error']}"
    mesh, plain = client["mesh"], client["aiohttp"]
    return (
        f"MeshClient {mesh['cpu_us_per_call']:.1f} µs/call, aiohttp "
        f"{plain['cpu_us_per_call']:.1f} µs/call: {_times(client['cpu_ratio'])}"
    )


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "–"


def mesh_client_lines(client: dict[str, Any] | None) -> list[str]:
    """MeshClient ÷ a plain aiohttp session: the client's own CPU per call and calls/s."""
    if not client:
        return []
    if "error" in client:
        return [f"**Mesh client**: the benchmark failed: {client['error']}", ""]
    plan, mesh, plain = client["plan"], client["mesh"], client["aiohttp"]
    errors = mesh["errors"] + plain["errors"]
    return [
        f"**Mesh client** (`discovery.mesh.MeshClient` ÷ a plain `aiohttp.ClientSession`, "
        f"both aiohttp's default keep-alive pool; GET {plan['path']} to the upstream, as "
        f"`http://bench{plan['path']}` through a static registry of one instance for the mesh "
        f"client; {plan['concurrency']} concurrent tasks, {plan['calls']:,} calls per client "
        f"per round, {plan['rounds']} interleaved rounds, medians, ratios the median of each "
        f"round's own; CPU is the client process's user + system per call; tracing "
        f"unsampled: no OpenTelemetry SDK configured, the API's no-op "
        f"`{client['tracer_provider']}`): CPU per call {mesh['cpu_us_per_call']:.1f} µs ÷ "
        f"{plain['cpu_us_per_call']:.1f} µs: {_times(client['cpu_ratio'])} (target ≤ "
        f"{client['target']:.2f}×); calls/s {mesh['calls_per_s']:.0f} ÷ "
        f"{plain['calls_per_s']:.0f}: {_times(client['rate_ratio'])}"
        + (f"; {errors} calls not 200." if errors else "."),
        "",
    ]


def markdown(result: dict[str, Any], chart: Path | None) -> str:
    summary: list[dict[str, Any]] = result["summary"]
    peaks: dict[str, int] = result["peak_rss_bytes"]
    lines = [
        f"## {result['started']} — `{result['mode']}` run",
        "",
        f"{result['machine']['cpus']} CPUs, Python {result['machine']['python']}; wrk -t2, "
        f"{result['plan']['rounds']} interleaved round(s) of {result['plan']['duration_s']:g} s "
        "per workload; medians (min–max). CPU µs/req is the candidate's own processes (user + "
        "system) per request; *per core ×nginx* = nginx's CPU µs/req ÷ the candidate's.",
        "",
    ]
    workloads = list(dict.fromkeys(row["workload"] for row in summary))
    for workload in workloads:
        nginx = _row_for(summary, workload, "nginx")
        scg = _row_for(summary, workload, "scg")
        naive = _row_for(summary, workload, "naive-aiohttp")
        lines += [
            f"### {workload}",
            "",
            "| candidate | req/s | ×nginx | ×SCG | ×naive | p50 ms | p99 ms | CPU µs/req "
            "| per core ×nginx | per core ×SCG | peak RSS MiB | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in (r for r in summary if r["workload"] == workload):
            cpu = row["cpu_us"]
            per_core_nginx = (
                _ratio(nginx["cpu_us"], cpu) if nginx and cpu and nginx["cpu_us"] else "–"
            )
            per_core_scg = _ratio(scg["cpu_us"], cpu) if scg and cpu and scg["cpu_us"] else "–"
            peak = peaks.get(row["candidate"])
            lines.append(
                f"| {row['candidate']} | {row['rps']:.0f} "
                f"({row['rps_min']:.0f}–{row['rps_max']:.0f})"
                f" | {_ratio(row['rps'], nginx['rps'] if nginx else None)}"
                f" | {_ratio(row['rps'], scg['rps'] if scg else None)}"
                f" | {_ratio(row['rps'], naive['rps'] if naive else None)}"
                f" | {row['p50_ms']:.2f} | {row['p99_ms']:.2f}"
                f" | {f'{cpu:.1f}' if cpu else '–'} | {per_core_nginx} | {per_core_scg}"
                f" | {f'{peak / 1024**2:.0f}' if peak else '–'} | {row['errors']} |"
            )
        lines.append("")
    lines += security_lines(summary)
    lines += dashboard_lines(summary)
    lines += sidecar_lines(summary)
    lines += mesh_client_lines(result.get("mesh_client"))
    transfer = result.get("transfer") or {}
    if transfer:
        lines += [
            f"**Streaming through meshgate** ({transfer['bytes'] / 1024**3:g} GiB each way, "
            f"1 worker): upload {transfer['upload_MiB_s']:.0f} MiB/s, download "
            f"{transfer['download_MiB_s']:.0f} MiB/s, gateway RSS growth "
            f"{transfer['rss_growth_MiB']:.1f} MiB.",
            "",
        ]
    idle = result.get("idle_connections") or {}
    if idle:
        lines += [
            f"**Idle keep-alive connections** (1 worker): {idle['connections']:,} connections "
            f"grew RSS by {idle['rss_growth_MiB']:.1f} MiB "
            f"({idle['KiB_per_connection']:.1f} KiB each).",
            "",
        ]
    layer_costs = result.get("layers") or []
    if layer_costs:
        lines += ["**Per-layer cost** (`typical`, in-process, each in isolation)", ""]
        lines += ["| layer | µs |", "|---|---|"]
        lines += [f"| {c['layer']} | {c['us']:.2f} |" for c in layer_costs]
        # A run of the mesh client alone measured no workload.
        typical = (
            _row_for(result["summary"], workloads[0], "meshgate-1w-typical") if workloads else None
        )
        if typical and typical["cpu_us"]:
            rest = typical["cpu_us"] - sum(c["us"] for c in layer_costs)
            lines.append(
                f"| engine: event loop, socket reads/writes, task and awaits (the rest of "
                f"{typical['cpu_us']:.1f} µs/req) | {rest:.1f} |"
            )
        lines.append("")
    micro = result.get("micro") or []
    if micro:
        lines += [
            "**Micro-benchmarks** (best of 5, in-process)",
            "",
            "| what | n | µs |",
            "|---|---|---|",
        ]
        lines += [f"| {m['name']} | {m['size']:,} | {m['us_per_op']:.3f} |" for m in micro]
        lines.append("")
    if chart is not None:
        lines += [f"![throughput and p99]({chart.relative_to(RESULTS_MD.parent).as_posix()})", ""]
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> Path | None:
    """Throughput and p99 per candidate for each workload. None when matplotlib is missing or
    no workload was measured."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    summary: list[dict[str, Any]] = result["summary"]
    workloads = list(dict.fromkeys(row["workload"] for row in summary))
    if not workloads:
        return None  # nothing wrk measured (the mesh client alone): no chart
    fig, axes = plt.subplots(len(workloads), 2, figsize=(13, 3.2 * len(workloads)), squeeze=False)
    for i, workload in enumerate(workloads):
        rows = [r for r in summary if r["workload"] == workload]
        names = [r["candidate"] for r in rows]
        colors = ["#d62728" if n.startswith("meshgate") else "#7f7f7f" for n in names]
        ax_rps, ax_p99 = axes[i]
        ax_rps.barh(names, [r["rps"] for r in rows], color=colors)
        ax_rps.errorbar(
            [r["rps"] for r in rows],
            range(len(rows)),
            xerr=[
                [r["rps"] - r["rps_min"] for r in rows],
                [r["rps_max"] - r["rps"] for r in rows],
            ],
            fmt="none",
            ecolor="black",
            capsize=3,
        )
        ax_rps.set_title(f"{workload}: requests/s (higher is better)")
        ax_rps.invert_yaxis()
        ax_p99.barh(names, [r["p99_ms"] for r in rows], color=colors)
        ax_p99.set_title(f"{workload}: p99 latency ms (lower is better)")
        ax_p99.invert_yaxis()
    fig.suptitle(f"meshgate benchmark {result['started']} ({result['mode']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def append(table: str) -> None:
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(
            "# Benchmark results\n\nEach section is one `make bench` (or `bench-quick`) run; "
            "every figure is a ratio to peers measured in the same run on the same machine.\n\n"
        )
    with RESULTS_MD.open("a") as out:
        out.write("\n" + table + "\n")
