"""Reading the files security settings name (key lists, htpasswd), with one error shape."""

from __future__ import annotations

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
