"""The config package's entry points: a route file, its text, or its data (Consul KV hands
over text) to a ``GatewayConfig``.

Reading is split by concern: ``text`` (YAML/JSON), ``reader`` (routes, default filters, where a
Spring ``application.yml`` nests them), ``services`` (``services:``), ``errors`` (every mistake
with its place). Config is the bottom layer: it parses entries against ``ShortcutSpec``s and
leaves what belongs above it — building predicates and filters, the meaning of a route URI or a
service policy — to ``gateway.routing``, which passes the latter in as ``ValueChecks`` and
validates whole documents in ``gateway.routing.validate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.config.reader import STRUCTURE_ONLY, DocumentReader, LoadResult, ValueChecks
from gateway.config.schema import GatewayConfig
from gateway.config.shortcut import ShortcutSpec
from gateway.config.text import read_file, read_text


def load_config(
    path: str | Path,
    predicates: Mapping[str, ShortcutSpec],
    filters: Mapping[str, ShortcutSpec],
    *,
    checks: ValueChecks = STRUCTURE_ONLY,
) -> GatewayConfig:
    """Read and check a route file. Raises ``ConfigError`` (``ConfigErrors`` when the document
    itself has mistakes, listing all of them)."""
    return parse_text(read_file(path), str(path), predicates, filters, checks=checks)


def parse_text(
    text: str,
    source: str,
    predicates: Mapping[str, ShortcutSpec],
    filters: Mapping[str, ShortcutSpec],
    *,
    checks: ValueChecks = STRUCTURE_ONLY,
) -> GatewayConfig:
    return parse_document(read_text(text, source), source, predicates, filters, checks=checks)


def parse_document(
    data: object,
    source: str,
    predicates: Mapping[str, ShortcutSpec],
    filters: Mapping[str, ShortcutSpec],
    *,
    checks: ValueChecks = STRUCTURE_ONLY,
) -> GatewayConfig:
    result = collect_document(data, source, predicates, filters, checks=checks)
    result.errors.raise_if_any()
    return result.config


def collect_document(
    data: object,
    source: str,
    predicates: Mapping[str, ShortcutSpec],
    filters: Mapping[str, ShortcutSpec],
    *,
    checks: ValueChecks = STRUCTURE_ONLY,
) -> LoadResult:
    """Read ``data`` as far as possible, collecting every error instead of raising."""
    return DocumentReader(source, predicates, filters, checks).read(data)
