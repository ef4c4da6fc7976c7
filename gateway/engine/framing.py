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
_ENCODED_DOT = re.compile(r"%2[eE]")


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


def normalize_path(raw_path: str) -> str:
    """Remove dot-segments (RFC 3986 §5.2.4) and merge empty segments the way Spring does not:
    empty segments are kept (``/a//b`` stays), only ``.`` and ``..`` are resolved.

    Refuses encoded ``/``, ``\\`` and ``.`` (an upstream that decodes them would see a different
    path than the one we routed on) and raw backslashes.
    """
    if not raw_path.startswith("/"):
        raise BadRequest("request target must be an absolute path")
    if "\\" in raw_path or _ENCODED_SEPARATORS.search(raw_path):
        raise BadRequest("encoded or backslash path separators are not allowed")
    if _ENCODED_DOT.search(raw_path):
        raise BadRequest("encoded dot segments are not allowed")
    if "/." not in raw_path:
        return raw_path
    out: list[str] = []
    segments = raw_path.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


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
