from __future__ import annotations

from gateway.predicates.catalog import builtin_predicates


def test_all_scg_names() -> None:
    factories = builtin_predicates()
    assert sorted(factories) == [
        "After",
        "Before",
        "Between",
        "Cookie",
        "Header",
        "Host",
        "Method",
        "Path",
        "Query",
        "RemoteAddr",
        "Weight",
        "XForwardedRemoteAddr",
    ]
    assert all(name == factory.name for name, factory in factories.items())


def test_a_new_dict_each_time() -> None:
    first = builtin_predicates()
    first.clear()
    assert builtin_predicates()
