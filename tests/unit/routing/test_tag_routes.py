"""fabio's urlprefix- tags → route definitions."""

from __future__ import annotations

from gateway.routing.tag_routes import tag_routes


def test_path_host_and_strip() -> None:
    found = tag_routes(
        {
            "orders": ("urlprefix-/orders", "other-tag"),
            "web": ("urlprefix-api.example.com/shop strip=/shop",),
        }
    )
    by_service = {d.uri: d for d in found.definitions}
    orders = by_service["lb://orders"]
    assert orders.predicates[0].args == {"patterns": ["/orders", "/orders/**"]}
    assert orders.filters == ()
    web = by_service["lb://web"]
    assert web.predicates[1].name == "Host"
    assert web.predicates[1].args == {"patterns": ["api.example.com"]}
    assert web.filters[0].name == "RewritePath"
    assert found.warnings == ()


def test_longer_prefixes_sort_first_and_after_ordinary_routes() -> None:
    found = tag_routes(
        {"a": ("urlprefix-/",), "b": ("urlprefix-/api/v2",), "c": ("urlprefix-/api",)}
    )
    ordered = sorted(found.definitions, key=lambda d: d.order)
    assert [d.uri for d in ordered] == ["lb://b", "lb://c", "lb://a"]
    assert all(d.order > 100_000 for d in ordered)
    root = next(d for d in found.definitions if d.uri == "lb://a")
    assert root.predicates[0].args == {"patterns": ["/**"]}


def test_bad_tags_and_options_are_reported_not_routed() -> None:
    found = tag_routes(
        {
            "a": ("urlprefix-nopath", "urlprefix-/x/{y}", "urlprefix-/ok proto=https"),
            "b": ("urlprefix-/ok",),
        }
    )
    assert [d.uri for d in found.definitions] == ["lb://a"]
    text = "\n".join(found.warnings)
    assert "expected [host]/path" in text
    assert "not a plain path prefix" in text
    assert "proto=https" in text
    assert "already routed to 'a'" in text


def test_a_bare_prefix_tag_is_reported_not_fatal() -> None:
    found = tag_routes({"a": ("urlprefix-", "urlprefix-   "), "b": ("urlprefix-/b",)})
    assert [d.uri for d in found.definitions] == ["lb://b"]
    assert len(found.warnings) == 2
