"""``meshgate explain FILE METHOD URL``: the route file's table built offline, one request
explained, the exit status saying whether a route matched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROUTES = """
services:
  orders:
    - {host: 127.0.0.1, port: 9101, id: orders-1}
    - {host: 127.0.0.1, port: 9102, id: orders-2, metadata: {lane: canary}}
routes:
  - id: beta
    uri: lb://orders
    predicates: [Path=/orders/**, 'Header=X-Beta, yes']
    filters: [StripPrefix=1, Lane=canary]
  - id: orders
    uri: lb://orders
    predicates: [Path=/orders/**]
    filters: [StripPrefix=1]
"""


def explain(tmp_path: Path, *args: str, text: str = ROUTES) -> subprocess.CompletedProcess[str]:
    routes = tmp_path / "routes.yml"
    routes.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "gateway", "explain", str(routes), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_a_matching_request_names_its_route_filters_and_instance(tmp_path: Path) -> None:
    done = explain(tmp_path, "GET", "/orders/7?x=1", "-H", "X-Beta: yes")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "=> beta  lb://orders" in out
    assert "path /orders/7 matches /orders/**" in out
    assert "StripPrefix: path /orders/7 -> /7" in out
    assert "instance: orders-2 127.0.0.1:9102" in out
    assert "  GET /7?x=1 HTTP/1.1" in out


def test_json_is_the_explain_apis_and_no_route_exits_1(tmp_path: Path) -> None:
    done = explain(tmp_path, "GET", "/carts/1", "--json")
    assert done.returncode == 1
    explained = json.loads(done.stdout)
    assert explained["route"] is None
    assert [r["predicates"][0]["reason"] for r in explained["routes"]] == [
        "path /carts/1 does not match /orders/**"
    ] * 2


@pytest.mark.parametrize(
    ("args", "text", "message"),
    [
        (("GET", "orders"), ROUTES, "must start with /"),
        (("GET", "/orders", "-H", "no colon"), ROUTES, "is not 'Name: value'"),
        (("GET", "/orders", "-b", "novalue"), ROUTES, "is not NAME=VALUE"),
        (("GET", "/"), "routes: [{id: x}]", "routes[0] (x): missing required key 'uri'"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    tmp_path: Path, args: tuple[str, ...], text: str, message: str
) -> None:
    done = explain(tmp_path, *args, text=text)
    assert done.returncode == 2
    assert message in done.stderr
