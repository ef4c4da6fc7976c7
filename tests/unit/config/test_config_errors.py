"""One test per kind of mistake, with the exact message the user sees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config.errors import ConfigErrors
from gateway.config.loader import load_config
from gateway.errors import ConfigError
from gateway.extension import FilterFactory, PredicateFactory
from gateway.routing.validate import validate_file, validate_text

Check = Callable[[str], list[str]]


@pytest.fixture
def errors_of(predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]) -> Check:
    """Validate a document (load + build) and return its error lines."""

    def check(text: str) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            validate_text(text, "routes.yml", predicates, filters)
        if isinstance(caught.value, ConfigErrors):
            return [str(error) for error in caught.value.errors]
        return [str(caught.value)]

    return check


def route(body: str) -> str:
    """A document with one route: ``body`` holds its keys after id and uri."""
    return "routes:\n  - id: orders-api\n    uri: http://localhost:8080\n" + body


# -- the document ------------------------------------------------------------------------------


def test_yaml_syntax_error(errors_of: Check) -> None:
    assert errors_of("routes:\n  - id: a\n    uri: http://a\n   filters: []\n") == [
        "routes.yml: line 4, column 4: invalid YAML: did not find expected '-' indicator"
    ]


def test_yaml_flow_sequence_with_braces(errors_of: Check) -> None:
    # The classic: an unquoted {segment} inside [ ... ] starts a YAML mapping.
    assert errors_of(route("    predicates: [Path=/red/{segment}]\n")) == [
        "routes.yml: line 4, column 28: invalid YAML: did not find expected ',' or ']'"
    ]


def test_duplicate_yaml_key(errors_of: Check) -> None:
    assert errors_of(route("    filters: []\n    filters: [StripPrefix=1]\n")) == [
        "routes.yml: line 5, column 5: invalid YAML: found duplicate key 'filters'"
    ]


def test_top_level_not_a_mapping(errors_of: Check) -> None:
    assert errors_of("- id: a\n  uri: http://a\n") == [
        "routes.yml: the document must be a mapping (with routes:), got a list"
    ]


def test_unknown_top_level_key(errors_of: Check) -> None:
    assert errors_of("rotues: []\n") == [
        "routes.yml: unknown top-level key 'rotues' (did you mean routes?); "
        "allowed: routes, default-filters, services, spring"
    ]


def test_routes_in_two_places(errors_of: Check) -> None:
    assert errors_of("routes: []\nspring.cloud.gateway.routes: []\n") == [
        "routes.yml: routes defined in more than one place "
        "(routes, spring.cloud.gateway.routes); keep one"
    ]


def test_routes_not_a_list(errors_of: Check) -> None:
    assert errors_of("routes:\n  id: a\n  uri: http://a\n") == [
        "routes.yml: routes: must be a list, got a mapping"
    ]


def test_nested_routes_not_a_list(errors_of: Check) -> None:
    assert errors_of("spring:\n  cloud:\n    gateway:\n      routes: orders\n") == [
        "routes.yml: spring.cloud.gateway.routes: must be a list, got a string ('orders')"
    ]


def test_route_not_a_mapping(errors_of: Check) -> None:
    assert errors_of("routes:\n  - orders-api\n") == [
        "routes.yml: routes[0]: expected a route (a mapping with id and uri), "
        "got a string ('orders-api')"
    ]


# -- route keys --------------------------------------------------------------------------------


def test_missing_id(errors_of: Check) -> None:
    assert errors_of("routes:\n  - uri: http://a\n") == [
        "routes.yml: routes[0]: missing required key 'id'"
    ]


def test_empty_id(errors_of: Check) -> None:
    assert errors_of("routes:\n  - {id: '', uri: 'http://a'}\n") == [
        "routes.yml: routes[0]: id must not be empty"
    ]


def test_id_not_a_string(errors_of: Check) -> None:
    assert errors_of("routes:\n  - {id: [a], uri: 'http://a'}\n") == [
        "routes.yml: routes[0]: id must be a string, got a list"
    ]


def test_duplicate_id_names_both_indexes(errors_of: Check) -> None:
    text = (
        "routes:\n  - {id: a, uri: 'http://a'}\n  - {id: b, uri: 'http://b'}\n"
        "  - {id: a, uri: 'http://c'}\n"
    )
    assert errors_of(text) == ["routes.yml: routes[2] (a): duplicate id 'a' (also routes[0])"]


def test_missing_uri(errors_of: Check) -> None:
    assert errors_of("routes:\n  - id: orders-api\n") == [
        "routes.yml: routes[0] (orders-api): missing required key 'uri'"
    ]


def test_bad_uri_scheme(errors_of: Check) -> None:
    assert errors_of("routes:\n  - {id: a, uri: 'ftp://files'}\n") == [
        "routes.yml: routes[0] (a) uri: unsupported URI scheme 'ftp' in 'ftp://files' "
        "(use http, https, ws, wss, lb, lb:ws or forward)"
    ]


def test_bad_uri_port(errors_of: Check) -> None:
    assert errors_of("routes:\n  - {id: a, uri: 'http://host:99999'}\n") == [
        "routes.yml: routes[0] (a) uri: URI 'http://host:99999' has an invalid port"
    ]


def test_uri_not_a_string(errors_of: Check) -> None:
    assert errors_of("routes:\n  - {id: a, uri: 8080}\n") == [
        "routes.yml: routes[0] (a): uri must be a string, got a number (8080)"
    ]


def test_unknown_route_key(errors_of: Check) -> None:
    assert errors_of(route("    filter: [StripPrefix=1]\n")) == [
        "routes.yml: routes[0] (orders-api): unknown key 'filter' (did you mean filters?); "
        "allowed: id, uri, predicates, filters, order, metadata"
    ]


def test_order_not_an_integer(errors_of: Check) -> None:
    assert errors_of(route("    order: high\n")) == [
        "routes.yml: routes[0] (orders-api): order must be an integer, got a string ('high')"
    ]


def test_order_boolean_is_not_an_integer(errors_of: Check) -> None:
    assert errors_of(route("    order: true\n")) == [
        "routes.yml: routes[0] (orders-api): order must be an integer, got a boolean (true)"
    ]


def test_metadata_not_a_mapping(errors_of: Check) -> None:
    assert errors_of(route("    metadata: [a]\n")) == [
        "routes.yml: routes[0] (orders-api): metadata must be a mapping, got a list"
    ]


def test_predicates_not_a_list(errors_of: Check) -> None:
    assert errors_of(route("    predicates: Path=/a\n")) == [
        "routes.yml: routes[0] (orders-api) predicates: must be a list, got a string ('Path=/a')"
    ]


# -- predicates and filters --------------------------------------------------------------------


def test_unknown_filter_with_suggestion(errors_of: Check) -> None:
    assert errors_of(route("    filters:\n      - StripPrefx=1\n")) == [
        "routes.yml: routes[0] (orders-api) filters[0] (StripPrefx): "
        "unknown filter 'StripPrefx' (did you mean StripPrefix?)"
    ]


def test_unknown_predicate_with_suggestion(errors_of: Check) -> None:
    assert errors_of(route("    predicates:\n      - Paths=/a\n")) == [
        "routes.yml: routes[0] (orders-api) predicates[0] (Paths): "
        "unknown predicate 'Paths' (did you mean Path?)"
    ]


def test_too_many_shortcut_args(errors_of: Check) -> None:
    assert errors_of(route("    filters:\n      - StripPrefix=1, 2\n")) == [
        "routes.yml: routes[0] (orders-api) filters[0] (StripPrefix): "
        "takes at most 1 argument(s) (parts), got 2: '1, 2'"
    ]


def test_missing_required_arg(errors_of: Check) -> None:
    assert errors_of(route("    filters:\n      - AddRequestHeader=X-Red\n")) == [
        "routes.yml: routes[0] (orders-api) filters[0] (AddRequestHeader): "
        "missing required argument 'value'"
    ]


def test_missing_required_arg_in_default_filter(errors_of: Check) -> None:
    text = "default-filters:\n  - PreserveHostHeader\n  - AddRequestHeader=X-Red\n"
    assert errors_of(route("") + text) == [
        "routes.yml: default-filters[1] (AddRequestHeader): missing required argument 'value'"
    ]


def test_default_filter_error_is_reported_once_for_many_routes(errors_of: Check) -> None:
    text = (
        "routes:\n  - {id: a, uri: 'http://a'}\n  - {id: b, uri: 'http://b'}\n"
        "defaultFilters:\n  - StripPrefix=x\n"
    )
    assert errors_of(text) == [
        "routes.yml: defaultFilters[0] (StripPrefix): argument 'parts': "
        "expected an integer, got 'x'"
    ]


def test_default_filters_are_checked_without_routes(errors_of: Check) -> None:
    assert errors_of("default-filters:\n  - AddRequestHeader=X-Red\n") == [
        "routes.yml: default-filters[0] (AddRequestHeader): missing required argument 'value'"
    ]


def test_unknown_arg_name(errors_of: Check) -> None:
    body = "    filters:\n      - name: StripPrefix\n        args:\n          part: 2\n"
    assert errors_of(route(body)) == [
        "routes.yml: routes[0] (orders-api) filters[0] (StripPrefix): unknown argument(s): part"
    ]


def test_bad_arg_value(errors_of: Check) -> None:
    assert errors_of(route("    filters:\n      - RewritePath=/a(b, /c\n")) == [
        "routes.yml: routes[0] (orders-api) filters[0] (RewritePath): "
        "argument 'regexp': missing ), unterminated subpattern at position 2"
    ]


def test_bad_arg_value_in_expanded_predicate(errors_of: Check) -> None:
    body = (
        "    predicates:\n      - Path=/a\n      - name: Path\n        args:\n"
        "          patterns: /b\n          matchTrailingSlash: maybe\n"
    )
    assert errors_of(route(body)) == [
        "routes.yml: routes[0] (orders-api) predicates[1] (Path): argument 'matchTrailingSlash': "
        "not a boolean: 'maybe' (use true or false)"
    ]


def test_malformed_entry(errors_of: Check) -> None:
    assert errors_of(route("    filters:\n      - 3\n")) == [
        "routes.yml: routes[0] (orders-api) filters[0]: expected a filter as 'Name=arguments' "
        "or as a mapping with name and args, got a number (3)"
    ]


# -- services ----------------------------------------------------------------------------------


def test_bad_port(errors_of: Check) -> None:
    assert errors_of("services:\n  orders:\n    - {host: 10.0.0.1, port: 0}\n") == [
        "routes.yml: services.orders[0]: port must be 1..65535, got 0"
    ]


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        (
            "10.0.0.1:8080",
            "expected an instance (a mapping with host and port), got a string ('10.0.0.1:8080')",
        ),
        ("{port: 80}", "missing required key 'host'"),
        ("{host: '', port: 80}", "host must be a non-empty string, got a string ('')"),
        ("{host: h}", "missing required key 'port'"),
        ("{host: h, port: http}", "port must be an integer, got a string ('http')"),
        ("{host: h, port: 65536}", "port must be 1..65535, got 65536"),
        (
            "{host: h, port: 80, secure: maybe}",
            "secure must be true or false, got a string ('maybe')",
        ),
        ("{host: h, port: 80, weight: -1}", "weight must be an integer >= 0, got a number (-1)"),
        ("{host: h, port: 80, weight: 1.5}", "weight must be an integer >= 0, got a number (1.5)"),
        ("{host: h, port: 80, metadata: [a]}", "metadata must be a mapping, got a list"),
        (
            "{host: h, port: 80, metadata: {a: {b: c}}}",
            "metadata.a must be a single value, got a mapping",
        ),
        (
            "{host: h, port: 80, prot: 1}",
            "unknown key 'prot' (did you mean port?); "
            "allowed: host, port, secure, tls-server-name, weight, metadata, id",
        ),
    ],
)
def test_bad_services_entry(errors_of: Check, instance: str, message: str) -> None:
    assert errors_of(f"services:\n  orders:\n    - {instance}\n") == [
        f"routes.yml: services.orders[0]: {message}"
    ]


def test_services_not_a_mapping(errors_of: Check) -> None:
    assert errors_of("services: [orders]\n") == [
        "routes.yml: services must be a mapping of service name to a list of instances, got a list"
    ]


def test_service_instances_not_a_list(errors_of: Check) -> None:
    assert errors_of("services:\n  orders: {host: h, port: 1}\n") == [
        "routes.yml: services.orders: must be a list of instances (or a mapping with instances:"
        " and policy keys), got a single instance"
    ]


def test_duplicate_instance_id(errors_of: Check) -> None:
    text = (
        "services:\n  orders:\n    - {host: a, port: 1, id: x}\n    - {host: b, port: 1, id: x}\n"
    )
    assert errors_of(text) == [
        "routes.yml: services.orders[1]: duplicate instance id 'x' (also services.orders[0])"
    ]


# -- everything at once ------------------------------------------------------------------------


def test_multiple_errors_are_reported_together_in_document_order(errors_of: Check) -> None:
    text = """\
