"""The Spring sections of an application.yml: every SCG property honoured, accepted at its
default only, or refused — and a typo a located error, never ignored."""

from __future__ import annotations

import textwrap

import pytest

from discovery.instance import ServiceInstance
from gateway.config.errors import ConfigErrors
from gateway.config.loader import parse_text
from gateway.config.schema import GatewayConfig, LocatorSettings, PredicateDefinition
from gateway.config.spel import compile_expression
from gateway.errors import ConfigError
from gateway.plugins import Factories
from gateway.routing.locator import locator_routes
from gateway.settings import load_settings, with_document

FOUND = Factories.builtin()
NEW = "spring.cloud.gateway.server.webflux"


def read(text: str) -> GatewayConfig:
    return parse_text(textwrap.dedent(text), "app.yml", FOUND.predicates, FOUND.filters)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        read(text)
    return [str(error) for error in caught.value]


def test_honoured_settings_in_relaxed_names_under_either_prefix() -> None:
    config = read(
        f"""
        server: {{port: 9090, address: 127.0.0.2, shutdown: graceful}}
        management.server.port: 9091
        logging.level.root: INFO
        management.endpoints.web.exposure.include: "*"
        spring:
          application.name: edge
          cloud.gateway:
            trustedProxies: 10\\.0\\.0\\..*
            set_status.original-status-header-name: X-Original-Status
        {NEW}:
          httpclient:
            connect-timeout: 1000
            responseTimeout: 2500ms
          metrics.enabled: false
          filter:
            retry.enabled: false
            Local-Response-Cache: {{enabled: true, time-to-live: 1m, size: 10MB}}
            secure-headers: {{frame-options: SAMEORIGIN, disable: [x-xss-protection]}}
        """
    )
    spring = config.spring
    assert (spring.http_client.connect_timeout, spring.http_client.response_timeout) == (1.0, 2.5)
    assert spring.trusted_proxies == r"10\.0\.0\..*"
    assert spring.metrics_enabled is False
    assert spring.server.port == 9090 and spring.server.address == "127.0.0.2"
    assert spring.server.management_port == 9091 and spring.server.management_address is None
    filters = spring.filters
    assert filters.original_status_header == "X-Original-Status"
    assert filters.disabled_filters == frozenset({"Retry"})
    cache = filters.local_response_cache
    assert (cache.enabled, cache.time_to_live, cache.size) == (True, 60.0, 10 * 1024 * 1024)
    assert filters.secure_headers == {"frame-options": "SAMEORIGIN"}
    assert filters.secure_headers_disabled == ("x-xss-protection",)


def test_a_document_without_spring_sections_has_the_defaults() -> None:
    assert read("routes: []\n").spring == GatewayConfig().spring


def test_typos_are_located_errors_with_did_you_mean() -> None:
    assert errors(
        f"""
        {NEW}:
          routez: []
          httpclient.conect-timeout: 100
          filter.local-response-cache.sise: 1MB
          filter.add-request-headr.enabled: false
        """
    ) == [
        f"app.yml: {NEW}.routez: unknown Spring Cloud Gateway property (did you mean routes?)",
        f"app.yml: {NEW}.httpclient.conect-timeout: unknown Spring Cloud Gateway property "
        "(did you mean httpclient.connect-timeout?)",
        f"app.yml: {NEW}.filter.local-response-cache.sise: unknown Spring Cloud Gateway "
        "property (did you mean filter.local-response-cache.size?)",
        f"app.yml: {NEW}.filter.add-request-headr.enabled: unknown filter "
        "(did you mean add-request-header?)",
    ]


def test_defaults_are_accepted_and_other_values_refused_with_the_reason() -> None:
    read(f"{NEW}:\n  x-forwarded.enabled: true\n  fail-on-route-definition-error: true\n")
    [message] = errors(f"{NEW}:\n  x-forwarded:\n    prefix-enabled: false\n")
    assert message.startswith(
        f"app.yml: {NEW}.x-forwarded.prefix-enabled: only SCG's default (true) is supported,"
        " got false: "
    )
    [message] = errors(f"{NEW}:\n  httpclient.pool.max-connections: 10\n")
    assert message.startswith(f"app.yml: {NEW}.httpclient.pool.max-connections: not supported: ")


def test_the_same_property_under_both_prefixes_is_an_error() -> None:
    assert errors(
        f"spring.cloud.gateway.httpclient.connect-timeout: 100\n"
        f"{NEW}.httpclient.connectTimeout: 200\n"
    ) == [
        f"app.yml: {NEW}.httpclient.connectTimeout: also set as "
        "spring.cloud.gateway.httpclient.connect-timeout; keep one"
    ]


