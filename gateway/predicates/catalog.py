"""The built-in route predicates, by SCG name."""

from __future__ import annotations

from gateway.extension import PredicateFactory
from gateway.predicates import (
    cookie,
    datetime,
    header,
    host,
    method,
    path,
    query,
    remote_addr,
    weight,
    xforwarded_remote_addr,
)


def builtin_predicates() -> dict[str, PredicateFactory]:
    """A new dict on every call, so a caller may add or replace entries freely."""
    factories = (
        *datetime.FACTORIES,
        cookie.FACTORY,
        header.FACTORY,
        host.FACTORY,
        method.FACTORY,
        path.FACTORY,
        query.FACTORY,
        remote_addr.FACTORY,
        weight.FACTORY,
        xforwarded_remote_addr.FACTORY,
    )
    return {factory.name: factory for factory in factories}
