"""Secrets in route arguments never reach the actuator as written."""

from __future__ import annotations

from gateway.config.schema import FilterDefinition, RouteDefinition
from gateway.management.shapes import MASK, definition_object


def test_a_jwt_secret_is_masked_in_routedefinitions_and_nothing_else_is() -> None:
    written = {"secret": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t", "algorithms": ["HS256"]}
    definition = RouteDefinition(
        "r",
        "http://127.0.0.1:1",
        filters=(
            FilterDefinition("JwtAuth", written, written),
            FilterDefinition("AddRequestHeader", {"name": "secret", "value": "shown"}),
        ),
    )
    filters = definition_object(definition)["filters"]
    assert filters[0] == {"args": {"secret": MASK, "algorithms.0": "HS256"}, "name": "JwtAuth"}
    assert "s3cr3t" not in repr(filters)
    assert filters[1]["args"] == {"name": "secret", "value": "shown"}
