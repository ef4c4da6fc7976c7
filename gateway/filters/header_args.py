"""Checked header-name and header-value arguments shared by the header filters.

A header filter writes what config says straight onto the wire, so names must be HTTP tokens
and values must not hold CR, LF or NUL; both are checked once at build time.
"""

from __future__ import annotations

import re

from gateway.config.args import Args
from gateway.filters.template import Template, compile_template

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def check_header_name(args: Args, key: str, name: str) -> str:
    if not _TOKEN.fullmatch(name):
        args.fail(key, f"{name!r} is not a valid header name")
    return name


def check_header_value(args: Args, key: str, value: str) -> str:
    if _BAD_VALUE.search(value):
        args.fail(key, "a header value must not contain CR, LF or NUL")
    return value


def header_name(args: Args, key: str = "name") -> str:
    name: str = args.str(key)
    if name == "":
        args.fail(key, "must not be empty")
    return check_header_name(args, key, name)


def header_template(args: Args, key: str = "value") -> Template:
    """A header value that may hold ``{var}`` (SCG requires it non-empty)."""
    value: str = args.str(key)
    if value == "":
        args.fail(key, "must not be empty")
    return value_template(args, key, check_header_value(args, key, value))


def value_template(args: Args, key: str, value: str) -> Template:
    try:
        return compile_template(value)
    except ValueError as exc:
        args.fail(key, str(exc))
