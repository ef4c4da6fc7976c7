"""SCG's CORS configuration (Spring's ``CorsConfiguration``): the global
``globalcors.cors-configurations`` (path pattern -> configuration) and a route's
``metadata.cors``, parsed and checked once into frozen values. What the gateway does with them
at request time is ``gateway.cors``'s.

The two forms reach Spring by different roads, and so take their values differently:

- ``globalcors`` is bound by Spring Boot (``parse_cors``): relaxed key names
  (``allowedOrigins``, ``allowed-origins``, ``allowed_origins`` are one key), a string is a
  comma-separated list, ``allowCredentials: "yes"`` is true, ``maxAge: "30"`` is 30;
- ``metadata.cors`` is read by SCG's ``CorsGatewayFilterApplicationListener`` from the raw
  metadata map (``parse_route_cors``): exact camelCase keys, a string is *one* value, and
  ``allowCredentials``/``maxAge`` must already be a boolean/number (SCG casts them).

Where SCG would silently do nothing useful — a misspelt or kebab-case key in route metadata
(ignored), ``allowedMethods: "GET,POST"`` in metadata (one method named ``GET,POST``, which
no request has), ``allowCredentials: "true"`` in metadata (a ClassCastException that drops
every route's CORS), ``maxAge: 10s`` (Boot refuses to start), ``allowCredentials: true`` with
``allowedOrigins: '*'`` (a 500 on every matching request) — this is a ``ConfigError`` naming
the key instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.config.args import parse_bool
from gateway.errors import ConfigError
from gateway.patterns.path_pattern import PathPattern

ALL = "*"

# Spring's DEFAULT_METHODS: what a configuration without allowedMethods allows.
DEFAULT_METHODS = ("GET", "HEAD")

# (camelCase name, read from route metadata too). SCG's listener reads seven keys from
# metadata; allowPrivateNetwork is a CorsConfiguration property only Boot's binding sets.
_KEYS = (
    ("allowedOrigins", True),
    ("allowedOriginPatterns", True),
    ("allowedMethods", True),
    ("allowedHeaders", True),
    ("exposedHeaders", True),
    ("allowCredentials", True),
    ("allowPrivateNetwork", False),
    ("maxAge", True),
)
GLOBAL_KEYS = tuple(name for name, _ in _KEYS)
ROUTE_KEYS = tuple(name for name, in_route in _KEYS if in_route)

# RFC 9110 token: what a method or a header field name is made of.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_STANDARD_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
_WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True, slots=True)
class CorsConfiguration:
    """One configuration, as Spring holds it after its setters ran: origins split at commas
    and without a trailing ``/``, everything else as written. An empty tuple is Spring's
    ``null`` (not set): no origin allowed, ``DEFAULT_METHODS``, no request header allowed,
    nothing exposed."""

    allowed_origins: tuple[str, ...] = ()
    allowed_origin_patterns: tuple[str, ...] = ()
    allowed_methods: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = ()
    exposed_headers: tuple[str, ...] = ()
    allow_credentials: bool | None = None
    max_age: int | None = None  # seconds
    allow_private_network: bool | None = None


def parse_cors(raw: object) -> CorsConfiguration:
    """One configuration as SCG's YAML writes it under ``globalcors.cors-configurations``
    (``allowedOrigins``, ... in camelCase or kebab-case). Raises ``ConfigError`` naming the
    key at fault (without a location: the caller knows where the mapping is)."""
    return _Reader("", relaxed=True).read(raw)


def parse_route_cors(raw: object) -> CorsConfiguration:
    """A route's ``metadata.cors`` as SCG reads it. Errors say ``metadata cors.<key>: ...``."""
    return _Reader("metadata cors", relaxed=False).read(raw)


def check_cors_pattern(pattern: str) -> None:
    """A ``cors-configurations`` key (brackets already off) as Spring's default
    ``PathPatternParser`` takes it; raises ``ConfigError`` saying what is wrong."""
    if not pattern.startswith("/"):
        raise ConfigError(f"a path pattern must start with '/', got {pattern!r}")
    try:
        PathPattern.parse(pattern, match_trailing_slash=False)
    except ValueError as exc:
        raise ConfigError(f"path pattern {pattern!r}: {exc}") from exc


def _uniform(name: str) -> str:
    """Spring Boot's relaxed binding: case, dashes and underscores don't tell names apart."""
    return name.replace("-", "").replace("_", "").lower()


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


