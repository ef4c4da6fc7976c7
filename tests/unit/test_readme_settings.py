"""Every setting is documented: the README's configuration table names each GATEWAY_* variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_in_the_readme(field: str) -> None:
    assert f"`GATEWAY_{field.upper()}`" in README
