"""``meshgate validate`` with the built-in predicates and filters: exit codes and output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import gateway.process
from gateway.cli import main
from gateway.errors import ConfigError
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.validate import validate_text

REPO = Path(__file__).resolve().parents[3]

VALID = """\
spring:
  cloud:
    gateway:
      default-filters:
        - AddResponseHeader=X-Gateway, meshgate
      routes:
        - id: orders-api
          uri: lb://orders
          order: 1
          predicates:
            - Path=/api/orders/{segment},/api/orders/**
            - Method=GET,POST
            - Header=X-Request-Id, \\d+
          filters:
            - StripPrefix=2
            - name: RewritePath
              args:
                regexp: /(?<segment>.*)
                replacement: /v1/${segment}
        - id: docs
          uri: https://docs.example.org
          predicates:
            - Host=**.docs.example.org
            - Weight=docs, 8
          filters:
            - PreserveHostHeader
services:
  orders:
    - {host: 127.0.0.1, port: 9001}
    - {host: 127.0.0.1, port: 9002, weight: 2}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )


def test_valid_file(write: Callable[[str, str], Path]) -> None:
    path = write(VALID, "application.yml")
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: OK (2 routes, 1 services)\n"
    assert result.stderr == ""


def test_invalid_file_lists_every_error(write: Callable[[str, str], Path]) -> None:
    path = write(
        """\
routes:
  - id: orders-api
    uri: lb://orders
    filters:
      - StripPrefx=1
      - RewritePath=/(?<segment>.*, /${segment}
  - id: users
    uri: htp://users
  - id: users
    uri: http://users
    predicates:
      - Path=/users/**
      - Method=GET, PUT
    filters:
      - AddRequestHeader=X-Red
services:
  orders:
    - {host: 10.0.0.1, port: 0}
""",
        "routes.yml",
    )
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    # A bad regexp reaches the factory's own message; its wording is the factory's.
    rewrite = f"{path}: routes[0] (orders-api) filters[1] (RewritePath): argument 'regexp': "
    assert lines[1].startswith(rewrite)
    assert lines[:1] + lines[2:] == [
        f"{path}: routes[0] (orders-api) filters[0] (StripPrefx): "
        "unknown filter 'StripPrefx' (did you mean StripPrefix?)",
        f"{path}: routes[1] (users) uri: unsupported URI scheme 'htp' in 'htp://users' "
        "(use http, https, ws, wss, lb, lb:ws or forward)",
        f"{path}: routes[2] (users): duplicate id 'users' (also routes[1])",
        f"{path}: routes[2] (users) filters[0] (AddRequestHeader): "
        "missing required argument 'value'",
        f"{path}: services.orders[0]: port must be 1..65535, got 0",
        f"{path}: 6 error(s)",
    ]


def test_yaml_syntax_error(write: Callable[[str, str], Path]) -> None:
    path = write("routes:\n  - id: a\n    predicates: [Path=/a/{b}]\n", "broken.yml")
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr == (
        f"{path}: line 3, column 26: invalid YAML: did not find expected ',' or ']'\n"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr == f"{path}: cannot read file: No such file or directory\n"


def test_missing_file_argument_is_a_usage_error() -> None:
    result = run_cli("validate")
    assert result.returncode == 2
    assert "usage: meshgate validate" in result.stderr


# -- in process --------------------------------------------------------------------------------


def test_undeclared_lb_service_is_a_warning(
    write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        "routes:\n  - {id: a, uri: 'lb://order'}\n  - {id: b, uri: 'lb://Orders'}\n"
        "services:\n  orders: [{host: h, port: 1}]\n",
        "routes.yml",
    )
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: OK (2 routes, 1 services)\n"
    assert err == (
        f"warning: {path}: routes[0] (a) uri: service 'order' is not in services: "
        "(did you mean orders?); discovery must provide it\n"
    )


def test_lb_services_without_a_services_section_are_fine(
    write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("routes:\n  - {id: a, uri: 'lb://orders'}\n", "routes.yml")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr() == (f"{path}: OK (1 routes, 0 services)\n", "")


def test_empty_file_is_valid(
    write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("", "empty.yml")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK (0 routes, 0 services)\n"


@pytest.mark.parametrize("argv", [[], ["run"]])
def test_run_is_the_default(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[None] = []

    def fake_run() -> int:
        calls.append(None)
        return 7

    monkeypatch.setattr(gateway.process, "main_run", fake_run)
    assert main(argv) == 7
    assert len(calls) == 1


# -- the built-in catalogs through the loader --------------------------------------------------


def test_builtin_catalogs_accept_a_realistic_document() -> None:
    config, routes = validate_text(
        VALID, "application.yml", builtin_predicates(), builtin_filters()
    )
    assert [route.id for route in routes] == ["orders-api", "docs"]
    orders = routes[0]
    assert len(orders.predicates) == 3
    # SCG's interleaving: default[0], route[0], route[1]
    assert [f.describe().split()[0] for f in orders.filters] == [
        "[AddResponseHeader",
        "[StripPrefix",
        "[RewritePath",
    ]
    assert config.services["orders"][1].weight == 2


def test_builtin_shortcut_and_expanded_forms_agree() -> None:
    predicates, filters = builtin_predicates(), builtin_filters()
    base = "routes:\n  - id: r\n    uri: http://a\n    predicates:\n"
    shortcut, _ = validate_text(
        base + "      - Path=/red/{segment},/blue/**\n", "a", predicates, filters
    )
    expanded, _ = validate_text(
        base + "      - name: Path\n        args:\n          patterns.0: /red/{segment}\n"
        "          patterns.1: /blue/**\n",
        "a",
        predicates,
        filters,
    )
    assert shortcut.routes == expanded.routes


def test_builtin_unknown_argument_is_reported() -> None:
    text = (
        "routes:\n  - id: r\n    uri: http://a\n    filters:\n      - name: StripPrefix\n"
        "        args: {part: 2}\n"
    )
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "r.yml", builtin_predicates(), builtin_filters())
    assert str(caught.value) == (
        "r.yml: routes[0] (r) filters[0] (StripPrefix): unknown argument(s): part"
    )