class _Reader:
    """Reads one configuration; ``relaxed`` is Spring Boot's binding (globalcors), else SCG's
    own reading of route metadata."""

    def __init__(self, where: str, *, relaxed: bool) -> None:
        self._where = where
        self._relaxed = relaxed

    def fail(self, key: str, reason: str) -> ConfigError:
        name = f"{self._where}.{key}" if self._where else key
        return ConfigError(f"{name}: {reason}")

    def read(self, raw: object) -> CorsConfiguration:
        if not isinstance(raw, Mapping):
            what = f"{self._where}: expected" if self._where else "expected"
            raise ConfigError(f"{what} a mapping of CORS settings, got {_describe(raw)}")
        values = self._keys(raw)
        origins = self._origins("allowedOrigins", values)
        patterns = self._origins("allowedOriginPatterns", values)
        methods = self._names("allowedMethods", values, self._method)
        headers = self._names("allowedHeaders", values, self._header)
        exposed = self._names("exposedHeaders", values, self._header)
        credentials = self._flag("allowCredentials", values)
        private_network = self._flag("allowPrivateNetwork", values)
        max_age = self._max_age(values)
        # Spring's validateAllowCredentials / validateAllowPrivateNetwork, which SCG only
        # runs per request (a 500 on every request the configuration covers).
        if ALL in origins:
            for key, flag in (
                ("allowCredentials", credentials),
                ("allowPrivateNetwork", private_network),
            ):
                if flag:
                    raise self.fail(
                        key,
                        "true cannot go with allowedOrigins '*' (Spring refuses it: "
                        "Access-Control-Allow-Origin cannot be '*' then); list the origins "
                        "or use allowedOriginPatterns",
                    )
        return CorsConfiguration(
            allowed_origins=origins,
            allowed_origin_patterns=patterns,
            allowed_methods=methods,
            allowed_headers=headers,
            exposed_headers=exposed,
            allow_credentials=credentials,
            max_age=max_age,
            allow_private_network=private_network,
        )

    def _keys(self, raw: Mapping[object, object]) -> dict[str, tuple[str, object]]:
        """Known key (camelCase) -> (the key as written, its value); None values are unset,
        as both Boot and SCG's listener skip them."""
        known = GLOBAL_KEYS if self._relaxed else ROUTE_KEYS
        by_uniform = {_uniform(name): name for name in known}
        out: dict[str, tuple[str, object]] = {}
        for key, value in raw.items():
            written = str(key)
            name = by_uniform.get(_uniform(written)) if self._relaxed else None
            if not self._relaxed and written in known:
                name = written
            if name is None:
                raise self._unknown(written, known)
            if name in out:
                raise self.fail(written, f"sets {name} again (already set as {out[name][0]!r})")
            if value is not None:
                out[name] = (written, value)
        return out

    def _unknown(self, key: str, known: tuple[str, ...]) -> ConfigError:
        by_uniform = {_uniform(name): name for name in GLOBAL_KEYS}
        meant = by_uniform.get(_uniform(key))
        if meant == "allowPrivateNetwork" and not self._relaxed:
            return self.fail(
                key,
                "SCG does not read allowPrivateNetwork from route metadata (set it in globalcors)",
            )
        if meant is not None:
            # Right name, Boot's spelling: SCG reads route metadata keys as written.
            return self.fail(key, f"route metadata keys are read as written: use {meant}")
        close = difflib.get_close_matches(
            _uniform(key), [_uniform(name) for name in known], n=1, cutoff=0.6
        )
        hint = f" (did you mean {by_uniform[close[0]]}?)" if close else ""
        return self.fail(key, f"unknown key{hint}; allowed: {', '.join(known)}")

    # -- lists ------------------------------------------------------------------------------
    def _items(self, key: str, written: str, value: object) -> tuple[list[str], bool]:
        """The entries of a list-valued key, and whether they came from one string."""
        if isinstance(value, str):
            if not self._relaxed:
                return [value], True  # SCG's asList: a string is a one-element list
            # Boot converts a string to a list at every comma, trimming each part.
            parts = [part.strip() for part in value.split(",")] if value.strip() else []
            return parts, True
        if isinstance(value, Mapping) and not self._relaxed:
            value = list(value.values())  # SCG's asList takes a map's values, in order
        if not isinstance(value, list | tuple):
            raise self.fail(written, f"expected a list or a string, got {_describe(value)}")
        items: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                items.append(item)
            elif self._relaxed and isinstance(item, int | float) and not isinstance(item, bool):
                items.append(str(item))  # Boot converts a scalar to its text
            else:
                raise self.fail(f"{written}[{index}]", f"expected a string, got {_describe(item)}")
        return items, False

    def _origins(self, key: str, values: Mapping[str, tuple[str, object]]) -> tuple[str, ...]:
        if key not in values:
            return ()
        written, value = values[key]
        items, from_string = self._items(key, written, value)
        out: list[str] = []
        for item in items:
            if self._relaxed and from_string and item.count("[") != item.count("]"):
                raise self.fail(
                    written,
                    f"{value!r} is cut at every comma by Spring Boot, port list included; "
                    "write each pattern as a list item",
                )
            for origin in _split_origins(item):
                if not origin:
                    raise self.fail(written, f"an empty origin in {value!r}")
                if any(c.isspace() for c in origin):
                    raise self.fail(written, f"{origin!r} has white space: no Origin matches it")
                out.append(origin[:-1] if origin.endswith("/") else origin)
        return tuple(out)

    def _names(
        self,
        key: str,
        values: Mapping[str, tuple[str, object]],
        check: Callable[[str, str, object, bool], None],
    ) -> tuple[str, ...]:
        if key not in values:
            return ()
        written, value = values[key]
        items, from_string = self._items(key, written, value)
        if key == "exposedHeaders" and from_string and not self._relaxed:
            # One string is one value to SCG, sent as written: ``A, B`` exposes both.
            items = [part.strip() for part in items[0].split(",")]
        for item in items:
            check(written, item, value, from_string)
        return tuple(items)

    def _method(self, written: str, item: str, value: object, from_string: bool) -> None:
        if item == ALL:
            return
        if "," in item and from_string and not self._relaxed:
            raise self.fail(
                written,
                f"{item!r} is one method name to SCG (route metadata is not split at commas); "
                "write a list",
            )
        if not _TOKEN.match(item):
            raise self.fail(written, f"{item!r} is not a method name")
        if item != item.upper() and item.upper() in _STANDARD_METHODS:
            # Spring compares methods case-sensitively: ``get`` would never allow a GET.
            raise self.fail(written, f"{item!r}: methods are case-sensitive, write {item.upper()}")

    def _header(self, written: str, item: str, value: object, from_string: bool) -> None:
        if item == ALL:
            return
        if "," in item and from_string and not self._relaxed:
            raise self.fail(
                written,
                f"{item!r} is one header name to SCG (route metadata is not split at commas); "
                "write a list",
            )
        if not _TOKEN.match(item):
            raise self.fail(written, f"{item!r} is not a header name")

    # -- scalars ----------------------------------------------------------------------------
    def _flag(self, key: str, values: Mapping[str, tuple[str, object]]) -> bool | None:
        if key not in values:
            return None
        written, value = values[key]
        if isinstance(value, bool):
            return value
        if self._relaxed and isinstance(value, str):
            try:
                return parse_bool(value)
            except ValueError:
                pass
        hint = "" if self._relaxed else " (SCG casts the metadata value to a boolean)"
        raise self.fail(written, f"expected true or false, got {_describe(value)}{hint}")

    def _max_age(self, values: Mapping[str, tuple[str, object]]) -> int | None:
        if "maxAge" not in values:
            return None
        written, value = values["maxAge"]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if self._relaxed and isinstance(value, str) and _WHOLE_NUMBER.match(value.strip()):
            return int(value.strip())
        why = (
            "Spring binds maxAge as a Long: 10s or PT10S are refused"
            if self._relaxed
            else "SCG casts the metadata value to a number"
        )
        raise self.fail(written, f"expected whole seconds, got {_describe(value)} ({why})")


def _split_origins(text: str) -> Iterable[str]:
    """Spring's parseCommaDelimitedOrigin: commas separate origins, except inside a port list
    (``https://*.example.com:[8080,8081]``); the parts are trimmed when there are several."""
    if "," not in text:
        yield text
        return
    start = 0
    in_ports = False
    for index, char in enumerate(text):
        if char == "[":
            in_ports = True
        elif char == "]":
            in_ports = False
        elif char == "," and not in_ports:
            yield text[start:index].strip()
            start = index + 1
    if start < len(text):
        yield text[start:].strip()
