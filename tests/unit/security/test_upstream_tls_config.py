"""Where upstream TLS is configured: SCG's ``httpclient.ssl`` keys (two honoured, the rest
refused with their reason), how they meet the ``GATEWAY_UPSTREAM_*`` variables (the
environment wins), and an instance's ``secure``/``tls-server-name`` in the static
``services:`` section and in Consul's metadata and tags."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from discovery.consul.models import parse_entry
from gateway.config.errors import ConfigErrors
from gateway.config.loader import parse_text
from gateway.config.schema import GatewayConfig, HttpClientSslSettings, InstanceDefinition
from gateway.plugins import Factories
from gateway.routing.manager import instances_of
from gateway.settings import load_settings, with_document

FOUND = Factories.builtin()
NEW = "spring.cloud.gateway.server.webflux"


def read(text: str) -> GatewayConfig:
    return parse_text(textwrap.dedent(text), "app.yml", FOUND.predicates, FOUND.filters)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        read(text)
    return [str(error) for error in caught.value]


# -- httpclient.ssl ------------------------------------------------------------------------------
def test_the_honoured_ssl_keys_in_relaxed_names_and_list_forms() -> None:
    ssl = read(
        f"""
        {NEW}.httpclient.ssl:
          useInsecureTrustManager: false
          trusted-x509-certificates: [/etc/mesh/ca.pem, 'file:certs/extra.pem', 'file:///x/y.pem']
        """
    ).spring.http_client.ssl
    assert ssl == HttpClientSslSettings(False, ("/etc/mesh/ca.pem", "certs/extra.pem", "/x/y.pem"))
    # As Spring binds a comma-separated string, or properties-style indexed keys.
    ssl = read(
        "spring.cloud.gateway.httpclient.ssl.trusted_x509_certificates: 'a.pem, b.pem'\n"
    ).spring.http_client.ssl
    assert ssl.trusted_x509_certificates == ("a.pem", "b.pem")
    ssl = read(
        f"""
        {NEW}.httpclient.ssl.trusted-x509-certificates.0: a.pem
        {NEW}.httpclient.ssl.trusted-x509-certificates.1: b.pem
        """
    ).spring.http_client.ssl
    assert ssl.trusted_x509_certificates == ("a.pem", "b.pem")
    assert read("routes: []\n").spring.http_client.ssl == HttpClientSslSettings()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("[classpath:ca.pem]", "'classpath:ca.pem': there is no classpath here"),
        ("['https://pki.example/ca.pem']", "expected a file path (or file:PATH), not a URL"),
        ("{a: b}", "expected a list of PEM file paths, got a mapping"),
        ("[[a.pem]]", "expected a PEM file path, got a list"),
    ],
)
def test_trusted_certificates_that_are_not_files_are_located_errors(
    value: str, reason: str
) -> None:
    [message] = errors(f"{NEW}.httpclient.ssl.trusted-x509-certificates: {value}\n")
    assert message.startswith(f"app.yml: {NEW}.httpclient.ssl.trusted-x509-certificates: ")
    assert reason in message


def test_trusting_certificates_and_trusting_any_certificate_contradict() -> None:
    [message] = errors(
        f"""
        {NEW}.httpclient.ssl:
          use-insecure-trust-manager: true
          trusted-x509-certificates: [ca.pem]
        """
    )
    assert "keep one of the two" in message


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("handshake-timeout: 10000ms", "httpclient.connect-timeout (or GATEWAY_CONNECT_TIMEOUT)"),
        ("close-notify-flush-timeout: 3000ms", "there is no timeout to set"),
        ("close-notify-read-timeout: 0", "there is no timeout to set"),
        ("key-store: ks.p12", "GATEWAY_UPSTREAM_CLIENT_CERT_FILE"),
        ("key-store-type: PKCS12", "GATEWAY_UPSTREAM_CLIENT_KEY_FILE"),
        ("key-password: secret", "GATEWAY_UPSTREAM_CLIENT_CERT_FILE"),
        ("ssl-bundle: mesh", "GATEWAY_UPSTREAM_CA_FILE"),
    ],
)
def test_the_other_ssl_keys_are_refused_with_what_to_use(key: str, reason: str) -> None:
    [message] = errors(f"{NEW}.httpclient.ssl.{key}\n")
    assert message.startswith(f"app.yml: {NEW}.httpclient.ssl.{key.split(':')[0]}: not supported")
    assert reason in message


def test_the_document_fills_what_the_environment_left_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spring = read(
        f"""
        {NEW}.httpclient.ssl:
          use-insecure-trust-manager: true
        """
    ).spring
    assert with_document(load_settings(), spring).upstream_tls_verify is False
    monkeypatch.setenv("GATEWAY_UPSTREAM_TLS_VERIFY", "true")
    assert with_document(load_settings(), spring).upstream_tls_verify is True
    listed = read(f"{NEW}.httpclient.ssl.trusted-x509-certificates: [a.pem, b.pem]\n").spring
    assert with_document(load_settings(), listed).upstream_trusted_certificates == (
        "a.pem",
        "b.pem",
    )
    monkeypatch.setenv("GATEWAY_UPSTREAM_TRUSTED_CERTIFICATES", " c.pem, d.pem ,")
    assert with_document(load_settings(), listed).upstream_trusted_certificates == (
        "c.pem",
        "d.pem",
    )
    # An explicit false turns nothing off and sets nothing.
    off = read(f"{NEW}.httpclient.ssl.use-insecure-trust-manager: false\n").spring
    monkeypatch.delenv("GATEWAY_UPSTREAM_TLS_VERIFY")
    settings = with_document(load_settings(), off)
    assert settings.upstream_tls_verify is True
    assert "upstream_tls_verify" not in settings.model_fields_set


# -- instances -----------------------------------------------------------------------------------
def test_a_static_instance_names_its_tls_server() -> None:
    config = read(
        """
        services:
          orders:
            - {host: 10.0.0.7, port: 8443, secure: true, tls-server-name: Orders.Mesh.Test}
            - {host: 10.0.0.8, port: 8443, secure: true}
        """
    )
    assert config.services["orders"] == (
        InstanceDefinition(
            host="10.0.0.7", port=8443, secure=True, tls_server_name="orders.mesh.test"
        ),
        InstanceDefinition(host="10.0.0.8", port=8443, secure=True),
    )
    first, second = instances_of(config)["orders"]
    assert (first.tls_server_name, second.tls_server_name) == ("orders.mesh.test", None)


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        ("{host: h, port: 1, tls-server-name: a.test}", "tls-server-name needs secure: true"),
        (
            "{host: h, port: 1, secure: true, tls-server-name: 'https://a.test'}",
            "tls-server-name must be a DNS name or an IP address, got a string ('https://a.test')",
        ),
        (
            "{host: h, port: 1, secure: true, tls-server-name: [a.test]}",
            "tls-server-name must be a DNS name or an IP address",
        ),
    ],
)
def test_a_bad_tls_server_name_is_a_located_error(instance: str, reason: str) -> None:
    [message] = errors(f"services:\n  orders: [{instance}]\n")
    assert message.startswith("app.yml: services.orders[0]: ")
    assert reason in message


def consul_entry(tags: list[str], meta: dict[str, str]) -> dict[str, Any]:
    return {
        "Node": {"Node": "n1", "Address": "10.0.0.1"},
        "Service": {
            "ID": "orders-1",
            "Service": "orders",
            "Address": "10.0.0.5",
            "Port": 8443,
            "Tags": tags,
            "Meta": meta,
        },
        "Checks": [],
    }


@pytest.mark.parametrize(
    ("tags", "meta", "secure", "server_name"),
    [
        ([], {}, False, None),
        (["secure"], {}, True, None),
        (["https"], {}, True, None),
        ([], {"secure": "true"}, True, None),
        ([], {"secure": "TRUE", "tls_server_name": " orders.mesh.test "}, True, "orders.mesh.test"),
        ([], {"secure": "false"}, False, None),
        # A server name on a plain-HTTP instance names nothing.
        ([], {"tls_server_name": "orders.mesh.test"}, False, None),
    ],
)
def test_consul_secure_and_tls_server_name(
    tags: list[str], meta: dict[str, str], secure: bool, server_name: str | None
) -> None:
    instance = parse_entry(consul_entry(tags, meta)).instance
    assert (instance.secure, instance.tls_server_name) == (secure, server_name)
