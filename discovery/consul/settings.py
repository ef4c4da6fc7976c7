"""How to reach Consul, from Consul's own standard environment variables, so a service already
configured for the ``consul`` CLI needs nothing new."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from discovery.errors import DiscoveryConfigError
from resilience.durations import env_seconds

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class ConsulSettings:
    host: str = "127.0.0.1"
    port: int = 8500
    scheme: str = "http"
    token: str | None = None
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    datacenter: str | None = None
    tag: str | None = None  # only instances carrying this tag
    accept_warning: bool = False  # route to instances whose worst check is "warning"
    wait: float = 30.0  # blocking-query wait

    @property
    def address(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> ConsulSettings:
        """``CONSUL_HTTP_ADDR`` (``host:port`` or ``scheme://host:port``), ``CONSUL_HTTP_TOKEN``,
        ``CONSUL_HTTP_SSL``, ``CONSUL_HTTP_SSL_VERIFY``, ``CONSUL_CACERT``,
        ``CONSUL_CLIENT_CERT``, ``CONSUL_CLIENT_KEY``; errors name the variable."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        addr = env.get("CONSUL_HTTP_ADDR", "").strip()
        if addr:
            parsed = urlsplit(addr if "://" in addr else "//" + addr)
            try:
                port = parsed.port
            except ValueError as exc:
                raise DiscoveryConfigError(f"CONSUL_HTTP_ADDR: bad port in {addr!r}") from exc
            if not parsed.hostname or parsed.scheme not in ("", "http", "https"):
                raise DiscoveryConfigError(
                    f"CONSUL_HTTP_ADDR: expected host:port or http(s)://host:port, got {addr!r}"
                )
            values["host"] = parsed.hostname
            values["scheme"] = parsed.scheme or "http"
            values["port"] = port or (443 if parsed.scheme == "https" else 8500)
        ssl = env.get("CONSUL_HTTP_SSL")
        if ssl is not None and ssl.strip():
            values["scheme"] = "https" if _flag("CONSUL_HTTP_SSL", ssl) else "http"
        verify = env.get("CONSUL_HTTP_SSL_VERIFY")
        if verify is not None and verify.strip():
            values["verify"] = _flag("CONSUL_HTTP_SSL_VERIFY", verify)
        for var, name in (
            ("CONSUL_HTTP_TOKEN", "token"),
            ("CONSUL_CACERT", "ca_file"),
            ("CONSUL_CLIENT_CERT", "cert_file"),
            ("CONSUL_CLIENT_KEY", "key_file"),
        ):
            value = env.get(var, "").strip()
            if value:
                values[name] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if (settings.cert_file is None) != (settings.key_file is None):
            raise DiscoveryConfigError("CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY go together")
        for var, path in (
            ("CONSUL_CACERT", settings.ca_file),
            ("CONSUL_CLIENT_CERT", settings.cert_file),
            ("CONSUL_CLIENT_KEY", settings.key_file),
        ):
            if path is not None and not os.path.isfile(path):
                raise DiscoveryConfigError(f"{var}: no such file {path!r}")
        return settings


def filter_from_env(env: Mapping[str, str], prefix: str = "GATEWAY_") -> dict[str, object]:
    """What the gateway's ``GATEWAY_CONSUL_DATACENTER``, ``_TAG``, ``_ACCEPT_WARNING`` and
    ``_WAIT`` say about which instances to see and how long a watch waits, as overrides for
    ``ConsulSettings.from_env``: a service's mesh client then sees what its gateway sees."""
    values: dict[str, object] = {}
    for name in ("datacenter", "tag"):
        text = env.get(f"{prefix}CONSUL_{name.upper()}", "").strip()
        if text:
            values[name] = text
    variable = f"{prefix}CONSUL_ACCEPT_WARNING"
    text = env.get(variable, "").strip()
    if text:
        values["accept_warning"] = _flag(variable, text)
    try:
        wait = env_seconds(env, f"{prefix}CONSUL_WAIT")
    except ValueError as exc:
        raise DiscoveryConfigError(str(exc)) from None
    if wait is not None:
        values["wait"] = wait
    return values


def _flag(var: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise DiscoveryConfigError(f"{var}: expected true or false, got {value!r}")
