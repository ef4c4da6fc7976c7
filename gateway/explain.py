"""Why a request goes where it goes: the explain API (``/actuator/gateway/explain``) and
``meshgate explain``.

A described request (method, URL, headers, cookies, client address) becomes an ``Exchange``
through the engine's own head code, so it is normalised and refused exactly as on the proxy
port. Then, without sending anything and without moving any state:

- the live table's own lookup picks the route (its path index, first match wins), with the
  Weight groups drawn from copies of their generators: the choice the next request gets;
- every route is listed in match order with each predicate's verdict and reason;
- the matched route's filters run as far as they can without a network: synchronous ones
  through ``SyncFilter.preview`` (what they change is shown), awaiting ones (Retry,
  RequestRateLimiter, CircuitBreaker, ...) are listed, not run, so no bucket loses a token;
- the balancer's next pick comes from a copy of it (``InstancePicker.preview``), and the head
  the forwarder would write is rendered by the forwarder itself.

The forecast holds for the next request this worker handles, if nothing else comes first; with
``GATEWAY_WORKERS`` > 1 another worker, with its own balancer positions, may take it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.baggage import inbound_lane
from gateway.engine.request_head import RequestHead
from gateway.errors import GatewayError, from_call_error
from gateway.exchange import Destination, Exchange
from gateway.extension import (
    GatewayFilter,
    NotPreviewed,
    SyncFilter,
    Verdict,
    WeightForecast,
    WeightGroups,
    WrappingFilter,
)
from gateway.filters.lane import LaneStrict
from gateway.filters.request_uri import ChangeRequestUri
from gateway.predicates.weight import WeightPredicate
from gateway.routing.route import Route
from gateway.routing.table import RouteTable
from resilience.errors import CallError

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_FIELDS = 100

# The forwarder's ``head``: the exact bytes an upstream would get.
RenderHead = Callable[[Exchange, Destination], bytes]
ClientAddress = Callable[[Exchange], str]


class ExplainInputError(ValueError):
    """The described request cannot be explained (a 400): the message says which part."""


@dataclass(frozen=True, slots=True)
class ExplainRequest:
    """A request described, not sent. ``url`` is origin-form (``/orders/1?x=1``) or absolute
    (``http://shop.example/orders/1``, whose authority is then the Host)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    remote_address: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not self.method or not _TOKEN.fullmatch(self.method):
            raise ExplainInputError(f"method {self.method!r} is not an HTTP method token")
        if not self.url:
            raise ExplainInputError("url is required (e.g. /orders/1 or http://host/orders/1)")
        if not (self.url.startswith("/") or re.match(r"(?i)https?://", self.url)):
            raise ExplainInputError(
                f"url {self.url!r} must start with / or be an absolute http(s):// URL"
            )
        if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in self.url):
            raise ExplainInputError(
                "url must be ASCII without spaces or control characters (percent-encode the rest)"
            )
        try:
            urlsplit(self.url)
        except ValueError as exc:
            raise ExplainInputError(f"url {self.url!r} is not a URL: {exc}") from None
        if len(self.headers) + len(self.cookies) > _MAX_FIELDS:
            raise ExplainInputError(f"at most {_MAX_FIELDS} headers and cookies")
        for name, value in self.headers:
            if not _TOKEN.fullmatch(name):
                raise ExplainInputError(f"header name {name!r} is not a token")
            if any(c in value for c in "\r\n\0"):
                raise ExplainInputError(f"header {name} has a line break or NUL in its value")
            _latin1(value, f"header {name}")
        for name, value in self.cookies:
            if not _TOKEN.fullmatch(name):
                raise ExplainInputError(f"cookie name {name!r} is not a token")
            if any(c in value for c in ";\r\n\0"):
                raise ExplainInputError(f"cookie {name} has ';', a line break or NUL in its value")
            _latin1(value, f"cookie {name}")
        try:
            ipaddress.ip_address(self.remote_address)
        except ValueError:
            raise ExplainInputError(
                f"remoteAddress {self.remote_address!r} is not an IP address"
            ) from None

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> ExplainRequest:
        """``?method=GET&url=/a&header=Name:value&cookie=name=value&remoteAddress=10.0.0.1``
        (``header`` and ``cookie`` repeat)."""
        unknown = sorted(set(query) - {"method", "url", "header", "cookie", "remoteAddress"})
        if unknown:
            raise ExplainInputError(
                f"unknown parameter(s) {', '.join(unknown)}; expected method, url, header, "
                "cookie, remoteAddress"
            )
        return cls(
            method=_one(query, "method", "GET"),
            url=_one(query, "url", ""),
            headers=tuple(parse_header(text) for text in query.get("header", ())),
            cookies=tuple(parse_cookie(text) for text in query.get("cookie", ())),
            remote_address=_one(query, "remoteAddress", "127.0.0.1"),
        )

    @classmethod
    def from_json(cls, data: object) -> ExplainRequest:
        """``{"method", "url", "headers": {name: value} or [[name, value], ...], "cookies":
        {name: value}, "remoteAddress"}``."""
        if not isinstance(data, dict):
            raise ExplainInputError("the body must be a JSON object")
        unknown = sorted(set(data) - {"method", "url", "headers", "cookies", "remoteAddress"})
        if unknown:
            raise ExplainInputError(
                f"unknown field(s) {', '.join(unknown)}; expected method, url, headers, "
                "cookies, remoteAddress"
            )
        method = data.get("method", "GET")
        url = data.get("url", "")
        remote = data.get("remoteAddress", "127.0.0.1")
        for key, value in (("method", method), ("url", url), ("remoteAddress", remote)):
            if not isinstance(value, str):
                raise ExplainInputError(f"{key} must be a string")
        return cls(
            method=method,
            url=url,
            headers=_pairs(data.get("headers"), "headers"),
            cookies=_pairs(data.get("cookies"), "cookies"),
            remote_address=remote,
        )


