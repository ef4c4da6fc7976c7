"""The mesh client's retry vocabulary: SCG's arguments, the safe defaults, and what may be
repeated after bytes went out."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from discovery.mesh.policy import (
    CONNECT,
    DISCONNECT,
    TIMEOUT,
    RetrySpec,
    ServicePolicy,
    failure_kind,
)

KEY = ConnectionKey("h", 80, False, True, None, None, None)


def connect_error() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))


def test_failure_kinds() -> None:
    assert failure_kind(connect_error()) == CONNECT
    assert failure_kind(aiohttp.ServerDisconnectedError()) == DISCONNECT
    assert failure_kind(aiohttp.ClientOSError(104, "reset")) == DISCONNECT
    assert failure_kind(TimeoutError()) == TIMEOUT
    assert failure_kind(ValueError("x")) is None
    assert failure_kind(aiohttp.ClientConnectorSSLError(KEY, OSError("bad cert"))) is None


def test_defaults_retry_idempotent_methods_once_on_connect_and_disconnect() -> None:
    spec = RetrySpec()
    assert spec.retries == 1
    assert spec.methods == frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
    assert spec.retries_error("GET", connect_error())
    assert spec.retries_error("DELETE", aiohttp.ServerDisconnectedError())
    assert not spec.retries_error("GET", TimeoutError())  # not listed by default
    assert not spec.retries_status(503)  # no status unless listed


def test_listed_non_idempotent_method_repeats_only_what_was_never_sent() -> None:
    spec = RetrySpec(methods=frozenset({"POST"}), exceptions=frozenset({CONNECT, DISCONNECT}))
    assert spec.retries_error("POST", connect_error())
    assert not spec.retries_error("POST", aiohttp.ServerDisconnectedError())


def test_scg_names_for_series_and_exceptions() -> None:
    spec = RetrySpec(
        statuses=frozenset({429}),
        series=frozenset({"SERVER_ERROR"}),
        exceptions=frozenset({"java.util.concurrent.TimeoutException", "ConnectException"}),
    )
    assert spec.retries_status(429) and spec.retries_status(502)
    assert not spec.retries_status(404)
    assert spec.kinds == frozenset({TIMEOUT, CONNECT})
    assert RetrySpec(series=frozenset({4})).retries_status(409)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries must not be negative"),
        ({"statuses": frozenset({700})}, "statuses: 700"),
        ({"series": frozenset({"SERVER_ERRORS"})}, "series: 'SERVER_ERRORS'"),
        ({"methods": frozenset({"FETCH"})}, "methods: unknown FETCH"),
        ({"exceptions": frozenset({"IOError"})}, "exceptions: unknown 'IOError'"),
    ],
)
def test_bad_retry_arguments_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrySpec(**kwargs)  # type: ignore[arg-type]


def test_bad_policy_values_name_the_field() -> None:
    with pytest.raises(ValueError, match="per_try_timeout must be positive"):
        ServicePolicy(per_try_timeout=0)
    with pytest.raises(ValueError, match="max_concurrent must be at least 1"):
        ServicePolicy(max_concurrent=0)
