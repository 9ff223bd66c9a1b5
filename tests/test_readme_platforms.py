"""The README's platform table: one row per platform of the registry (the 24 systems of the brief and the
ECB rates feed), each saying what
the pipeline does with it and which settings live mode needs, named as the platform's code reads them."""
from __future__ import annotations

import re

from finance_pipeline.platforms import registry
from finance_pipeline.settings import PROJECT_ROOT

HEADER = "| system | role | what the pipeline does with it | live settings |"


def _rows() -> list[list[str]]:
    text = (PROJECT_ROOT / "README.md").read_text()
    table = text.split(HEADER, 1)[1].split("\n\n", 1)[0]
    lines = [line for line in table.strip().splitlines()[1:] if line.startswith("|")]  # past the |---| line
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def _row_for(platform: registry.Platform, rows: list[list[str]]) -> list[str]:
    first_word = platform.title.split()[0].lower()
    (row,) = [r for r in rows if r[0].lower().split()[0] == first_word]
    return row


def test_every_platform_has_one_row_with_its_live_settings():
    rows = _rows()
    assert len(rows) == len(registry.PLATFORMS) == 25, [r[0] for r in rows]
    for platform in registry.PLATFORMS:
        row = _row_for(platform, rows)
        assert len(row) == 4 and all(row), row
        settings = re.findall(r"`([A-Z][A-Z0-9_]{2,})`", row[3])
        assert settings, row
        code = "\n".join(p.read_text() for p in (PROJECT_ROOT / "finance_pipeline" / "platforms" / platform.name)
                         .glob("*.py"))
        unread = [s for s in settings if s not in code and not s.startswith("FINANCE_")]
        assert unread == [], (platform.name, unread)
