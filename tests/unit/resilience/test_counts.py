"""A count reads the same in route metadata and in the mesh client's ``services:`` policies:
what one takes, the other takes, and what one refuses, the other refuses."""

from __future__ import annotations

import pytest

from discovery.mesh.policy import ServicePolicy
from discovery.mesh.policy_file import read_policies
from gateway.errors import ConfigError
from gateway.routing.metadata import route_policy
from resilience.counts import positive_int

INSTANCES = [{"host": "127.0.0.1", "port": 1}]


@pytest.mark.parametrize(("value", "expected"), [(10, 10), ("10", 10), (" 3 ", 3), (1, 1)])
def test_a_count_plain_or_quoted_reads_alike_on_both_sides(value: object, expected: int) -> None:
    assert positive_int(value) == expected
    policy = route_policy({"max-concurrent": value, "max-concurrent-per-instance": value})
    assert (policy.max_concurrent, policy.max_per_instance) == (expected, expected)
    entry = {"instances": INSTANCES, "max-concurrent": value, "max-concurrent-per-instance": value}
    client = read_policies({"a": entry}, ServicePolicy())["a"]
    assert (client.max_concurrent, client.max_per_instance) == (expected, expected)


@pytest.mark.parametrize("value", [0, -2, "0", "ten", 2.5, "2.5", True, False, None, [1]])
def test_what_is_no_count_is_refused_on_both_sides(value: object) -> None:
    assert positive_int(value) is None
    if value is not None:  # absent metadata is no cap, not an error
        with pytest.raises(ConfigError, match="max-concurrent: expected a positive integer"):
            route_policy({"max-concurrent": value})
    refused = r"services\.a\.max-concurrent: expected a positive integer"
    with pytest.raises(ValueError, match=refused):
        read_policies({"a": {"instances": INSTANCES, "max-concurrent": value}}, ServicePolicy())