def test_bad_values_name_the_property() -> None:
    assert errors(
        f"""
        {NEW}:
          httpclient: {{connect-timeout: 2s, response-timeout: soon}}
          trusted-proxies: "10.(.*"
        server.port: http
        """
    ) == [
        f"app.yml: {NEW}.httpclient.connect-timeout: expected an integer, got a string ('2s')",
        f"app.yml: {NEW}.httpclient.response-timeout: not a duration: 'soon' "
        "(use e.g. 500ms, 10s, PT1S)",
        f"app.yml: {NEW}.trusted-proxies: not a valid regular expression: "
        "missing ), unterminated subpattern at position 3",
        "app.yml: server.port: expected an integer, got a string ('http')",
    ]


def test_server_ssl_is_refused_rather_than_served_in_plain_text() -> None:
    [message] = errors("server.ssl: {key-store: ks.p12}\nspring.application.name: x\n")
    assert message.startswith("app.yml: server.ssl: the proxy port's TLS is set with ")
    assert "GATEWAY_TLS_CERT_FILE" in message and "GATEWAY_TLS_KEY_FILE" in message
    read("server.ssl.enabled: false\n")
    [message] = errors("management.server.ssl.enabled: true\n")
    assert message.startswith("app.yml: management.server.ssl.enabled: the management port ")


def test_webmvc_properties_are_refused_with_the_reason() -> None:
    [message] = errors("spring.cloud.gateway.server.webmvc.routes: []\n")
    assert "Server WebMVC" in message


def test_a_switched_off_factory_fails_the_routes_that_use_it() -> None:
    from gateway.routing.validate import validate_document

    text = f"{NEW}:\n  filter.retry.enabled: false\n  routes:\n    - id: r\n      uri: http://a\n"
    text += "      filters: [Retry=3]\n"
    from gateway.config.text import read_text

    with pytest.raises(ConfigErrors) as caught:
        validate_document(read_text(text, "app.yml"), "app.yml", FOUND.predicates, FOUND.filters)
    assert [str(error) for error in caught.value] == [
        f"app.yml: {NEW}.routes[0] (r) filters[0] (Retry): filter Retry is switched off by "
        f"{NEW}.filter.retry.enabled: false"
    ]


# -- the locator's expressions ---------------------------------------------------------------
def test_spel_forms_scg_documents() -> None:
    scope = {"serviceId": "Orders"}
    meta = {"edge": "true"}
    assert compile_expression("'lb://'+serviceId").evaluate_text(scope, meta) == "lb://Orders"
    assert compile_expression("'/' + serviceId + '/**'").evaluate_text(scope, {}) == "/Orders/**"
    assert compile_expression("metadata['edge'] == 'true'").evaluate_bool(scope, meta)
    assert not compile_expression("metadata['edge'] == 'true'").evaluate_bool(scope, {})
    assert compile_expression(True).evaluate_bool(scope, {})
    assert compile_expression("metadata['a'] != 'x' and !(serviceId == 'b')").evaluate_bool(
        scope, {}
    )
    assert compile_expression("'it''s'").evaluate_text(scope, {}) == "it's"


@pytest.mark.parametrize(
    "text",
    [
        "serviceId.toLowerCase()",
        "@bean.x",
        "T(java.lang.Math).random()",
        "metadata.edge",
        "serviceId ?: 'x'",
        "'unterminated",
        "",
    ],
)
def test_other_spel_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="is not supported"):
        compile_expression(text)


def test_a_bad_locator_expression_is_a_located_error() -> None:
    [message] = errors(f"{NEW}.discovery.locator.include-expression: serviceId.length() > 3\n")
    assert message.startswith(
        f"app.yml: {NEW}.discovery.locator.include-expression: expression "
        "'serviceId.length() > 3' is not supported"
    )


def test_locator_routes_follow_the_settings() -> None:
    locator = read(
        f"""
        {NEW}.discovery.locator:
          lower-case-service-id: true
          route-id-prefix: "sd-"
          include-expression: metadata['edge'] == 'true'
          url-expression: "'lb://'+serviceId"
          predicates:
            - name: Path
              args: {{patterns: "'/api/'+serviceId+'/**'"}}
          filters:
            - name: StripPrefix
              args: {{parts: "'2'"}}
        """
    ).spring.locator
    edge = ServiceInstance("Orders", "orders-1", "10.0.0.5", 8080, metadata={"edge": "true"})
    internal = ServiceInstance("internal", "internal-1", "10.0.0.6", 8080)
    routes = locator_routes({"Orders": edge, "internal": internal, "unseen": None}, locator)
    [route] = routes
    assert (route.id, route.uri) == ("sd-Orders", "lb://Orders")
    assert route.predicates[0].args == {"patterns": "/api/orders/**"}
    assert route.filters[0].args == {"parts": "2"}
    assert locator_routes({"Orders": edge}, locator, frozenset({"sd-Orders"})) == []


