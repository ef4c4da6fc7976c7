from __future__ import annotations

import subprocess
from typing import cast

from bench.run import FULL, NEW_CONN, QUICK, SMALL_50, SMALL_200, request_headers, runs
from bench.stack import Service

# Which workloads a candidate runs depends on its name and its own list, never its process.
_NO_PROCESS = cast("subprocess.Popen[bytes]", None)


def _service(name: str, workloads: tuple[str, ...] = ()) -> Service:
    return Service(name, 1, _NO_PROCESS, workloads=workloads)


def test_new_connections_run_only_for_the_plain_counterparts_and_who_asks() -> None:
    assert runs(_service("nginx"), NEW_CONN)
    assert runs(_service("meshgate-1w-minimal"), NEW_CONN)
    assert not runs(_service("scg"), NEW_CONN)
    assert not runs(_service("meshgate-2w-typical"), NEW_CONN)
    tls = _service("nginx-tls", (SMALL_50.name, NEW_CONN.name))
    assert runs(tls, NEW_CONN) and runs(tls, SMALL_50) and not runs(tls, SMALL_200)


def test_a_candidate_without_a_list_runs_every_open_workload() -> None:
    assert runs(_service("scg"), SMALL_200)
    assert not runs(_service("meshgate-1w-typical-jwt", (SMALL_50.name,)), SMALL_200)


def test_both_plans_measure_new_connections() -> None:
    assert NEW_CONN in FULL.workloads and NEW_CONN in QUICK.workloads


def test_the_candidates_headers_join_the_workloads() -> None:
    service = _service("meshgate-1w-typical-jwt")
    service.headers = {"Authorization": "Bearer t"}
    assert request_headers(service, NEW_CONN) == {
        "Connection": "close",
        "Authorization": "Bearer t",
    }
    assert request_headers(_service("nginx"), SMALL_50) == {}
