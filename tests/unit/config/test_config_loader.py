"""Documents → GatewayConfig: where routes may live, the forms they take, services."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config.args import ShortcutType
from gateway.config.errors import ConfigErrors
from gateway.config.loader import collect_document, load_config, parse_document, parse_text
from gateway.config.reader import ValueChecks
from gateway.config.schema import (
    FilterDefinition,
    GatewayConfig,
    InstanceDefinition,
    PredicateDefinition,
    RouteDefinition,
)
from gateway.config.text import read_text
from gateway.errors import ConfigError
from gateway.extension import FilterFactory, PredicateFactory
from gateway.routing.route import RouteUri

Factories = tuple[dict[str, PredicateFactory], dict[str, FilterFactory]]


@pytest.fixture
def factories(
    predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> Factories:
    return predicates, filters


def parse(text: str, factories: Factories, source: str = "routes.yml") -> GatewayConfig:
    return parse_text(text, source, *factories)


ROUTES = """\
routes:
  - id: orders-api
    uri: lb://orders
    order: 5
    predicates:
      - Path=/orders/**
    filters:
      - StripPrefix=1
    metadata:
      response-timeout: 200
default-filters:
  - AddResponseHeader=X-Gateway, meshgate
"""

EXPECTED_ROUTE = RouteDefinition(
    id="orders-api",
    uri="lb://orders",
    predicates=(PredicateDefinition("Path", {"patterns": ["/orders/**"]}),),
    filters=(FilterDefinition("StripPrefix", {"parts": "1"}),),
    order=5,
    metadata={"response-timeout": 200},
)
EXPECTED_DEFAULTS = (
    FilterDefinition("AddResponseHeader", {"name": "X-Gateway", "value": "meshgate"}),
)


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line else line for line in text.splitlines(True))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(ROUTES, id="top-level"),
        pytest.param("spring:\n  cloud:\n    gateway:\n" + _indent(ROUTES, 6), id="spring"),
        pytest.param(
            "spring:\n  cloud:\n    gateway:\n      server:\n        webflux:\n"
            + _indent(ROUTES, 10),
            id="spring-webflux",
        ),
        pytest.param("spring.cloud.gateway:\n" + _indent(ROUTES, 2), id="dotted"),
        pytest.param(
            "spring.cloud.gateway.server.webflux:\n" + _indent(ROUTES, 2), id="dotted-webflux"
        ),
        pytest.param(
            "spring:\n  cloud.gateway.server:\n    webflux:\n" + _indent(ROUTES, 6),
            id="mixed",
        ),
    ],
)
def test_routes_are_found_in_every_nesting(text: str, factories: Factories) -> None:
    config = parse(text, factories)
    assert config.routes == (EXPECTED_ROUTE,)
    assert config.default_filters == EXPECTED_DEFAULTS
    assert config.source == "routes.yml"


def test_spring_application_yml_may_carry_other_keys(factories: Factories) -> None:
    text = (
        "server:\n  port: 8080\nmanagement:\n  endpoints: {}\n"
        "spring:\n  application:\n    name: edge\n  cloud:\n    gateway:\n" + _indent(ROUTES, 6)
    )
    assert parse(text, factories).routes == (EXPECTED_ROUTE,)


def test_default_filters_camel_case(factories: Factories) -> None:
    config = parse("defaultFilters:\n  - AddResponseHeader=X-Gateway, meshgate\n", factories)
    assert config.default_filters == EXPECTED_DEFAULTS


def test_expanded_and_shortcut_routes_are_equal(factories: Factories) -> None:
    shortcut = parse(
        "routes:\n  - id: r\n    uri: http://localhost:8080\n    predicates:\n"
        "      - Path=/red/{segment},/blue/**\n",
        factories,
    )
    expanded = parse(
        "routes:\n  - id: r\n    uri: http://localhost:8080\n    predicates:\n"
        "      - name: Path\n        args:\n          patterns:\n"
        "            - /red/{segment}\n            - /blue/**\n",
        factories,
    )
    indexed = parse(
        "routes:\n  - id: r\n    uri: http://localhost:8080\n    predicates:\n"
        "      - name: Path\n        args:\n"
        "          patterns.0: /red/{segment}\n          patterns.1: /blue/**\n",
        factories,
    )
    assert shortcut == expanded == indexed


def test_defaults_for_optional_route_keys(factories: Factories) -> None:
    config = parse("routes:\n  - id: r\n    uri: http://a\n", factories)
    assert config.routes == (RouteDefinition(id="r", uri="http://a"),)


def test_numeric_id_and_order_strings_are_accepted(factories: Factories) -> None:
    config = parse("routes:\n  - {id: 7, uri: 'http://a', order: '-3'}\n", factories)
    assert config.routes[0].id == "7"
    assert config.routes[0].order == -3


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "routes:\n", "routes: []\n"])
def test_empty_documents_have_no_routes(text: str, factories: Factories) -> None:
    assert parse(text, factories) == GatewayConfig(source="routes.yml")


def test_json_text(factories: Factories) -> None:
    text = json.dumps(
        {
            "routes": [
                {
                    "id": "orders-api",
                    "uri": "lb://orders",
                    "order": 5,
                    "predicates": ["Path=/orders/**"],
                    "filters": [{"name": "StripPrefix", "args": {"parts": "1"}}],
                    "metadata": {"response-timeout": 200},
                }
            ],
            "default-filters": ["AddResponseHeader=X-Gateway, meshgate"],
        },
        indent="\t",  # tabs are fine in JSON, not in YAML
    )
    config = parse(text, factories, source="consul:gateway/routes")
    assert config.routes == (EXPECTED_ROUTE,)
    assert config.default_filters == EXPECTED_DEFAULTS
    assert config.source == "consul:gateway/routes"


def test_yaml_flow_mapping_is_not_mistaken_for_json(factories: Factories) -> None:
    config = parse("{routes: [{id: r, uri: 'http://a'}]}", factories)
    assert config.routes == (RouteDefinition(id="r", uri="http://a"),)


def test_parse_document_takes_data(factories: Factories) -> None:
    config = parse_document({"routes": [{"id": "r", "uri": "http://a"}]}, "kv", *factories)
    assert config.routes == (RouteDefinition(id="r", uri="http://a"),)


def test_timestamps_stay_text(factories: Factories) -> None:
    config = parse(
        "routes:\n  - id: r\n    uri: http://a\n    metadata:\n"
        "      since: 2017-01-20T17:42:47.789-07:00\n",
        factories,
    )
    assert config.routes[0].metadata == {"since": "2017-01-20T17:42:47.789-07:00"}


def test_yaml_merge_keys_may_override(factories: Factories) -> None:
    text = (
        "base: &base {uri: 'http://a', order: 1}\n"
        "spring.cloud.gateway.routes:\n  - <<: *base\n    id: r\n    order: 2\n"
    )
    config = parse(text, factories)
    assert config.routes == (RouteDefinition(id="r", uri="http://a", order=2),)


def test_services(factories: Factories) -> None:
    config = parse(
        """\
services:
  orders:
    - host: 10.0.0.1
      port: 8080
    - {host: orders-2.internal, port: "8443", secure: true, weight: 3, id: orders-2,
       metadata: {zone: eu-1, canary: true, version: 2}}
  empty:
""",
        factories,
    )
    assert config.services == {
        "orders": (
            InstanceDefinition(host="10.0.0.1", port=8080),
            InstanceDefinition(
                host="orders-2.internal",
                port=8443,
                secure=True,
                weight=3,
                metadata={"zone": "eu-1", "canary": "true", "version": "2"},
                instance_id="orders-2",
            ),
        ),
        "empty": (),
    }
    assert config.routes == ()


def test_weight_zero_is_allowed(factories: Factories) -> None:
    config = parse("services:\n  a: [{host: h, port: 1, weight: 0}]\n", factories)
    assert config.services["a"][0].weight == 0


def test_load_config_reads_a_file(write: Callable[[str, str], Path], factories: Factories) -> None:
    path = write(ROUTES, "gateway.yml")
    config = load_config(path, *factories)
    assert config.routes == (EXPECTED_ROUTE,)
    assert config.source == str(path)


def test_load_config_accepts_a_byte_order_mark(tmp_path: Path, factories: Factories) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbf" + ROUTES.encode())
    assert load_config(str(path), *factories).routes == (EXPECTED_ROUTE,)


def test_extension_keys_may_hold_anchors(factories: Factories) -> None:
    text = "x-upstream: &up http://a\nroutes:\n  - {id: r, uri: *up}\n"
    assert parse(text, factories).routes == (RouteDefinition(id="r", uri="http://a"),)


# -- config as the bottom layer: specs and checks come from above ---------------------------


@dataclass(frozen=True)
class _Spec:
    """Not a factory: only the two fields shortcut parsing reads (``ShortcutSpec``)."""

    shortcut_fields: tuple[str, ...]
    shortcut_type: ShortcutType = ShortcutType.DEFAULT


def test_any_shortcut_spec_will_do() -> None:
    specs = {
        "Path": _Spec(("patterns",), ShortcutType.GATHER_LIST),
        "AddRequestHeader": _Spec(("name", "value")),
    }
    text = (
        "routes:\n  - id: r\n    uri: x\n"
        "    predicates: ['Path=/a,/b']\n    filters: ['AddRequestHeader=A, b']\n"
    )
    [route] = parse_text(text, "r.yml", specs, specs).routes
    assert route.predicates == (PredicateDefinition("Path", {"patterns": ["/a", "/b"]}),)
    assert route.filters == (FilterDefinition("AddRequestHeader", {"name": "A", "value": "b"}),)


def test_without_value_checks_uris_and_policies_are_not_read(factories: Factories) -> None:
    # Their meaning is routing's: config alone checks only their shape.
    text = "routes:\n  - {id: r, uri: 'ftp://a'}\nservices:\n  s: {load-balancer: fastest}\n"
    config = parse(text, factories)
    assert config.routes == (RouteDefinition(id="r", uri="ftp://a"),)
    assert config.service_policies == {"s": {"load-balancer": "fastest"}}


def test_value_checks_report_in_document_order(factories: Factories) -> None:
    def no_ftp(uri: str) -> None:
        if uri.startswith("ftp:"):
            raise ConfigError("no ftp")

    def no_fastest(policy: Mapping[str, Any]) -> None:
        if policy.get("load-balancer") == "fastest":
            raise ConfigError("load-balancer: not fastest")

    checks = ValueChecks(uri=no_ftp, service_policy=no_fastest)
    text = (
        "services:\n  s: {load-balancer: fastest}\n"
        "routes:\n  - {id: r, uri: 'ftp://a', order: first}\n  - {id: ok, uri: 'http://a'}\n"
    )
    with pytest.raises(ConfigErrors) as caught:
        parse_text(text, "r.yml", *factories, checks=checks)
    assert [str(error) for error in caught.value] == [
        "r.yml: routes[0] (r) uri: no ftp",
        "r.yml: routes[0] (r): order must be an integer, got a string ('first')",
        "r.yml: services.s: load-balancer: not fastest",
    ]
    result = collect_document(read_text(text, "r.yml"), "r.yml", *factories, checks=checks)
    assert [route.id for route in result.config.routes] == ["ok"]
    assert [route.route_id for route in result.unbuilt] == ["r"]


def test_service_ids_that_differ_only_in_case_are_refused(factories: Factories) -> None:
    text = "services:\n  orders: []\n  Orders:\n    - {host: 10.0.0.1, port: 80}\n"
    with pytest.raises(ConfigErrors) as caught:
        parse(text, factories)
    assert [str(error) for error in caught.value] == [
        "routes.yml: services.Orders: service 'Orders' differs from 'orders' only in case "
        "(service ids compare case-insensitively)",
    ]


def test_lb_uri_keeps_the_service_id_as_written() -> None:
    assert RouteUri.parse("lb://Orders-Svc").service == "Orders-Svc"
    assert RouteUri.parse("lb:ws://Chat:80").service == "Chat"