def _latin1(value: str, what: str) -> None:
    """HTTP/1.1 field values are bytes; the gateway reads them as ISO-8859-1."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ExplainInputError(
            f"{what} has a character outside ISO-8859-1 (send its UTF-8 bytes encoded)"
        ) from None


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` (curl's ``-H``)."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ExplainInputError(f"header {text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def parse_cookie(text: str, form: str = "'name=value'") -> tuple[str, str]:
    """``name=value`` (curl's ``-b``); ``form`` is how the refusal spells what was wanted."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise ExplainInputError(f"cookie {text!r} is not {form}")
    return name.strip(), value.strip()


def _one(query: Mapping[str, Sequence[str]], key: str, default: str) -> str:
    values = query.get(key, ())
    if len(values) > 1:
        raise ExplainInputError(f"{key} given {len(values)} times")
    return values[0] if values else default


def _pairs(value: object, what: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    items: Iterable[object]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = value
    else:
        raise ExplainInputError(f"{what} must be an object or a list of [name, value] pairs")
    pairs: list[tuple[str, str]] = []
    for item in items:
        if (
            not isinstance(item, list | tuple)
            or len(item) != 2
            or not all(isinstance(part, str) for part in item)
        ):
            raise ExplainInputError(f"each of {what} must be a name and a string value")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


class Explainer:
    """Explains requests against the live table (``table()`` is asked each time, so a reload
    is seen at once)."""

    def __init__(
        self,
        table: Callable[[], RouteTable],
        render_head: RenderHead,
        *,
        client_address: ClientAddress | None = None,
        trust_inbound_lane: bool = False,
        allow_encoded_slash: bool = False,
        scheme: str = "http",
        server: Callable[[], tuple[str, int]] = lambda: ("127.0.0.1", 8080),
    ) -> None:
        """``server``: the proxy port's address (asked per request: it is bound after this is
        made), the Host of a described request that names none."""
        self._table = table
        self._render_head = render_head
        self._client_address = client_address
        self._trust_lane = trust_inbound_lane
        self._allow_encoded_slash = allow_encoded_slash
        self._scheme = scheme
        self._server = server

    def explain(self, described: ExplainRequest) -> dict[str, Any]:
        """The explanation as the API answers it. Raises ``ExplainInputError`` for a request
        the proxy port would refuse at parse (with the engine's reason)."""
        exchange, notes = self._exchange(described)
        table = self._table()
        # The live lookup itself, Weight groups drawn from copies of their generators.
        exchange.weight_choices = WeightForecast(_weight_groups(table))
        try:
            matched = table.match(exchange)
        except Exception as exc:  # a plugin's predicate: the real request gets a 500
            matched = None
            failure: dict[str, Any] | None = {
                "filter": None,
                "status": 500,
                "reason": f"a predicate raised {type(exc).__name__}: {exc}",
            }
        else:
            failure = None
        captured = dict(exchange.uri_variables)
        out: dict[str, Any] = {
            "request": _request_view(exchange, described),
            "route": matched.id if matched is not None else None,
            "routes": self._verdicts(table, exchange, matched),
            "filters": [],
            "forwarded": None,
            "answeredBy": None,
            "lane": None,
            "instance": None,
            "destination": None,
            "notes": notes,
        }
        if matched is None:
            out["answeredBy"] = failure or {
                "filter": None,
                "status": 404,
                "reason": "no route matched",
            }
            return out
        exchange.uri_variables.clear()
        exchange.uri_variables.update(captured)
        exchange.route = matched
        out["destination"] = matched.uri.raw
        cors = matched.policy.cors
        if cors is not None:
            verdict = cors.check(exchange)
            if verdict is not None and verdict.status is not None:
                reason = verdict.reason or "a CORS preflight, answered by the gateway"
                out["answeredBy"] = {"filter": "CORS", "status": verdict.status, "reason": reason}
                return out
        answered, retarget = self._filters(matched, exchange, out)
        if answered:
            return out
        self._destination(matched, exchange, retarget, out)
        return out

    # -- the request ------------------------------------------------------------------------------
    def _exchange(self, described: ExplainRequest) -> tuple[Exchange, list[str]]:
        notes: list[str] = []
        fields = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in described.headers]
        if described.cookies:
            cookie = "; ".join(f"{n}={v}" for n, v in described.cookies)
            fields.append((b"Cookie", cookie.encode("latin-1")))
        head = RequestHead()
        target = described.url.encode("ascii")
        head.target = [target]
        head.target_len = len(target)
        head.fields = fields
        hosts = [v for n, v in fields if n.lower() == b"host"]
        if len(hosts) > 1:
            raise ExplainInputError("more than one Host header")
        if not hosts and not described.url.startswith("/"):
            # An absolute URL names the host; HTTP/1.1 still wants the field.
            authority = urlsplit(described.url).netloc.rpartition("@")[2]
            if authority:
                fields.append((b"Host", authority.encode("latin-1")))
                hosts = [fields[-1][1]]
        if not hosts and described.url.startswith("/"):
            # An origin-form URL without a Host header: HTTP/1.1 needs one.
            name, port = self._server()
            host = f"{name}:{port}".encode()
            fields.append((b"Host", host))
            hosts = [host]
            notes.append(f"no Host given: {host.decode()} (the gateway's own) assumed")
        head.host = hosts[0] if hosts else None
        try:
            exchange, _ = head.exchange(
                described.method.encode("latin-1"),
                b"1.1",
                (described.remote_address, 0),
                self._server(),
                self._scheme,
                lambda: "explain",
                self._allow_encoded_slash,
            )
        except GatewayError as exc:
            raise ExplainInputError(f"the proxy port would refuse this request: {exc}") from None
        if self._client_address is not None:
            exchange.resolved_client = self._client_address(exchange)
        return exchange, notes

    # -- verdicts ---------------------------------------------------------------------------------
    def _verdicts(
        self, table: RouteTable, exchange: Exchange, matched: Route | None
    ) -> list[dict[str, Any]]:
        """Every route in match order, every predicate asked (no short cut), so "why not the
        route I expected" has an answer for each of its predicates."""
        views: list[dict[str, Any]] = []
        after = False
        for route in table:
            exchange.uri_variables.clear()
            predicates = [
                {"predicate": predicate.describe(), **_verdict(predicate.explain, exchange)}
                for predicate in route.predicates
            ]
            views.append(
                {
                    "id": route.id,
                    "order": route.order,
                    "uri": route.uri.raw,
                    "matched": route is matched,
                    "evaluated": not after,
                    "predicates": predicates,
                }
            )
            after = after or route is matched
        exchange.uri_variables.clear()
        return views

    # -- filters ----------------------------------------------------------------------------------
    def _filters(
        self, route: Route, exchange: Exchange, out: dict[str, Any]
    ) -> tuple[bool, str | None]:
        """The route's filters in the order they run. True when one answers the request; the
        URL a SetRequestUri-like filter re-targets the request to, if any."""
        views: list[dict[str, Any]] = out["filters"]
        retarget: str | None = None
        for gateway_filter in route.chain_filters:
            view: dict[str, Any] = {
                "name": _name(gateway_filter),
                "description": gateway_filter.describe(),
                "kind": "wrapping" if isinstance(gateway_filter, WrappingFilter) else "sync",
                "effect": None,
            }
            views.append(view)
            if isinstance(gateway_filter, ChangeRequestUri):
                url = gateway_filter.request_url(exchange)
                if url is not None:
                    retarget = url.raw
                    view["effect"] = f"request URL -> {retarget}"
                continue
            if isinstance(gateway_filter, LaneStrict):
                view["effect"] = "a lane without instances is refused (503), not sent to stable"
                continue
            if isinstance(gateway_filter, WrappingFilter):
                view["effect"] = "runs around the call: not simulated (it would await)"
                continue
            if not isinstance(gateway_filter, SyncFilter):
                continue
            if not gateway_filter.has_pre:
                view["effect"] = "changes the response only" if gateway_filter.has_post else None
                continue
            before = _request_state(exchange)
            try:
                response = gateway_filter.preview(exchange)
            except NotPreviewed as said:
                view["effect"] = str(said)
                continue
            except GatewayError as exc:
                out["answeredBy"] = {
                    "filter": view["name"],
                    "status": exc.status,
                    "reason": str(exc),
                }
                return True, retarget
            except Exception as exc:  # a plugin's filter: the request would get a 500
                out["answeredBy"] = {
                    "filter": view["name"],
                    "status": 500,
                    "reason": f"raised {type(exc).__name__}: {exc}",
                }
                return True, retarget
            view["effect"] = _changes(before, _request_state(exchange))
            if response is not None:
                out["answeredBy"] = {
                    "filter": view["name"],
                    "status": response.status,
                    "reason": response.reason or f"answered {response.status} without forwarding",
                }
                return True, retarget
        return False, retarget

    # -- where it goes ----------------------------------------------------------------------------
    def _destination(
        self, route: Route, exchange: Exchange, retarget: str | None, out: dict[str, Any]
    ) -> None:
        notes: list[str] = out["notes"]
        lane = exchange.lane
        if lane is None and self._trust_lane:
            lane = exchange.lane = inbound_lane(exchange.request.headers.raw)
        out["lane"] = lane
        if retarget is not None:
            out["destination"] = retarget
            notes.append(f"re-targeted to {retarget}: the instance is picked when it is sent")
            return
        uri = route.uri
        send = route.send
        if uri.is_forward:
            notes.append(f"forwarded inside the gateway to {uri.path}: explain that path next")
            return
        if send is None:
            notes.append("nothing is sent (no://op): the route's filters answer, else an empty 200")
            out["answeredBy"] = {"filter": None, "status": 200, "reason": "no://op"}
            return
        key = send.hash_key(exchange) if send.hash_key is not None else None
        try:
            target = send.choose(key, lane)
        except CallError as exc:
            error = from_call_error(exc)
            out["answeredBy"] = {"filter": None, "status": error.status, "reason": str(exc)}
            return
        except GatewayError as exc:
            out["answeredBy"] = {"filter": None, "status": exc.status, "reason": str(exc)}
            return
        if send.balancer is not None:
            keyed = f", key {key!r}" if send.hash_key is not None else ""
            notes.append(f"balancer: {send.balancer}{keyed} (this worker's next pick)")
        if lane is not None and target.lane is not None and target.lane != lane:
            notes.append(f"lane {lane!r} has no instance: stable takes the request")
        out["lane"] = target.lane if target.lane is not None else lane
        out["instance"] = {
            "service": target.service,
            "instanceId": target.instance_id,
            "host": target.host,
            "port": target.port,
            "secure": target.secure,
            "lane": target.lane,
            "zone": getattr(target, "zone", None),
            "weight": getattr(target, "weight", None),
        }
        head = self._render_head(exchange, target).decode("latin-1")
        lines = head.split("\r\n")
        method, _, rest = lines[0].partition(" ")
        request_target = rest.rpartition(" ")[0]
        path, _, query = request_target.partition("?")
        fields: list[list[str]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields.append([name, value.strip()])
        out["forwarded"] = {"method": method, "path": path, "query": query, "headers": fields}


def _weight_groups(table: RouteTable) -> Iterable[WeightGroups]:
    for route in table:
        for predicate in route.predicates:
            if isinstance(predicate, WeightPredicate):
                yield predicate.weights


def _verdict(explain: Callable[[Exchange], Verdict], exchange: Exchange) -> dict[str, Any]:
    # A plugin's predicate may not expect a described request: its failure is its verdict.
    try:
        verdict = explain(exchange)
    except Exception as exc:  # one boundary per predicate: its failure is reported
        return {"matched": False, "reason": f"raised {type(exc).__name__}: {exc}"}
    return {"matched": verdict.matched, "reason": verdict.reason}


def _name(gateway_filter: GatewayFilter) -> str:
    return gateway_filter.name or type(gateway_filter).__name__


def _request_view(exchange: Exchange, described: ExplainRequest) -> dict[str, Any]:
    request = exchange.request
    return {
        "method": request.method,
        "url": described.url,
        "host": request.headers.get("host") or exchange.original_host,
        "path": request.path,
        "query": request.query,
        "remoteAddress": exchange.client_address,
        "headers": [[name, value] for name, value in request.headers],
    }


_State = tuple[str, str, str, tuple[tuple[str, str], ...], str | None]


def _request_state(exchange: Exchange) -> _State:
    request = exchange.request
    return (
        request.method,
        request.path,
        request.query,
        tuple(request.headers),
        exchange.lane,
    )


def _changes(before: _State, after: _State) -> str | None:
    """What a filter changed, in words: ``path /a/b -> /b; header X-Red added``."""
    said: list[str] = []
    if before[0] != after[0]:
        said.append(f"method {before[0]} -> {after[0]}")
    if before[1] != after[1]:
        said.append(f"path {before[1]} -> {after[1]}")
    if before[2] != after[2]:
        said.append(f"query {before[2] or '(none)'} -> {after[2] or '(none)'}")
    if before[3] != after[3]:
        old = _by_name(before[3])
        new = _by_name(after[3])
        spelled = {name.lower(): name for name, _ in (*after[3], *before[3])}
        for key in sorted(new.keys() - old.keys()):
            said.append(f"header {spelled[key]}: {', '.join(new[key])} added")
        for key in sorted(old.keys() - new.keys()):
            said.append(f"header {spelled[key]} removed")
        for key in sorted(old.keys() & new.keys()):
            if old[key] != new[key]:
                was, now = ", ".join(old[key]), ", ".join(new[key])
                said.append(f"header {spelled[key]}: {was} -> {now}")
    if before[4] != after[4]:
        said.append(f"lane -> {after[4]}")
    return "; ".join(said) if said else "no change to this request"


def _by_name(fields: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in fields:
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def explain_text(explained: Mapping[str, Any]) -> str:
    """The explanation for a terminal (``meshgate explain``)."""
    request = explained["request"]
    lines = [
        f"{request['method']} {request['path']}"
        + (f"?{request['query']}" if request["query"] else "")
        + f"  (host {request['host']}, client {request['remoteAddress']})",
        "",
        "routes, in match order:",
    ]
    for route in explained["routes"]:
        mark = "=>" if route["matched"] else "  "
        tail = "" if route["evaluated"] else "  (after the match: not reached)"
        lines.append(f"{mark} {route['id']}  {route['uri']}{tail}")
        for verdict in route["predicates"]:
            answer = "yes" if verdict["matched"] else "no "
            lines.append(f"     {answer}  {verdict['predicate']}")
            lines.append(f"          {verdict['reason']}")
    lines.append("")
    lines.append(f"route: {explained['route'] or '(none)'}")
    if explained["filters"]:
        lines.append("filters, in the order they run:")
        for each in explained["filters"]:
            effect = f": {each['effect']}" if each["effect"] else ""
            lines.append(f"  {each['name']}{effect}")
    answered = explained["answeredBy"]
    if answered is not None:
        who = answered["filter"] or "the gateway"
        lines.append(f"answered by {who}: {answered['status']} ({answered['reason']})")
    if explained["lane"] is not None:
        lines.append(f"lane: {explained['lane']}")
    instance = explained["instance"]
    if instance is not None:
        name = instance["instanceId"] or "fixed address"
        lines.append(f"instance: {name} {instance['host']}:{instance['port']}")
    forwarded = explained["forwarded"]
    if forwarded is not None:
        target = forwarded["path"] + (f"?{forwarded['query']}" if forwarded["query"] else "")
        lines.append("forwarded:")
        lines.append(f"  {forwarded['method']} {target} HTTP/1.1")
        lines.extend(f"  {name}: {value}" for name, value in forwarded["headers"])
    for note in explained["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)
