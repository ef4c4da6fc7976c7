"""A reload of the route file applies what it can and says what waits for a restart."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.plugins import Factories
from gateway.routing.manager import RouteManager
from gateway.routing.table import RouteTable

NEW = "spring.cloud.gateway.server.webflux"


def test_changed_start_up_settings_are_reported_on_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "application.yml"
    path.write_text(f"server.port: 9090\n{NEW}.routes: []\n")
    found = Factories.builtin()
    manager = RouteManager(
        found.predicates, found.filters, RouteTable, config_path=str(path), locator_enabled=False
    )
    with caplog.at_level(logging.WARNING, "meshgate.routes"):
        manager.load_file()
        assert caplog.records == []  # the first load is the start-up one
        path.write_text(f"server.port: 9191\n{NEW}:\n  trusted-proxies: x\n  routes: []\n")
        manager.load_file()
    [record] = caplog.records
    assert record.getMessage() == (
        f"{path}: server.* / management.server.*, trusted-proxies changed; these are read at "
        "start-up and take effect on restart"
    )
