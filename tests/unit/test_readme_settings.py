"""Every setting is documented: the README's configuration table names each GATEWAY_* variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"GATEWAY_{field.upper()}"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_in_the_readme(field: str) -> None:
    assert f"`{_env_name(field)}`" in README
