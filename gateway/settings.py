"""Process settings, from ``GATEWAY_*`` environment variables (README lists every one)."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.config.schema import SpringSettings
from gateway.errors import ConfigError
from gateway.security.proxies import trusted_proxies
from resilience.durations import parse_duration


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", frozen=True, extra="ignore", populate_by_name=True
    )

    # "sidecar": the proxy port fronts one local app (GATEWAY_SIDECAR_APP) and a loopback
    # outbound port routes the app's own calls by service name (gateway/sidecar.py).
    mode: Literal["gateway", "sidecar"] = "gateway"
    sidecar_app: str | None = None
    sidecar_app_health: str = "/health"
    outbound_port: int = Field(15001, ge=0, le=65535)
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    management_host: str = "127.0.0.1"
    management_port: int = Field(8081, ge=0, le=65535)
    config: str | None = None
    workers: int = Field(1, ge=1, le=256)
    shutdown_timeout: float = 30.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    connect_timeout: float = 5.0
    response_timeout: float = 60.0
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    upstream_idle_timeout: float = 30.0
    max_header_size: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    # -- security --
    # Downstream TLS: the main listener speaks HTTPS when both files are set; a client CA with
    # optional/required client auth makes it mTLS (the identity goes upstream as XFCC).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    tls_client_auth: Literal["none", "optional", "required"] = "none"
    # Upstream TLS: verification on by default (system CAs plus this file), and a client
    # certificate for mTLS to the mesh.
    upstream_ca_file: str | None = None
    upstream_client_cert_file: str | None = None
    upstream_client_key_file: str | None = None
    upstream_tls_verify: bool = True
    # More CA files for upstream TLS (comma-separated; SCG's httpclient.ssl.trusted-x509-
    # certificates in the route file sets it when this is unset).
    upstream_trusted_certificates: Annotated[tuple[str, ...], NoDecode] = ()
    # %2F, %5C and encoded dot-segments in a path: refused with 400 unless allowed.
    allow_encoded_slash: bool = False
    # Bearer token every actuator endpoint but the liveness/readiness probes requires.
    management_token: str | None = None
    # JwtAuth: the least time between two fetches of one JWKS URI that tokens with an unknown
    # kid cause (any fetch counts), so random kids cannot make the gateway fetch each.
    jwks_refetch_interval: float = 30.0
    discovery_locator_enabled: bool = False
    management_write: bool = False
    trusted_proxies: str = ""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    access_log: bool = True
    metrics: bool = True
    # The dashboard and its live numbers (/dashboard, /actuator/gateway/stats): false keeps
    # no live numbers and serves neither (explain and the config view stay).
    dashboard: bool = True
    # -- traffic policy --
    # Honour a ``lane`` entry in inbound W3C baggage (east-west); off at the edge, where it is
    # removed so a client cannot choose a lane.
    trust_inbound_lane: bool = False
    # Mirror filters: the largest request (and compared response) body copied, the copies in
    # flight at once (beyond it a copy is dropped, not queued), and each copy's time bound.
    mirror_max_body: int = Field(1024 * 1024, ge=0)
    mirror_max_inflight: int = Field(100, ge=0)
    mirror_timeout: float = 5.0
    # RequestRateLimiter: buckets in this Redis (shared by every process using it; unset: in
    # each worker), 503 instead of allowing when Redis fails, and the per-worker cap on
    # requests in flight beyond which the gateway answers 503 at once (0: no cap).
    redis_url: str | None = None
    rate_limit_fail_closed: bool = False
    max_inflight: int = Field(0, ge=0)
    # -- resilience --
    zone: str | None = None  # this gateway's zone (zone-aware balancing; instance meta "zone")
    retry_max_body: int = Field(1024 * 1024, ge=0)
    retry_budget_ratio: float = Field(0.2, ge=0.0, le=10.0)
    retry_budget_min: int = Field(10, ge=0)
    outlier_consecutive_failures: int = Field(5, ge=1)
    outlier_base_ejection: float = 30.0
    outlier_max_ejection_percent: float = Field(50.0, ge=0.0, le=100.0)
    breaker_fail_max: int = Field(5, ge=1)
    breaker_reset_timeout: float = 30.0
    # -- discovery and Consul (CONSUL_HTTP_ADDR and friends are read by discovery.consul) --
    discovery: Literal["static", "consul"] | None = None  # None: consul iff CONSUL_HTTP_ADDR set
    consul_datacenter: str | None = None
    consul_tag: str | None = None
    consul_accept_warning: bool = False
    consul_wait: float = 30.0
    consul_routes_key: str | None = None
    tag_routes: bool = True
    # GATEWAY_REGISTER ("register" would shadow a pydantic attribute)
    register_self: bool | None = Field(None, validation_alias="GATEWAY_REGISTER")
    service_name: str = "meshgate"
    service_id: str | None = None
    advertise_address: str | None = None
    service_tags: str = ""
    service_meta: str = ""
    check_interval: float = 10.0
    check_timeout: float = 5.0
    deregister_critical_after: float = 60.0
    deregister_grace: float = 5.0

    @property
    def discovery_mode(self) -> Literal["static", "consul"]:
        if self.discovery is not None:
            return self.discovery
        return "consul" if os.environ.get("CONSUL_HTTP_ADDR", "").strip() else "static"

    @property
    def registers(self) -> bool:
        if self.register_self is None:
            return self.discovery_mode == "consul"
        return self.register_self

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.service_tags.split(",") if t.strip())

    @property
    def meta(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.service_meta.split(",") if item.strip())
        return {k.strip(): v.strip() for k, v in pairs}

    @field_validator(
        "log_level",
        "log_format",
        "event_loop",
        "discovery",
        "tls_client_auth",
        "mode",
        mode="before",
    )
    @classmethod
    def _case(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str):
            if info.field_name == "discovery" and not value.strip():
                return None
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator("service_meta")
    @classmethod
    def _pairs(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip() and "=" not in item:
                raise ValueError(f"expected key=value pairs separated by commas, got {item!r}")
        return value

    @field_validator(
        "consul_datacenter",
        "consul_tag",
        "consul_routes_key",
        "service_id",
        "advertise_address",
        "zone",
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "upstream_ca_file",
        "upstream_client_cert_file",
        "upstream_client_key_file",
        "management_token",
        "sidecar_app",
    )
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator(
        "shutdown_timeout",
        "connect_timeout",
        "response_timeout",
        "header_timeout",
        "keepalive_timeout",
        "upstream_idle_timeout",
        "consul_wait",
        "outlier_base_ejection",
        "breaker_reset_timeout",
        "check_interval",
        "check_timeout",
        "deregister_critical_after",
        "mirror_timeout",
        "jwks_refetch_interval",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value, default_unit="s")
        if seconds <= 0:
            raise ValueError("must be a positive duration")
        return seconds

    @field_validator("deregister_grace", mode="before")
    @classmethod
    def _grace(cls, value: Any) -> float:
        seconds = parse_duration(value, default_unit="s")
        if seconds < 0:
            raise ValueError("must not be negative")
        return seconds

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        trusted_proxies(value)  # a list of IPs/CIDRs or a regex; ValueError says what is wrong
        return value

    @field_validator("upstream_trusted_certificates", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: PEM file paths, comma-separated
            return tuple(path.strip() for path in value.split(",") if path.strip())
        return value

    @field_validator("config")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://[user:password@]host:port/db, rediss:// or unix://")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; errors name the variable (``GATEWAY_PORT: ...``)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).upper()
            name = field if field.startswith("GATEWAY_") else f"GATEWAY_{field}"
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("; ".join(problems), "environment") from exc


def with_document(settings: Settings, spring: SpringSettings) -> Settings:
    """``settings`` with what the route document's Spring sections set at start-up —
    ``server.port``/``address``, ``management.server.*``, ``httpclient`` timeouts and
    ``ssl``, ``trusted-proxies``, ``discovery.locator.enabled`` — for each setting the
    environment left unset: an explicitly set ``GATEWAY_*`` variable wins, as a Spring
    property given on the command line wins over application.yml."""
    candidates: dict[str, Any] = {
        "port": spring.server.port,
        "host": spring.server.address,
        "management_port": spring.server.management_port,
        "management_host": spring.server.management_address,
        "connect_timeout": spring.http_client.connect_timeout,
        "response_timeout": spring.http_client.response_timeout,
        "trusted_proxies": spring.trusted_proxies,
        # httpclient.ssl: only "true" turns verification off; the list adds CAs.
        "upstream_tls_verify": False if spring.http_client.ssl.use_insecure_trust_manager else None,
        "upstream_trusted_certificates": spring.http_client.ssl.trusted_x509_certificates or None,
        "discovery_locator_enabled": spring.locator.enabled,
    }
    updates = {
        name: value
        for name, value in candidates.items()
        if value is not None and name not in settings.model_fields_set
    }
    if "trusted_proxies" in updates:
        # model_copy validates nothing: the document's value is checked as the variable is.
        try:
            trusted_proxies(updates["trusted_proxies"])
        except ValueError as exc:
            raise ConfigError(str(exc), f"{settings.config}: trusted-proxies") from exc
    return settings.model_copy(update=updates) if updates else settings
