"""How the stack builds routes with ``uri: no://op`` and the request URL filters, with the
transport faked (``tests.unit.test_stack``'s recording forwarder)."""

from __future__ import annotations

import functools

import pytest

from gateway.errors import NoInstancesAvailable
from gateway.exchange import Exchange, Response
from gateway.forwarder import Pick
from gateway.hash_key import KeyOf
from gateway.stack import Retargeted, not_routed
from resilience.runtime import AttemptHooks
from tests.unit.test_stack import RecordingForwarder, exchange, gateway_parts


class TargetRecorder(RecordingForwarder):
    """Also records the request target a re-targeted attempt was given."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str | None] = []

    async def forward(
        self,
        pick: Pick,
        key_of: KeyOf | None,
        connect_timeout: float | None,
        response_timeout: float | None,
        hooks: AttemptHooks | None,
        exchange: Exchange,
        request_target: str | None = None,
    ) -> Response:
        self.targets.append(request_target)
        return await super().forward(
            pick, key_of, connect_timeout, response_timeout, hooks, exchange
        )


ROUTES = """
routes:
  - {id: plain, uri: 'http://127.0.0.1:7000', predicates: ['Path=/plain/**']}
  - {id: noop, uri: 'no://op', predicates: ['Path=/noop/**']}
  - id: seturi
    uri: no://op
    predicates: ['Path=/seturi/{seg}']
    filters: ['SetRequestUri=http://10.0.0.1:81/t/{seg}?x=1']
    metadata: {connect-timeout: 250}
  - id: lbfixed
    uri: no://op
    predicates: ['Path=/lbfixed/**']
    filters: ['SetRequestUri=lb://SVC']
    metadata: {max-concurrent: 3}
  - id: lbvar
    uri: no://op
    predicates: ['Path=/lbvar/{svc}/**']
    filters: ['AddRequestHeader=X-A, b', 'SetRequestUri=lb://{svc}']
"""


def handlers(forwarder: RecordingForwarder) -> dict[str, object]:
    dispatcher, *_ = gateway_parts(ROUTES, forwarder)
    return {route.id: route.handler for route in dispatcher.table.routes}


def test_routes_without_the_filters_get_no_extra_layer() -> None:
    built = handlers(TargetRecorder())
    plain = built["plain"]
    assert isinstance(plain, functools.partial)  # the forwarder itself, as before
    assert built["noop"] is not_routed


def test_the_filter_is_the_endpoint_not_a_layer() -> None:
    built = handlers(TargetRecorder())
    seturi = built["seturi"]
    # The only filter became the endpoint: no folded sync layer above it.
    assert getattr(seturi, "__self__", None).__class__ is Retargeted
    # Other filters still fold above it.
    assert getattr(built["lbvar"], "__self__", None).__class__ is not Retargeted


async def test_a_re_targeted_http_url_sends_its_own_path_with_the_route_timeouts() -> None:
    forwarder = TargetRecorder()
    dispatcher, *_ = gateway_parts(ROUTES, forwarder)
    assert (await dispatcher(exchange("/seturi/abc"))).status == 200
    [(target, connect, _)] = forwarder.sent
    assert (target.host, target.port, target.secure, connect) == ("10.0.0.1", 81, False, 0.25)
    assert forwarder.targets == ["/t/abc?x=1"]


async def test_lb_named_outright_is_set_up_with_the_table_and_keeps_the_request_path() -> None:
    forwarder = TargetRecorder()
    dispatcher, _, runtimes, _ = gateway_parts(ROUTES, forwarder)
    # Set up while the table was built, so the route's cap counts for the service.
    bulkhead = runtimes.get("SVC").bulkhead
    assert bulkhead is not None
    response = await dispatcher(exchange("/lbfixed/x"))
    assert (response.status, response.headers.get("X-Path")) == (200, "/lbfixed/x")
    assert forwarder.targets == [None]  # the request's own path and query
    assert forwarder.sent[0][0].instance_id in {"svc-0", "svc-1"}


async def test_lb_from_a_variable_only_for_a_service_the_registry_has() -> None:
    forwarder = TargetRecorder()
    dispatcher, _, runtimes, _ = gateway_parts(ROUTES, forwarder)
    assert (await dispatcher(exchange("/lbvar/svc/x"))).status == 200
    assert (await dispatcher(exchange("/lbvar/nobody/x"))).status == 503
    # A name the registry does not know leaves nothing behind.
    assert "nobody" not in runtimes.known()
    route = next(r for r in dispatcher.table.routes if r.id == "lbvar")
    unmatched = exchange("/lbvar/nobody/x")
    unmatched.uri_variables["svc"] = "nobody"
    with pytest.raises(NoInstancesAvailable, match="Unable to find instance for nobody"):
        await route.handler(unmatched)
