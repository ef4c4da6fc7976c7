"""Reading the files security settings name (key lists, htpasswd): one error shape, and one
reading of their line format (an entry a line, blank lines and ``#`` comments skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gateway.errors import ConfigError


def read_text_file(path: str | Path) -> str:
    """The file's text, now; a ConfigError located at the path when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror or exc}", str(path)) from exc


def entries(text: str, source: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, where, entry)`` for each line that holds one: stripped, blank lines and
    whole-line ``#`` comments skipped; ``where`` is ``source:line`` for errors."""
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            yield number, f"{source}:{number}", entry
