"""SCG's rate-limiter properties: the factory's defaults (``filter.request-rate-limiter.*``)
and the header names (``redis-rate-limiter.*``) are honoured in relaxed names; the bean
properties are refused naming the key resolvers there are."""

from __future__ import annotations

import textwrap

import pytest

from gateway.config.errors import ConfigErrors
from gateway.config.loader import parse_text
from gateway.config.schema import GatewayConfig, RateLimiterSettings
from gateway.errors import ConfigError
from gateway.plugins import Factories
from gateway.routing.validate import validate_text

FOUND = Factories.builtin()
NEW = "spring.cloud.gateway.server.webflux"


def read(text: str) -> GatewayConfig:
    return parse_text(textwrap.dedent(text), "app.yml", FOUND.predicates, FOUND.filters)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        read(text)
    return [str(error) for error in caught.value]


def test_unset_properties_are_scgs_defaults() -> None:
    assert read("routes: []\n").spring.filters.rate_limiter == RateLimiterSettings()


def test_the_properties_are_honoured_in_relaxed_names_under_either_prefix() -> None:
    config = read(
        f"""
        {NEW}:
          filter:
            request-rate-limiter:
              denyEmptyKey: false
              empty-key-status-code: UNAUTHORIZED
              throw-on-limit: true
          redis-rate-limiter:
            include_headers: false
            remaining-header: X-Left
            replenishRateHeader: X-Rate
        spring.cloud.gateway.redis-rate-limiter.burst-capacity-header: X-Burst
        spring.cloud.gateway.redis-rate-limiter.requested-tokens-header: X-Cost
        """
    )
    assert config.spring.filters.rate_limiter == RateLimiterSettings(
        deny_empty_key=False,
        empty_key_status=401,
        include_headers=False,
        remaining_header="X-Left",
        replenish_rate_header="X-Rate",
        burst_capacity_header="X-Burst",
        requested_tokens_header="X-Cost",
    )
    numeric = read(f"{NEW}.filter.request-rate-limiter.empty-key-status-code: 429\n")
    assert numeric.spring.filters.rate_limiter.empty_key_status == 429


def test_bad_values_name_the_property() -> None:
    assert errors(
        f"""
        {NEW}:
          filter.request-rate-limiter.empty-key-status-code: NOT_A_STATUS
          filter.request-rate-limiter.deny-empty-key: perhaps
          redis-rate-limiter.remaining-header: "X Left"
        """
    ) == [
        f"app.yml: {NEW}.filter.request-rate-limiter.empty-key-status-code: expected an HTTP "
        "status (a number or a name like FORBIDDEN), got 'NOT_A_STATUS'",
        f"app.yml: {NEW}.filter.request-rate-limiter.deny-empty-key: not a boolean: 'perhaps' "
        "(use true or false)",
        f"app.yml: {NEW}.redis-rate-limiter.remaining-header: expected a header name, got 'X Left'",
    ]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (
            "filter.request-rate-limiter.default-key-resolver: '#{@userKeyResolver}'",
            "names a Java bean",
        ),
        (
            "filter.request-rate-limiter.default-rate-limiter: '#{@redisRateLimiter}'",
            "built-in token bucket",
        ),
        (
            "redis-rate-limiter.config: {orders: {replenish-rate: 1}}",
            "as its RequestRateLimiter arguments",
        ),
    ],
)
def test_bean_properties_are_refused_with_the_reason(key: str, reason: str) -> None:
    [message] = errors(f"{NEW}:\n  {key}\n")
    assert "not supported: " in message
    assert reason in message
    if "key-resolver" in key:
        assert "principal, remote-addr, header:NAME, query:NAME or route" in message


def test_the_factory_switch_turns_the_filter_off() -> None:
    text = f"""\
{NEW}:
  filter.request-rate-limiter.enabled: false
  routes:
    - id: limited
      uri: http://127.0.0.1:9
      filters:
        - name: RequestRateLimiter
          args: {{redis-rate-limiter.replenishRate: 1}}
"""
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "app.yml", FOUND.predicates, FOUND.filters)
    assert "switched off by" in str(caught.value)
    assert "filter.request-rate-limiter.enabled: false" in str(caught.value)
