from __future__ import annotations

import subprocess
from typing import cast

from bench.run import (
    FULL,
    NEW_CONN,
    QUICK,
    SIDECAR,
    SMALL_1,
    SMALL_50,
    SMALL_200,
    UPLOAD_1M,
    eastwest_candidates,
    request_headers,
    runs,
)
from bench.stack import Service, Stack

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


class _SidecarStack:
    """Stands in for ``Stack`` where only the sidecar is started."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start_sidecar(self, name: str, service: str) -> Service:
        self.started.append((name, service))
        return _service(name)


def test_the_sidecar_hop_runs_only_on_the_small_body_at_c50_when_asked_for() -> None:
    stack = _SidecarStack()
    assert eastwest_candidates(cast("Stack", stack), lambda name: name == "nginx") == []
    assert stack.started == []
    (sidecar,) = eastwest_candidates(cast("Stack", stack), lambda name: True)
    assert stack.started == [(SIDECAR, "bench")]
    assert runs(sidecar, SMALL_50) and runs(sidecar, SMALL_1)
    assert not any(runs(sidecar, w) for w in (SMALL_200, NEW_CONN, UPLOAD_1M))


def test_one_request_at_a_time_runs_for_the_sidecar_hop_and_its_two_peers_only() -> None:
    assert runs(_service("direct"), SMALL_1) and runs(_service("nginx"), SMALL_1)
    assert not runs(_service("meshgate-1w-minimal"), SMALL_1)
    assert not runs(_service("scg"), SMALL_1)
    assert not runs(_service("meshgate-1w-typical-jwt", (SMALL_50.name,)), SMALL_1)
    assert SMALL_1.connections == 1
    assert SMALL_1 in FULL.workloads and SMALL_1 in QUICK.workloads
