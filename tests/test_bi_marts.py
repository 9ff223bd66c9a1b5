"""Which marts the BI tools get: every mart dbt builds, unless `NOT_FOR_BI` says why not, so a new
mart reaches the dashboards without anyone remembering to list it."""
from __future__ import annotations

from pathlib import Path

from finance_pipeline.defs.publish import looker_studio_marts, tableau_marts
from finance_pipeline.publish.bi import BI_MARTS, NOT_FOR_BI, OPTIONAL_MARTS

MARTS_DIR = Path(__file__).resolve().parent.parent / "dbt_project" / "models" / "marts"


def test_every_mart_goes_to_the_bi_tools_or_is_left_out_with_a_reason():
    marts = {p.stem for p in MARTS_DIR.rglob("*.sql")}
    assert set(BI_MARTS) | set(NOT_FOR_BI) == marts
    assert not set(BI_MARTS) & set(NOT_FOR_BI) and len(BI_MARTS) == len(set(BI_MARTS))


def test_the_bi_publish_assets_wait_for_every_mart_built_whatever_the_sources():
    """They depend on every BI mart dbt always builds, and on none that only some sources build
    (a run without those would skip the publishers); a mart is optional exactly when its model is
    enabled by a condition."""
    conditional = {p.stem for p in MARTS_DIR.rglob("*.sql") if "enabled=" in p.read_text()}
    assert OPTIONAL_MARTS == conditional & set(BI_MARTS)
    for asset in (tableau_marts, looker_studio_marts):
        upstream = {key.path[-1] for key in asset.asset_deps[asset.key]}
        assert upstream == set(BI_MARTS) - OPTIONAL_MARTS, asset.key
