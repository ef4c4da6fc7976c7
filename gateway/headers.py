"""An ordered, case-insensitive header list kept as the raw ``(bytes, bytes)`` pairs of the wire.

The engine parses into this and serialises from it with one ``b"".join``; filters use the ``str``
methods, which encode/decode latin-1 (HTTP field values are octets; latin-1 maps them 1:1).
Lookups lower-case the wanted name once and compare against lower-cased stored names, so the
list is never re-normalised per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def _b(value: str) -> bytes:
    return value.encode("latin-1")


class Headers:
    """Multi-valued header fields in arrival order. Names keep their original case on the wire."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._items: list[tuple[bytes, bytes]] = list(items)

    # -- raw access (engine) -------------------------------------------------------------------
    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for name, value in self._items:
            yield name.decode("latin-1"), value.decode("latin-1")

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _b(name.lower())
        return any(n.lower() == key for n, _ in self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    # -- str API (filters, predicates) -----------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        key = _b(name.lower())
        for n, v in self._items:
            if n.lower() == key:
                return v.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        key = _b(name.lower())
        return [v.decode("latin-1") for n, v in self._items if n.lower() == key]

    def names(self) -> list[str]:
        """Distinct names in first-seen order, original case."""
        seen: dict[bytes, str] = {}
        for n, _ in self._items:
            seen.setdefault(n.lower(), n.decode("latin-1"))
        return list(seen.values())

    def add(self, name: str, value: str) -> None:
        self._items.append((_b(name), _b(value)))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` with one, at the position of the first."""
        key = _b(name.lower())
        new = (_b(name), _b(value))
        out: list[tuple[bytes, bytes]] = []
        placed = False
        for item in self._items:
            if item[0].lower() == key:
                if not placed:
                    out.append(new)
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append(new)
        self._items = out

    def set_all(self, name: str, values: Iterable[str]) -> None:
        self.remove(name)
        for value in values:
            self.add(name, value)

    def remove(self, name: str) -> bool:
        key = _b(name.lower())
        before = len(self._items)
        self._items = [item for item in self._items if item[0].lower() != key]
        return len(self._items) != before
