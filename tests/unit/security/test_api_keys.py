"""API key sets: the ``name:sha256-hex`` format, the match, errors naming file and line, and the
live Consul set's updates (last-known-good, deletion revokes all)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.security.api_keys import (
    ApiKeySet,
    FixedKeys,
    WithoutConsul,
    parse_api_keys,
    read_api_keys,
)
from gateway.security.consul_keys import ConsulKeySets, LiveKeySet


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_key_matches_its_name_and_nothing_else_matches() -> None:
    text = f"""
# billing's keys: the old one and its replacement, both valid while it rotates
billing:{sha("old-secret")}
billing:{sha("new-secret")}

reports:{sha("r-secret").upper()}
"""
    keys = parse_api_keys(text, "keys.txt")
    assert len(keys) == 3
    assert keys.match(b"old-secret") == "billing"
    assert keys.match(b"new-secret") == "billing"
    assert keys.match(b"r-secret") == "reports"  # hex in either case
    assert keys.match(b"") is None
    assert keys.match(b"old-secre") is None
    assert keys.match(sha("old-secret").encode()) is None  # the digest itself is not a key


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no-colon-here", "expected name:sha256-hex-of-key"),
        (f":{sha('k')}", "expected name:sha256-hex-of-key"),
        (f"two words:{sha('k')}", "must be visible characters"),
        ("billing:secret", "64 hex digits"),
        (f"billing:{sha('k')[:-1]}", "64 hex digits"),
        (f"billing:{sha('k')}:extra", "64 hex digits"),
    ],
)
def test_a_malformed_line_is_an_error_naming_file_and_line(line: str, reason: str) -> None:
    text = f"# keys\nok:{sha('fine')}\n{line}\n"
    with pytest.raises(ConfigError) as caught:
        parse_api_keys(text, "/etc/keys.txt")
    assert caught.value.location == "/etc/keys.txt:3"
    assert reason in caught.value.reason
    assert str(caught.value).startswith("/etc/keys.txt:3: ")


def test_one_key_under_two_names_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_api_keys(f"a:{sha('k')}\nb:{sha('k')}\n", "keys.txt")
    assert caught.value.location == "keys.txt:2"
    assert "the same key as line 1 (a)" in caught.value.reason


def test_reading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"ops:{sha('k')}\n")
    assert read_api_keys(path).match(b"k") == "ops"
    assert FixedKeys(read_api_keys(path)).current is not None
    with pytest.raises(ConfigError, match="cannot read it"):
        read_api_keys(tmp_path / "missing.txt")
    path.write_bytes(b"ops:\xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_api_keys(path)


def test_without_consul_a_consul_key_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="with static discovery use keys-file"):
        WithoutConsul().live("meshgate/api-keys")


def test_a_live_set_applies_documents_and_keeps_the_last_good_one() -> None:
    live = LiveKeySet("meshgate/api-keys")
    assert live.current is None  # not read yet
    live.apply(f"billing:{sha('k1')}\n".encode())
    assert live.current is not None and live.current.match(b"k1") == "billing"
    live.apply(b"billing:not-a-digest\n")  # refused: the previous set stays
    assert live.current.match(b"k1") == "billing"
    assert live.error is not None and "consul:meshgate/api-keys:1" in live.error
    live.apply(b"\xff\xfe")
    assert live.current.match(b"k1") == "billing"
    assert live.error is not None and "not UTF-8" in live.error
    live.apply(f"billing:{sha('k1')}\nreports:{sha('k2')}\n".encode())
    assert live.current.match(b"k2") == "reports"
    assert live.error is None
    live.apply(None)  # the key was deleted: nobody passes
    assert live.current == ApiKeySet({}, "consul:meshgate/api-keys")
    assert live.current.match(b"k1") is None


def test_a_refused_first_document_leaves_the_set_unread() -> None:
    live = LiveKeySet("k")
    live.apply(b"garbage")
    assert live.current is None


async def test_key_sets_are_shared_per_key_and_forgotten_when_no_route_uses_them() -> None:
    sets = ConsulKeySets()
    first = sets.live("a")
    assert sets.live("a") is first
    second = sets.live("b")
    assert not sets.loaded
    first.apply(None)
    second.apply(b"")
    assert sets.loaded
    sets.retain({"b"})
    assert set(sets.sets()) == {"b"}
    assert sets.live("a") is not first  # asked again: a new set, read afresh
    await sets.stop()
