"""Builds a plugin directory's wheel from its pyproject.toml, with no build backend.

The venv has setuptools 65 and no ``wheel`` package, which cannot build a wheel (setuptools
needs ``wheel`` before 70.1), and the tests may not download a newer one. A pure-Python wheel
is a zip with a ``.dist-info`` directory, so it is written here from the project's own table:
its name, version and entry points, and the packages ``[tool.setuptools] packages`` lists.
``pip`` then installs and uninstalls it as it would any wheel.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
import zipfile
from pathlib import Path
from typing import Any


def build_wheel(project: Path, out_dir: Path) -> Path:
    """The wheel of ``project`` (a directory holding pyproject.toml), written into ``out_dir``."""
    meta: dict[str, Any] = tomllib.loads((project / "pyproject.toml").read_text())
    table: dict[str, Any] = meta["project"]
    name, version = str(table["name"]), str(table["version"])
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"
    dist_info = f"{stem}.dist-info"
    files: dict[str, bytes] = {}
    for package in meta["tool"]["setuptools"]["packages"]:
        root = project / package.replace(".", "/")
        for source in sorted(root.rglob("*.py")):
            files[source.relative_to(project).as_posix()] = source.read_bytes()
    files[f"{dist_info}/METADATA"] = _lines(
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {table.get('description', '')}",
        f"Requires-Python: {table.get('requires-python', '>=3')}",
    )
    files[f"{dist_info}/WHEEL"] = _lines(
        "Wheel-Version: 1.0",
        "Generator: tests.plugins.wheel",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    )
    groups: dict[str, dict[str, str]] = table.get("entry-points", {})
    files[f"{dist_info}/entry_points.txt"] = _lines(
        *(
            line
            for group, entries in groups.items()
            for line in (f"[{group}]", *(f"{k} = {v}" for k, v in entries.items()), "")
        )
    )
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = _lines(*record, f"{dist_info}/RECORD,,")
    wheel = out_dir / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def _lines(*lines: str) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
