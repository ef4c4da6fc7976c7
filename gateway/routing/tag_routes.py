"""Routes declared by services themselves, in fabio's tag convention:

    urlprefix-/orders                       → Path=/orders,/orders/**   uri lb://<service>
    urlprefix-api.example.com/orders        → the same plus Host=api.example.com
    urlprefix-/orders strip=/orders         → ... plus RewritePath (prefix removed)

A service may carry several such tags. Tag routes come after the routes of the file, KV and
actuator (an operator's route wins over a service's claim), longer prefixes first. Unlike
fabio's plain string prefix, ``/orders`` does not match ``/ordersX``: prefixes are whole path
segments. Options other than ``strip=`` are ignored with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config.schema import FilterDefinition, PredicateDefinition, RouteDefinition

TAG_PREFIX = "urlprefix-"
ROUTE_ID_PREFIX = "urlprefix:"
# After every route an operator is likely to write; longer prefixes sort first among these.
_BASE_ORDER = 1_000_000


@dataclass(frozen=True, slots=True)
class TagRoutes:
    definitions: tuple[RouteDefinition, ...]
    warnings: tuple[str, ...]


def tag_routes(catalog: Mapping[str, tuple[str, ...]]) -> TagRoutes:
    definitions: list[RouteDefinition] = []
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for service in sorted(catalog):
        for tag in catalog[service]:
            if not tag.startswith(TAG_PREFIX):
                continue
            definition, problems = _definition(service, tag)
            warnings.extend(f"service {service!r} tag {tag!r}: {p}" for p in problems)
            if definition is None:
                continue
            claimed = seen.get(definition.id.split(":", 2)[2])
            if claimed is not None:
                warnings.append(
                    f"service {service!r} tag {tag!r}: prefix already routed to {claimed!r}"
                )
                continue
            seen[definition.id.split(":", 2)[2]] = service
            definitions.append(definition)
    return TagRoutes(tuple(definitions), tuple(warnings))


def _definition(service: str, tag: str) -> tuple[RouteDefinition | None, list[str]]:
    problems: list[str] = []
    words = tag[len(TAG_PREFIX) :].split()
    if not words:
        return None, ["expected [host]/path after urlprefix-"]
    spec, *options = words
    slash = spec.find("/")
    if slash < 0:
        return None, ["expected [host]/path after urlprefix-"]
    host, path = spec[:slash], spec[slash:]
    if any(c in path for c in "*{}?#") or "//" in path:
        return None, [f"{path!r} is not a plain path prefix"]
    prefix = path.rstrip("/") or "/"
    patterns = ["/**"] if prefix == "/" else [prefix, prefix + "/**"]
    predicates = [PredicateDefinition("Path", {"patterns": patterns})]
    if host:
        if not re.fullmatch(r"[A-Za-z0-9*][A-Za-z0-9.*-]*(:\d+)?", host):
            return None, [f"{host!r} is not a host name"]
        predicates.append(PredicateDefinition("Host", {"patterns": [host]}))
    filters: list[FilterDefinition] = []
    for option in options:
        name, _, value = option.partition("=")
        if name == "strip" and value.startswith("/"):
            strip = value.rstrip("/")
            filters.append(
                FilterDefinition(
                    "RewritePath",
                    {
                        "regexp": f"^{re.escape(strip)}/?(?<remaining>.*)",
                        "replacement": "/${remaining}",
                    },
                )
            )
        else:
            problems.append(f"option {option!r} is not supported (only strip=/prefix); ignored")
    definition = RouteDefinition(
        id=f"{ROUTE_ID_PREFIX}{service}:{host}{prefix}",
        uri=f"lb://{service}",
        predicates=tuple(predicates),
        filters=tuple(filters),
        order=_BASE_ORDER - len(host) - len(prefix),
        metadata={"source": "consul-tags", "tag": tag},
    )
    return definition, problems
