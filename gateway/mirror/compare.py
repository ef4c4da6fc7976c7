"""One shadow comparison: the primary's answer against the shadow's, as Diffy compares them.

What is compared, in this order (all of it; the report names every part that differed):
- the status;
- the header fields, by name (case-insensitive), each name's values in order — except
  ``DEFAULT_IGNORED`` (hop-by-hop and framing fields, which describe one connection, and the
  fields that differ on every response: ``Date``, ``Age``, ``Expires``, ``X-Request-Id``,
  ``Server-Timing``) and the route's ``ignore-headers``;
- the body: when both Content-Types are JSON (``application/json`` or ``*/*+json``) and both
  bodies parse, JSON-equal (member order does not matter, numbers compare by value, ``true`` is
  not ``1``) after the route's ``ignore-json-paths`` are left out, the first differing place
  reported as a JSON path; otherwise byte-equal, the first differing byte offset reported.

Compressed bodies are compared as they came (bytes), not decoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.mirror.jsonpath import JsonPath, Step, format_path

# Fields that never tell two versions of a service apart: hop-by-hop and framing (they
# describe a connection), and per-response stamps.
DEFAULT_IGNORED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"date",
        b"age",
        b"expires",
        b"x-request-id",
        b"server-timing",
    }
)
_BLOCK = 4096


class NotComparable(Enum):
    """Why a mirrored request's two answers could not be compared."""

    PRIMARY_FAILED = "the primary failed"
    PRIMARY_TOO_LARGE = "the primary's body is over GATEWAY_MIRROR_MAX_BODY"
    PRIMARY_INCOMPLETE = "the primary's body did not complete within GATEWAY_MIRROR_TIMEOUT"
    SHADOW_FAILED = "the shadow failed"
    SHADOW_TIMEOUT = "the shadow did not answer within GATEWAY_MIRROR_TIMEOUT"
    SHADOW_TOO_LARGE = "the shadow's body is over GATEWAY_MIRROR_MAX_BODY"

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class CompareSpec:
    """A route's comparison settings: the header names (lower case, besides
    ``DEFAULT_IGNORED``) and JSON paths left out."""

    ignore_headers: frozenset[bytes] = frozenset()
    ignore_paths: tuple[JsonPath, ...] = ()

    @property
    def ignored_headers(self) -> frozenset[bytes]:
        return DEFAULT_IGNORED | self.ignore_headers


@dataclass(frozen=True, slots=True)
class Answer:
    """One side's complete response: status, header fields as received, whole body."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Difference:
    """What differed between the two answers; ``equal`` when nothing did."""

    status: tuple[int, int] | None = None  # (primary, shadow)
    headers: tuple[str, ...] = ()  # lower-case names
    json_path: str | None = None
    byte_offset: int | None = None

    @property
    def equal(self) -> bool:
        return (
            self.status is None
            and not self.headers
            and self.json_path is None
            and self.byte_offset is None
        )


def compare(spec: CompareSpec, primary: Answer, shadow: Answer) -> Difference:
    status = (primary.status, shadow.status) if primary.status != shadow.status else None
    ignored = spec.ignored_headers
    ours = _fields(primary.headers, ignored)
    theirs = _fields(shadow.headers, ignored)
    headers = tuple(
        sorted(
            name.decode("latin-1")
            for name in ours.keys() | theirs.keys()
            if ours.get(name) != theirs.get(name)
        )
    )
    json_path: str | None = None
    byte_offset: int | None = None
    documents = _json_pair(primary, shadow)
    if documents is not None:
        try:
            found = first_json_difference(documents[0], documents[1], spec.ignore_paths)
        except RecursionError:  # nested deeper than we walk: compare the bytes instead
            documents = None
        else:
            json_path = format_path(found) if found is not None else None
    if documents is None:
        byte_offset = first_byte_difference(primary.body, shadow.body)
    return Difference(status, headers, json_path, byte_offset)


def _fields(
    raw: Sequence[tuple[bytes, bytes]], ignored: frozenset[bytes]
) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for name, value in raw:
        lname = name.lower()
        if lname not in ignored:
            out.setdefault(lname, []).append(value)
    return out


def is_json(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _json_pair(primary: Answer, shadow: Answer) -> tuple[Any, Any] | None:
    if not (is_json(primary.headers) and is_json(shadow.headers)):
        return None
    try:
        return json.loads(primary.body), json.loads(shadow.body)
    except (ValueError, RecursionError):  # not JSON after all (or absurdly nested): bytes
        return None


def first_json_difference(
    primary: Any, shadow: Any, ignore: Sequence[JsonPath] = ()
) -> list[Step] | None:
    """The first place (in the primary's member order, then the shadow's extra members)
    where two JSON documents differ, outside the ``ignore`` paths; None when JSON-equal."""
    return _walk(primary, shadow, [], tuple(ignore))


def _walk(a: Any, b: Any, path: list[Step], alive: tuple[JsonPath, ...]) -> list[Step] | None:
    """``alive``: the ignore paths whose steps so far all match ``path`` (and go deeper)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key, value in a.items():
            found = _child(value, b, key, path, alive)
            if found is not None:
                return found
        for key in b:
            if key not in a and not _ignored(alive, len(path), key)[0]:
                return [*path, key]
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index in range(max(len(a), len(b))):
            if index >= len(a) or index >= len(b):
                if not _ignored(alive, len(path), index)[0]:
                    return [*path, index]
                continue
            found = _child(a[index], b, index, path, alive)
            if found is not None:
                return found
        return None
    return None if _same_scalar(a, b) else list(path)


def _child(
    value: Any, other: Any, step: Step, path: list[Step], alive: tuple[JsonPath, ...]
) -> list[Step] | None:
    ignored, deeper = _ignored(alive, len(path), step)
    if ignored:
        return None
    if isinstance(step, str):
        assert isinstance(other, Mapping)
        if step not in other:
            return [*path, step]
        counterpart = other[step]
    else:
        counterpart = other[step]
    path.append(step)
    try:
        return _walk(value, counterpart, path, deeper)
    finally:
        path.pop()


def _ignored(
    alive: tuple[JsonPath, ...], depth: int, step: Step
) -> tuple[bool, tuple[JsonPath, ...]]:
    """Whether the child ``step`` at ``depth`` is ignored, and the paths still alive below it."""
    if not alive:
        return False, alive
    matching = tuple(p for p in alive if p.step_matches(depth, step))
    if any(len(p) == depth + 1 for p in matching):
        return True, ()
    return False, matching


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def first_byte_difference(a: bytes, b: bytes) -> int | None:
    """The offset of the first byte that differs (the shorter one's length when it is a prefix
    of the other); None when equal."""
    if a == b:
        return None
    shortest = min(len(a), len(b))
    start = 0
    while start < shortest:
        end = min(start + _BLOCK, shortest)
        if a[start:end] != b[start:end]:
            for offset in range(start, end):
                if a[offset] != b[offset]:
                    return offset
        start = end
    return shortest
