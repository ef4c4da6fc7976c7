"""The management token and the start-up rule for route writes on an exposed port."""

from __future__ import annotations

import logging

import pytest

from gateway.errors import ConfigError
from gateway.security.management import BearerToken, check_management_exposure, is_loopback

TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize(
    ("header", "admitted"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),  # auth schemes are case-insensitive
        (f"  BEARER   {TOKEN}  ", True),
        (None, False),
        ("", False),
        ("Bearer", False),
        ("Bearer ", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        (f"Bearer {TOKEN.upper()}", False),
        ("Bearer \udcff", False),  # undecodable bytes as aiohttp surfaces them
    ],
)
def test_only_the_exact_token_as_a_bearer_is_admitted(header: str | None, admitted: bool) -> None:
    assert BearerToken(TOKEN).admits(header) is admitted


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("gateway.internal", False),
        ("128.0.0.1", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "gateway.internal"])
def test_writes_on_an_exposed_port_need_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_MANAGEMENT_TOKEN") as caught:
        check_management_exposure(host, writes=True, token=None)
    assert caught.value.location == "environment"
    assert "GATEWAY_MANAGEMENT_WRITE=true" in str(caught.value)
    check_management_exposure(host, writes=True, token=TOKEN)


def test_loopback_or_read_only_starts(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="meshgate.security"):
        check_management_exposure("127.0.0.1", writes=True, token=None)
        check_management_exposure("::1", writes=False, token=None)
        assert caplog.records == []
        check_management_exposure("0.0.0.0", writes=False, token=None)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "without GATEWAY_MANAGEMENT_TOKEN" in caplog.records[0].getMessage()
