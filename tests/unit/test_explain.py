"""The explainer over a table the stack builds (no sockets): what it says for a request no
route takes, for a filter that answers, and for a plugin's predicate or filter that raises."""

from __future__ import annotations

import random
import textwrap

import pytest

from discovery.instance import ServiceInstance
from discovery.static import StaticRegistry
from gateway.config.args import Args
from gateway.config.loader import parse_text
from gateway.dispatch import Dispatcher
from gateway.exchange import Exchange, Response
from gateway.explain import Explainer, ExplainInputError, ExplainRequest, explain_text
from gateway.extension import (
    BuildContext,
    FilterFactory,
    GatewayFilter,
    Predicate,
    PredicateFactory,
    SyncFilter,
    WeightGroups,
)
from gateway.filters.catalog import builtin_filters
from gateway.predicates.catalog import builtin_predicates
from gateway.routing.builder import build_routes
from gateway.routing.table import RouteTable
from gateway.stack import RouteStack
from resilience.runtime import ServiceRuntimes
from tests.unit.test_stack import RecordingForwarder


class Fragile(Predicate):
    def test(self, exchange: Exchange) -> bool:
        raise RuntimeError("not for described requests")

    def describe(self) -> str:
        return "Fragile"


class Broken(SyncFilter):
    name = "Broken"

    def pre(self, exchange: Exchange) -> Response | None:
        raise KeyError("x")

    def describe(self) -> str:
        return "[Broken]"


def fragile(args: Args, ctx: BuildContext) -> Predicate:
    args.finish()
    return Fragile()


def broken(args: Args, ctx: BuildContext) -> GatewayFilter:
    args.finish()
    return Broken()


ROUTES = """
routes:
  - id: fragile
    uri: lb://svc
    predicates: [Path=/f/**, Fragile]
  - id: broken
    uri: lb://svc
    predicates: [Path=/b/**]
    filters: [Broken]
  - id: moved
    uri: lb://svc
    predicates: [Path=/old/**]
    filters: ['RedirectTo=301, https://example.org/new']
  - id: svc
    uri: lb://svc
    predicates: [Path=/svc/**]
    filters: [StripPrefix=1, 'SetRequestHeader=X-Seen, yes']
"""


@pytest.fixture
def explainer() -> Explainer:
    rng = random.Random(3)
    predicates = {**builtin_predicates(), "Fragile": PredicateFactory("Fragile", (), fragile)}
    filters = {**builtin_filters(), "Broken": FilterFactory("Broken", (), broken)}
    runtimes = ServiceRuntimes(rng=rng)
    registry = StaticRegistry(
        {"svc": [ServiceInstance("svc", f"svc-{i}", "127.0.0.1", 9000 + i) for i in range(2)]}
    )
    forwarder = RecordingForwarder()
    dispatcher = Dispatcher(RouteTable(()))
    stack = RouteStack(
        registry=registry,
        forwarder=forwarder,
        runtimes=runtimes,
        forward=dispatcher.forward,
        rng=rng,
    )
    config = parse_text(textwrap.dedent(ROUTES), "routes.yml", predicates, filters)
    routes = build_routes(
        config, predicates, filters, lambda: BuildContext(rng=rng, weights=WeightGroups(rng))
    )
    dispatcher.table = stack.table(routes)
    return Explainer(lambda: dispatcher.table, forwarder.head, server=lambda: ("gw", 8080))


def test_a_raising_predicate_is_its_own_no(explainer: Explainer) -> None:
    out = explainer.explain(ExplainRequest("GET", "/f/1"))
    fragile_route = out["routes"][0]
    assert [p["matched"] for p in fragile_route["predicates"]] == [True, False]
    assert fragile_route["predicates"][1]["reason"] == (
        "raised RuntimeError: not for described requests"
    )
    # The lookup itself raises, as it would for the real request: a 500.
    assert out["route"] is None
    assert out["answeredBy"]["status"] == 500


def test_a_raising_filter_is_a_500_from_that_filter(explainer: Explainer) -> None:
    out = explainer.explain(ExplainRequest("GET", "/b/1"))
    assert out["route"] == "broken"
    assert out["answeredBy"] == {
        "filter": "Broken",
        "status": 500,
        "reason": "raised KeyError: 'x'",
    }
    assert out["instance"] is None


def test_a_filter_that_answers_is_where_it_ends(explainer: Explainer) -> None:
    out = explainer.explain(ExplainRequest("GET", "/old/page"))
    assert out["answeredBy"]["filter"] == "RedirectTo"
    assert out["answeredBy"]["status"] == 301
    assert out["forwarded"] is None


def test_no_route_and_the_text_form(explainer: Explainer) -> None:
    out = explainer.explain(ExplainRequest("GET", "/nothing"))
    assert out["route"] is None
    assert out["answeredBy"] == {"filter": None, "status": 404, "reason": "no route matched"}
    assert out["notes"] == ["no Host given: gw:8080 (the gateway's own) assumed"]
    text = explain_text(explainer.explain(ExplainRequest("GET", "/svc/a?q=1")))
    assert "=> svc  lb://svc" in text
    assert "StripPrefix: path /svc/a -> /a" in text
    assert "SetRequestHeader: header X-Seen: yes added" in text
    assert "  GET /a?q=1 HTTP/1.1" in text


def test_the_described_request_is_checked_as_the_proxy_port_checks_it(
    explainer: Explainer,
) -> None:
    with pytest.raises(ExplainInputError, match="would refuse"):
        explainer.explain(ExplainRequest("GET", "/svc/%2e%2e/etc"))
    with pytest.raises(ExplainInputError, match="more than one Host"):
        explainer.explain(ExplainRequest("GET", "/svc", headers=(("Host", "a"), ("Host", "b"))))
    with pytest.raises(ExplainInputError, match="unknown parameter"):
        ExplainRequest.from_query({"url": ["/a"], "verb": ["GET"]})
    with pytest.raises(ExplainInputError, match="url given 2 times"):
        ExplainRequest.from_query({"url": ["/a", "/b"]})
    with pytest.raises(ExplainInputError, match="each of headers"):
        ExplainRequest.from_json({"url": "/a", "headers": [["X-A"]]})
    described = ExplainRequest.from_query(
        {"url": ["http://shop/a"], "header": ["X-A: 1"], "cookie": ["s=2"]}
    )
    assert described.headers == (("X-A", "1"),) and described.cookies == (("s", "2"),)
    out = explainer.explain(ExplainRequest("GET", "http://shop.example/svc/x"))
    assert out["request"]["host"] == "shop.example"
