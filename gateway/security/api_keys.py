"""API keys: a key set written as ``name:sha256-hex-of-key`` lines, and the match of a presented
key against it.

The format, one entry a line (blank lines and ``#`` comments allowed)::

    # name:sha256(key) — the key itself is never stored
    billing:09d67d15237fa3a1c6a705baabb7ed9091e475ba932363ce026d23eaf1dc3aad
    reports:3f35ca602b6cb3857bf7ceeb60f061d3000814ba584b4f79dac6ed61c465cb87

The name is the request's principal when its key matches. Several keys may share a name (a
rotation: old and new key both valid for a while); one key under two names is an error, as the
principal would be ambiguous. A file that is not in this format is a config error naming the
file and the line.

Why the match does not leak the secret through its timing. What an attacker wants is the key;
what the gateway holds is only SHA-256 of each key. A presented key is hashed (its cost depends
on the presented key's length, the attacker's own input) and the digest looked up in a dict.
The lookup's time can depend on how the presented *digest* relates to the stored ones (hash
buckets, a byte compare on a bucket hit) — but a digest is not something an attacker can steer
byte by byte: changing any byte of a guess changes every byte of its digest, so learning that
sha256(guess) shares bytes with a stored digest says nothing about which key to try next
(that would take a SHA-256 preimage). An early-exit ``==`` on the raw key, by contrast, would
reveal the key's prefix one byte at a time; that comparison never happens here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway.errors import ConfigError
from gateway.security.files import entries, read_text_file

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
# A principal goes into logs and rate-limit keys: visible characters, no separator.
_NAME = re.compile(r"[^\s:\x00-\x1f\x7f]+")
FORMAT = "name:sha256-hex-of-key"


@dataclass(frozen=True, slots=True)
class ApiKeySet:
    """The keys of one source, by the SHA-256 digest of each key."""

    by_digest: Mapping[bytes, str] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.by_digest)

    def match(self, presented: bytes) -> str | None:
        """The name of the presented key, or None. See the module's note on timing."""
        return self.by_digest.get(hashlib.sha256(presented).digest())


def parse_api_keys(text: str, source: str) -> ApiKeySet:
    """``text`` in the key-set format; ``source`` names it in errors (``source:line``).
    Raises ConfigError at the first malformed line."""
    by_digest: dict[bytes, str] = {}
    lines: dict[bytes, int] = {}
    for number, where, entry in entries(text, source):
        name, colon, digest_hex = entry.partition(":")
        name = name.strip()
        digest_hex = digest_hex.strip()
        if not colon or not name:
            raise ConfigError(f"expected {FORMAT}", where)
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"the name {name!r} must be visible characters without spaces or ':'", where
            )
        if not _HEX_DIGEST.fullmatch(digest_hex):
            raise ConfigError(
                f"{name}: expected the key's SHA-256 as 64 hex digits after the ':' "
                "(the file stores sha256(key), never the key itself)",
                where,
            )
        digest = bytes.fromhex(digest_hex)
        if digest in by_digest:
            raise ConfigError(
                f"{name}: the same key as line {lines[digest]} ({by_digest[digest]}); "
                "a key has one name",
                where,
            )
        by_digest[digest] = name
        lines[digest] = number
    return ApiKeySet(by_digest, source)


def read_api_keys(path: str | Path) -> ApiKeySet:
    """A keys file, read now (a route's build reads it, so a reload re-reads it)."""
    return parse_api_keys(read_text_file(path), str(path))


class KeySetView(Protocol):
    """A route's keys as they are now: a file's, fixed at build, or a Consul key's, replaced
    whenever the key changes."""

    @property
    def current(self) -> ApiKeySet | None:
        """None: not loaded yet (a Consul key before its first read)."""
        ...


@dataclass(frozen=True, slots=True)
class FixedKeys:
    """A keys file's set: read when the route is built, so a reload (SIGHUP) re-reads it."""

    keys: ApiKeySet

    @property
    def current(self) -> ApiKeySet | None:
        return self.keys


class ApiKeySources(Protocol):
    """Key sets kept in Consul KV, watched for as long as a route uses them."""

    def live(self, key: str) -> KeySetView:
        """The set under the Consul KV key ``key``, kept current. Raises ValueError with the
        reason when there is no Consul to read it from."""
        ...


class WithoutConsul:
    """What a gateway without Consul discovery has: no KV to keep key sets in."""

    def live(self, key: str) -> KeySetView:
        raise ValueError(
            "a consul-key needs Consul discovery (GATEWAY_DISCOVERY=consul, or CONSUL_HTTP_ADDR "
            "set); with static discovery use keys-file"
        )
