"""What a ``Mirror`` filter's arguments mean once checked: where copies go, how many, and how
they are compared. Parsed once, when the route is built."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.mirror.compare import CompareSpec

SHADOW_SUFFIX = "-shadow"


@dataclass(frozen=True, slots=True)
class MirrorUri:
    """``http(s)://host[:port]`` (a fixed address) or ``lb://service`` (an instance of it)."""

    raw: str
    scheme: str  # http, https or lb
    host: str = ""
    port: int = 0
    service: str | None = None

    @property
    def secure(self) -> bool:
        return self.scheme == "https"


def parse_mirror_uri(text: str) -> MirrorUri:
    """ValueError says why ``text`` is no mirror URI. The mirror gets the request's own path
    and query, so a URI with a path, query or fragment is refused rather than ignored."""
    raw = text.strip()
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "lb"):
        raise ValueError(f"{text!r}: the scheme must be http, https or lb")
    netloc = parts.netloc
    if not netloc:
        raise ValueError(f"{text!r} names no host")
    if "@" in netloc:
        raise ValueError(f"{text!r}: user info is not supported")
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise ValueError(
            f"{text!r}: a mirror URI has no path or query (the copy keeps the request's own)"
        )
    if scheme == "lb":
        service, colon, _ = netloc.partition(":")
        if colon or not service:
            raise ValueError(f"{text!r}: write lb://service-id, without a port")
        return MirrorUri(raw, "lb", service=service)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} has an invalid port") from exc
    host = parts.hostname
    if not host:
        raise ValueError(f"{text!r} names no host")
    return MirrorUri(raw, scheme, host, port or (443 if scheme == "https" else 80))


@dataclass(frozen=True, slots=True)
class MirrorSpec:
    """One Mirror filter: where, what share of requests (0-100), and the comparison (None: the
    shadow's answer is read and discarded)."""

    uri: MirrorUri
    percent: float = 100.0
    compare: CompareSpec | None = None


def shadow_host(authority: str) -> str:
    """Envoy's shadow Host: ``-shadow`` after the host part, before any port
    (``orders:8080`` -> ``orders-shadow:8080``, ``[::1]:80`` -> ``[::1]-shadow:80``)."""
    if authority.startswith("["):
        close = authority.find("]")
        if close != -1:
            return authority[: close + 1] + SHADOW_SUFFIX + authority[close + 1 :]
    host, colon, port = authority.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return f"{host}{SHADOW_SUFFIX}:{port}"
    return authority + SHADOW_SUFFIX
