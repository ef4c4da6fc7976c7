"""An instance's gray-release lane, from metadata or a tag, wherever the instance came from:
the route file's ``services:``, a Consul health entry (``ServiceMeta.lane`` or a tag)."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

import pytest

from discovery.consul.models import parse_entry
from discovery.instance import ServiceInstance
from discovery.lane import lane_of
from gateway.config.loader import parse_text
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.manager import instances_of


@pytest.mark.parametrize(
    ("metadata", "tags", "lane"),
    [
        ({}, (), "stable"),
        ({"lane": "canary"}, (), "canary"),
        ({}, ("https", "lane=blue"), "blue"),
        ({"lane": "canary"}, ("lane=blue",), "canary"),  # metadata wins
        ({"lane": ""}, ("lane=blue",), "blue"),  # an empty value names no lane
        ({"lane": " canary "}, (), "canary"),
        ({}, ("lane=",), "stable"),
        ({}, ("lanes=blue", "xlane=blue"), "stable"),
        ({"lane": "stable"}, (), "stable"),
        ({"lane": "Canary"}, (), "Canary"),  # as written: case-sensitive
    ],
)
def test_lane_of(metadata: dict[str, str], tags: tuple[str, ...], lane: str) -> None:
    assert lane_of(metadata, tags) == lane


def test_service_instance_lane_is_derived_and_follows_replace() -> None:
    plain = ServiceInstance("svc", "a", "127.0.0.1", 9000)
    assert plain.lane == "stable"
    canary = replace(plain, metadata={"lane": "canary"})
    assert canary.lane == "canary"
    assert ServiceInstance("svc", "b", "h", 1, tags=("lane=blue",)).lane == "blue"
    assert "lane" not in repr(canary).split("metadata")[0]  # derived, not a constructor field


def consul_entry(meta: dict[str, str], tags: list[str]) -> dict[str, Any]:
    return {
        "Node": {"Node": "n1", "Address": "10.0.0.1"},
        "Service": {
            "ID": "orders-1",
            "Service": "orders",
            "Port": 9000,
            "Tags": tags,
            "Meta": meta,
        },
        "Checks": [{"CheckID": "serfHealth", "Status": "passing"}],
    }


def test_consul_meta_and_tag_lanes() -> None:
    assert parse_entry(consul_entry({"lane": "canary"}, [])).instance.lane == "canary"
    assert parse_entry(consul_entry({}, ["lane=blue"])).instance.lane == "blue"
    assert parse_entry(consul_entry({}, ["v2"])).instance.lane == "stable"


def test_services_section_metadata_lane() -> None:
    text = """
    services:
      orders:
        - {host: 127.0.0.1, port: 9000, id: s1}
        - {host: 127.0.0.1, port: 9001, id: c1, metadata: {lane: canary}}
    routes: []
    """
    config = parse_text(
        textwrap.dedent(text), "routes.yml", builtin_predicates(), builtin_filters()
    )
    assert [i.lane for i in instances_of(config)["orders"]] == ["stable", "canary"]
