"""The docs list every setting, so a new setting cannot ship undocumented."""

from __future__ import annotations

from pathlib import Path

from scheduler.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented_with_its_allowed_values():
    text = (DOCS / "settings.md").read_text()
    for name, field in Settings.model_fields.items():
        row = next((line for line in text.splitlines() if f"`YM_{name.upper()}`" in line), None)
        assert row is not None, f"YM_{name.upper()} is missing from docs/settings.md"
        assert field.description
        assert field.description in row
