"""Strict HTTP/1.1 message framing rules for the front door.

The gateway is where request smuggling happens if two parsers disagree, so everything that the
RFCs call ambiguous is refused here with 400 rather than "fixed up": Content-Length together with
Transfer-Encoding, repeated or malformed Content-Length, any Transfer-Encoding other than exactly
``chunked``, control characters in field values, and paths that could be read two ways.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from http import HTTPStatus

from gateway.errors import BadRequest

# RFC 9110 §7.6.1 plus the de-facto ones proxies must not forward.
HOP_BY_HOP = frozenset(
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
    }
)


def connection_tokens(value: bytes) -> set[bytes]:
    """The lower-cased field names a ``Connection`` header lists (they are hop-by-hop too)."""
    return {token.strip().lower() for token in value.split(b",")}


_NOTHING: frozenset[bytes] = frozenset()


def end_to_end(
    raw: list[tuple[bytes, bytes]],
    *,
    keep: frozenset[bytes] = _NOTHING,
    drop: frozenset[bytes] = _NOTHING,
) -> tuple[list[tuple[bytes, bytes]], int | None, bool]:
    """The hop-by-hop rule (RFC 9110 §7.6.1), written once: the fields of a head that may be
    passed on — neither in ``HOP_BY_HOP`` nor named in a ``Connection`` field — and, from the
    same pass, its Content-Length and whether it had a Transfer-Encoding.

    ``keep`` exempts hop-by-hop names from the rule (a 101 passes ``Upgrade`` and
    ``Connection`` on); ``drop`` removes end-to-end fields the caller writes itself. It is one
    pass on purpose: this runs on every proxied response head.
    """
    kept: list[tuple[bytes, bytes]] = []
    named: set[bytes] | None = None
    length: int | None = None
    chunked = False
    for item in raw:
        lname = item[0].lower()
        if lname in HOP_BY_HOP:
            if lname == b"transfer-encoding":
                chunked = True
            elif lname == b"connection":
                tokens = connection_tokens(item[1])
                named = tokens if named is None else named | tokens
            if lname not in keep:
                continue
        elif lname in drop:
            continue
        elif lname == b"content-length" and length is None:
            # A malformed one is refused by llhttp before we get here; keep the field either way.
            with contextlib.suppress(ValueError):
                length = int(item[1])
        kept.append(item)
    if named:
        named -= keep
        if named:
            kept = [item for item in kept if item[0].lower() not in named]
    return kept, length, chunked


def strip_hop_by_hop(
    raw: list[tuple[bytes, bytes]], keep: frozenset[bytes] = _NOTHING
) -> list[tuple[bytes, bytes]]:
    """``raw`` without its hop-by-hop fields (``end_to_end`` when only the fields matter)."""
    return end_to_end(raw, keep=keep)[0]


_DIGITS = re.compile(rb"^[0-9]{1,18}$")
# Encoded forms that would change the path's structure if an upstream decoded them.
_ENCODED_SEPARATORS = re.compile(r"%(?:2[fF]|5[cC])")


@dataclass(frozen=True, slots=True)
class Framing:
    """How a request body is delimited: ``length`` bytes, chunked, or no body."""

    content_length: int | None
    chunked: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


NO_BODY = Framing(None, False)


def request_framing(headers: list[tuple[bytes, bytes]]) -> Framing:
    """Validate the framing headers of a request and say how its body is delimited."""
    lengths: list[bytes] = []
    encodings: list[bytes] = []
    # Header-name tokens and control characters in values (NUL, CR, LF, DEL...) are refused by
    # llhttp itself in strict mode (tests/unit/engine/test_framing.py holds it to that), so only
    # the framing fields are looked at here.
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            lengths.append(value.strip())
        elif lname == b"transfer-encoding":
            encodings.append(value.strip())
    if lengths and encodings:
        raise BadRequest("both Content-Length and Transfer-Encoding present")
    if encodings:
        if len(encodings) != 1 or encodings[0].lower() != b"chunked":
            raise BadRequest("unsupported Transfer-Encoding (only 'chunked' is accepted)")
        return Framing(None, True)
    if lengths:
        if len(lengths) != 1 or not _DIGITS.match(lengths[0]):
            raise BadRequest("invalid or repeated Content-Length")
        return Framing(int(lengths[0]), False)
    return NO_BODY


def normalize_path(raw_path: str, allow_encoded: bool = False) -> str:
    """Remove dot-segments (RFC 3986 §5.2.4) and merge empty segments the way Spring does not:
    empty segments are kept (``/a//b`` stays), only ``.`` and ``..`` are resolved.

    Refuses what an upstream could read as another path than the one routed on: raw
    backslashes; ``%2F`` and ``%5C`` (a decoding upstream splits there); encoded dot-segments
    (``%2e%2e``, ``.%2E``, ``%2e``: one that decodes ``%2E`` to ``.`` climbs a level); and
    dot-segments with path parameters (``..;x``, which Tomcat resolves as ``..``).

    ``allow_encoded`` (``GATEWAY_ALLOW_ENCODED_SLASH``) lets ``%2F`` and ``%5C`` through as
    data, and resolves an encoded dot-segment like a plain one (``%2E`` is ``.``, RFC 3986
    §6.2.2.2), so route predicates and the upstream still see the same path. A segment that
    holds a dot-segment once its ``%2F``/``%5C`` are decoded (``..%2Fadmin``) stays refused.
    """
    if not raw_path.startswith("/"):
        raise BadRequest("request target must be an absolute path")
    if "\\" in raw_path:
        raise BadRequest("encoded or backslash path separators are not allowed")
    if "%" in raw_path:
        if _ENCODED_SEPARATORS.search(raw_path):
            if not allow_encoded:
                raise BadRequest("encoded or backslash path separators are not allowed")
            _refuse_hidden_dot_segments(raw_path)
    elif "/." not in raw_path:
        return raw_path  # nearly every path: nothing encoded, no dot-segment
    out: list[str] = []
    segments = raw_path.split("/")[1:]
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        dots = _dot_segment(seg, allow_encoded) if seg[:1] in (".", "%") else None
        if dots is None:
            out.append(seg)
            continue
        if dots == ".." and out:
            out.pop()
        if i == last:
            out.append("")  # "/a/b/.." is "/a/", a directory
    return "/" + "/".join(out)


def _refuse_hidden_dot_segments(raw_path: str) -> None:
    """``%2F``/``%5C`` are allowed as data, but a segment such as ``..%2Fadmin`` is a climb out
    of the path routed on for an upstream that decodes them before resolving dot-segments."""
    for seg in raw_path.split("/"):
        parts = _ENCODED_SEPARATORS.split(seg) if "%" in seg else ()
        for part in parts if len(parts) > 1 else ():
            dots = part.partition(";")[0].replace("%2e", ".").replace("%2E", ".")
            if dots == "." or dots == "..":
                raise BadRequest("dot segments hidden by encoded separators are not allowed")


def _dot_segment(seg: str, allow_encoded: bool) -> str | None:
    """``.`` or ``..`` when ``seg`` is a dot-segment, plain or encoded, else None."""
    base = seg.partition(";")[0]
    dots = base.replace("%2e", ".").replace("%2E", ".") if "%" in base else base
    if dots != "." and dots != "..":
        return None
    if base != seg:
        raise BadRequest("dot segments with path parameters are not allowed")
    if dots != base and not allow_encoded:
        raise BadRequest("encoded dot segments are not allowed")
    return dots


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never called with empty data: that would end the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


_PHRASES = {s.value: s.phrase.encode("latin-1") for s in HTTPStatus}


def status_line(version: bytes, status: int, reason: str | None) -> bytes:
    phrase = reason.encode("latin-1") if reason is not None else _PHRASES.get(status, b"")
    return b"HTTP/%b %d %b\r\n" % (version, status, phrase)


def serialize_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join([b"%b: %b\r\n" % (n, v) for n, v in headers])
