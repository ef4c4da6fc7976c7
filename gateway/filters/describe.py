"""The text SCG's actuator shows for a filter (Spring's ``ToStringCreator`` with SCG's styler):
``[Name field = 'string', count = 2]``. Computed once at build time by each filter."""

from __future__ import annotations

from enum import Enum


def style_value(value: object) -> str:
    if value is None:
        return "[null]"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, list | tuple):
        return "list[" + ", ".join(style_value(item) for item in value) + "]"
    return str(value)


def filter_text(name: str, *fields: tuple[str, object]) -> str:
    body = ",".join(f" {key} = {style_value(value)}" for key, value in fields)
    return f"[{name}{body}]"


def data_size_text(size: int) -> str:
    """Spring's ``DataSize.toString()``: the byte count with a ``B`` suffix."""
    return f"{size}B"