services:
  orders:
    - {host: 10.0.0.1, port: 0}
routes:
  - id: a
    uri: http://a
    filters:
      - RewritePath=/a(b, /c
  - uri: ftp://x
    predicates:
      - Path=/x
      - Hose=x.org
    filters:
      - AddRequestHeader=X-Red
  - id: a
    uri: http://b
    order: first
default-filters:
  - StripPrefix=one
"""
    assert errors_of(text) == [
        "routes.yml: default-filters[0] (StripPrefix): argument 'parts': "
        "expected an integer, got 'one'",
        "routes.yml: routes[0] (a) filters[0] (RewritePath): "
        "argument 'regexp': missing ), unterminated subpattern at position 2",
        "routes.yml: routes[1]: missing required key 'id'",
        "routes.yml: routes[1] uri: unsupported URI scheme 'ftp' in 'ftp://x' "
        "(use http, https, ws, wss, lb, lb:ws or forward)",
        "routes.yml: routes[1] predicates[1] (Hose): unknown predicate 'Hose'",
        "routes.yml: routes[1] filters[0] (AddRequestHeader): missing required argument 'value'",
        "routes.yml: routes[2] (a): duplicate id 'a' (also routes[0])",
        "routes.yml: routes[2] (a): order must be an integer, got a string ('first')",
        "routes.yml: services.orders[0]: port must be 1..65535, got 0",
    ]


def test_aggregate_error_prints_one_line_per_error(
    predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> None:
    with pytest.raises(ConfigErrors) as caught:
        validate_text("routes:\n  - uri: http://a\n  - id: b\n", "r.yml", predicates, filters)
    assert str(caught.value) == (
        "r.yml: routes[0]: missing required key 'id'\n"
        "r.yml: routes[1] (b): missing required key 'uri'"
    )
    assert len(caught.value) == 2
    assert isinstance(caught.value, ConfigError)


# -- files -------------------------------------------------------------------------------------


def test_unreadable_file(
    tmp_path: Path, predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, predicates, filters)
    assert str(caught.value) == f"{missing}: cannot read file: No such file or directory"


def test_directory_is_not_a_file(
    tmp_path: Path, predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_file(tmp_path, predicates, filters)
    assert str(caught.value) == f"{tmp_path}: cannot read file: Is a directory"


def test_not_utf8(
    tmp_path: Path, predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"routes: []\n# caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, predicates, filters)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 16)"


def test_file_errors_name_the_file(
    write: Callable[[str, str], Path],
    predicates: dict[str, PredicateFactory],
    filters: dict[str, FilterFactory],
) -> None:
    path = write("routes:\n  - id: a\n", "gw.yml")
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, predicates, filters)
    assert [str(e) for e in caught.value] == [f"{path}: routes[0] (a): missing required key 'uri'"]


def test_bad_route_timeout_metadata_names_file_route_and_key(tmp_path: Path) -> None:
    from gateway.filters.catalog import builtin_filters
    from gateway.predicates.catalog import builtin_predicates

    path = tmp_path / "routes.yml"
    path.write_text(
        "routes:\n  - id: slow\n    uri: http://127.0.0.1:1\n"
        "    metadata: {response-timeout: soon, connect-timeout: -5}\n"
    )
    with pytest.raises(ConfigErrors) as caught:
        validate_file(path, builtin_predicates(), builtin_filters())
    assert str(caught.value.errors[0]) == (
        f"{path}: routes[0] (slow): metadata connect-timeout: expected a positive number of "
        "milliseconds, got -5"
    )


def test_service_policy_mistakes_name_the_service(errors_of: Check) -> None:
    assert errors_of("services:\n  orders:\n    load-balanser: random\n    instances: []\n") == [
        "routes.yml: services.orders: unknown key 'load-balanser' (did you mean load-balancer?);"
        " allowed: connect-timeout, response-timeout, deadline, load-balancer, hash-on,"
        " max-concurrent, max-concurrent-per-instance, retry, circuit-breaker, strict-lanes"
    ]
    [message] = errors_of("services:\n  orders:\n    load-balancer: fastest\n")
    assert message.startswith("routes.yml: services.orders: load-balancer: ")
    assert "fastest" in message
    messages = errors_of(
        "services:\n  orders:\n    max-concurrent: 0\n    instances:\n      - {host: h, port: 0}\n"
    )
    assert any("max-concurrent" in m for m in messages)
    assert any("services.orders.instances[0]: port must be 1..65535" in m for m in messages)


def test_mesh_client_keys_are_checked_by_the_gateway_too(errors_of: Check) -> None:
    """A file shared by the gateway and the services' mesh clients: ``meshgate validate``
    catches a mistake in the keys only the clients read."""
    assert errors_of("services:\n  orders:\n    retry: {retries: -1}\n") == [
        "routes.yml: services.orders: retry.retries: expected 0 or more, got -1"
    ]
    assert errors_of("services:\n  orders:\n    circuit-breaker: {fail-max: 0}\n") == [
        "routes.yml: services.orders: circuit-breaker.fail-max: expected a positive integer, got 0"
    ]
    assert errors_of("services:\n  orders:\n    deadline: 0\n") == [
        "routes.yml: services.orders: deadline: expected a positive number of milliseconds, got 0"
    ]


def test_mesh_client_keys_load(
    predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> None:
    text = (
        "services:\n  orders:\n    retry: {retries: 2, statuses: [503]}\n"
        "    circuit-breaker: false\n    strict-lanes: true\n    response-timeout: 500\n"
    )
    config, _ = validate_text(text, "routes.yml", predicates, filters)
    assert config.service_policies["orders"]["response-timeout"] == 500


def test_service_policy_and_instances_load(
    predicates: dict[str, PredicateFactory], filters: dict[str, FilterFactory]
) -> None:
    text = (
        "services:\n"
        "  orders:\n"
        "    load-balancer: consistent_hash\n"
        "    hash-on: 'header:X-User'\n"
        "    instances:\n"
        "      - {host: 10.0.0.1, port: 80}\n"
        "  billing: {load-balancer: least_request}\n"
    )
    config, _ = validate_text(text, "routes.yml", predicates, filters)
    assert [i.host for i in config.services["orders"]] == ["10.0.0.1"]
    assert "billing" not in config.services  # policy only: instances from discovery
    assert config.service_policies["orders"]["hash-on"] == "header:X-User"
    assert config.service_policies["billing"] == {"load-balancer": "least_request"}


def test_route_response_timeout_accepts_minus_one_and_nothing_else_below_one(
    tmp_path: Path,
) -> None:
    from gateway.filters.catalog import builtin_filters
    from gateway.predicates.catalog import builtin_predicates

    path = tmp_path / "routes.yml"
    path.write_text(
        "routes:\n  - id: patient\n    uri: http://127.0.0.1:1\n"
        "    metadata: {response-timeout: -1}\n"
        "  - id: zero\n    uri: http://127.0.0.1:1\n    metadata: {response-timeout: 0}\n"
    )
    with pytest.raises(ConfigErrors) as caught:
        validate_file(path, builtin_predicates(), builtin_filters())
    assert [str(error) for error in caught.value.errors] == [
        f"{path}: routes[1] (zero): metadata response-timeout: expected a positive number of "
        "milliseconds or -1 (no timeout), got 0"
    ]
