"""SCG 5.0.4 factories meshgate does not have, each with the reason.

A Spring user's ``application.yml`` that names one of these must fail loudly and say why, never
with "unknown filter, did you mean ...": the name is right, meshgate just will not (or not yet)
do what it asks. The tables are consulted only for a name no registered factory has, so a
plugin (or a later built-in) of the same name simply takes over.
"""

from __future__ import annotations

from collections.abc import Mapping

_JAVA_ONLY = (
    "its {what} is a Java object ({type}) that only SCG's Java route configuration "
    "(RouteLocatorBuilder) can set; a YAML route can't name one"
)

REFUSED_PREDICATES: Mapping[str, str] = {
    "CloudFoundryRouteService": (
        "meshgate does not act as a Cloud Foundry route service (that means forwarding every "
        "request to its X-CF-Forwarded-Url); to match only, use Header predicates for "
        "X-CF-Forwarded-Url, X-CF-Proxy-Signature and X-CF-Proxy-Metadata"
    ),
    "ReadBody": _JAVA_ONLY.format(what="test", type="a Predicate class over the body"),
    "Version": (
        "meshgate has no API versioning (SCG's needs Spring Framework 7's ApiVersionStrategy, "
        "spring.webflux.apiversion.*); match the version with a Header, Query or Path "
        "predicate instead"
    ),
}

REFUSED_FILTERS: Mapping[str, str] = {
    "JsonToGrpc": (
        "meshgate does not speak gRPC to upstreams (the filter needs the service's protobuf "
        "descriptor and an HTTP/2 gRPC client)"
    ),
    "ModifyRequestBody": _JAVA_ONLY.format(what="rewrite function", type="a RewriteFunction"),
    "ModifyResponseBody": _JAVA_ONLY.format(what="rewrite function", type="a RewriteFunction"),
    "SaveSession": (
        "meshgate has no WebSession (Spring Session) to save before forwarding; sessions stay "
        "with the services behind it"
    ),
    "TokenRelay": (
        "meshgate has no OAuth2 client (Spring Security's authorized clients) to take an access "
        "token from; a client's own Authorization header is forwarded unchanged"
    ),
}


def refusal(kind: str, name: str) -> str | None:
    """``"SaveSession is not supported: meshgate has no WebSession ..."`` for a refused SCG
    factory of ``kind`` ("predicate" or "filter"), or None when SCG has no such factory
    either."""
    table = REFUSED_PREDICATES if kind == "predicate" else REFUSED_FILTERS
    reason = table.get(name)
    return f"{name} is not supported: {reason}" if reason is not None else None