def test_locator_expressions_see_the_first_instance_as_scg_does() -> None:
    locator = read(
        f"""
        {NEW}.discovery.locator:
          url-expression: "scheme+'://'+host+':'+port"
          filters:
            - name: AddRequestHeader
              args: {{name: "'X-Instance'", value: "instanceId+' '+uri+' '+secure"}}
        """
    ).spring.locator
    secure = ServiceInstance("pay", "pay-1", "10.0.0.9", 8443, secure=True)
    [route, unseen] = locator_routes({"pay": secure, "zz": None}, locator)
    assert route.uri == "https://10.0.0.9:8443"
    assert route.filters[0].args["value"] == "pay-1 https://10.0.0.9:8443 true"
    # Before discovery has seen an instance, only serviceId is known (SpEL's null).
    assert unseen.uri == "null://null:null"


def test_default_locator_routes_are_scgs() -> None:
    [route] = locator_routes({"Orders": None}, LocatorSettings())
    assert route.id == "ReactiveCompositeDiscoveryClient_Orders"
    assert route.predicates == (PredicateDefinition("Path", {"patterns": ["/Orders/**"]}),)
    assert route.filters[0].args == {
        "regexp": "/Orders/?(?<remaining>.*)",
        "replacement": "/${remaining}",
    }


# -- start-up settings -----------------------------------------------------------------------
def test_document_start_up_settings_fill_what_the_environment_left_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spring = read(
        f"""
        server.port: 9090
        management.server: {{port: 9091, address: 0.0.0.0}}
        {NEW}:
          httpclient: {{connect-timeout: 1500, response-timeout: 3s}}
          trusted-proxies: 10\\..*
          discovery.locator.enabled: true
        """
    ).spring
    monkeypatch.setenv("GATEWAY_MANAGEMENT_PORT", "7000")
    settings = with_document(load_settings(), spring)
    assert (settings.port, settings.management_port, settings.management_host) == (
        9090,
        7000,  # the environment wins
        "0.0.0.0",
    )
    assert (settings.connect_timeout, settings.response_timeout) == (1.5, 3.0)
    assert settings.trusted_proxies == r"10\..*" and settings.discovery_locator_enabled


def test_the_response_cache_request_section_is_read_nested_as_well_as_dotted() -> None:
    for form in (
        "filter.local-response-cache.request: {no-cache-strategy: update-cache-entry}",
        "filter: {local-response-cache: {request: {no-cache-strategy: update-cache-entry}}}",
        "filter.local-response-cache.request.no-cache-strategy: update-cache-entry",
    ):
        cache = read(f"{NEW}:\n  {form}\n").spring.filters.local_response_cache
        assert cache.no_cache_strategy == "update-cache-entry", form
    [message] = errors(
        f"{NEW}:\n  filter.local-response-cache.request: {{no-cache-strategi: update}}\n"
    )
    assert "no-cache-strategi: unknown Spring Cloud Gateway property" in message


def test_the_global_response_cache_has_its_own_switch_and_the_route_filter_stays() -> None:
    on = f"{NEW}:\n  filter.local-response-cache.enabled: true\n"
    assert read(on).spring.filters.local_response_cache.enabled is True
    spring = read(on + "  global-filter.local-response-cache.enabled: false\n").spring
    assert spring.filters.local_response_cache.enabled is False
    assert "LocalResponseCache" not in spring.filters.disabled_filters
    # Another global filter still can't be switched off: it is how we route.
    [message] = errors(f"{NEW}:\n  global-filter.netty-routing.enabled: false\n")
    assert "netty-routing step can't be switched off" in message


def test_local_response_cache_enabled_false_switches_the_route_filter_off_as_in_scg() -> None:
    spring = read(f"{NEW}:\n  filter.local-response-cache.enabled: false\n").spring
    assert spring.filters.local_response_cache.enabled is False
    assert spring.filters.disabled_filters == frozenset({"LocalResponseCache"})
    assert read("routes: []\n").spring.filters.disabled_filters == frozenset()


def test_switches_may_be_nested_under_global_filter_filter_and_predicate() -> None:
    spring = read(
        f"""
        {NEW}:
          global-filter:
            local-response-cache: {{enabled: false}}
            netty-routing: {{enabled: true}}
          filter: {{local-response-cache: {{enabled: true}}, retry: {{enabled: false}}}}
          predicate: {{weight: {{enabled: false}}}}
        """
    ).spring
    assert spring.filters.local_response_cache.enabled is False
    assert spring.filters.disabled_filters == frozenset({"Retry"})
    assert spring.filters.disabled_predicates == frozenset({"Weight"})
    [message] = errors(f"{NEW}:\n  global-filter: {{netty-routin: {{enabled: true}}}}\n")
    assert "unknown global filter (did you mean netty-routing?)" in message
