"""Process settings, from ``GATEWAY_*`` environment variables (README lists every one)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.config.args import parse_duration
from gateway.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", frozen=True, extra="ignore")

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
    max_header_size: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    discovery_locator_enabled: bool = False
    management_write: bool = False
    trusted_proxies: str = ""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("log_level", "log_format", "event_loop", mode="before")
    @classmethod
    def _case(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str):
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator(
        "shutdown_timeout",
        "connect_timeout",
        "response_timeout",
        "header_timeout",
        "keepalive_timeout",
        "upstream_idle_timeout",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value, default_unit="s")
        if seconds <= 0:
            raise ValueError("must be a positive duration")
        return seconds

    @field_validator("trusted_proxies")
    @classmethod
    def _regex(cls, value: str) -> str:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @field_validator("config")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; errors name the variable (``GATEWAY_PORT: ...``)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            problems.append(f"GATEWAY_{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("; ".join(problems), "environment") from exc
