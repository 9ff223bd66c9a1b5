"""FINANCE_SOURCES: which sources run, and the channel list dbt gets for them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finance_pipeline.ingest.switches import dbt_vars, enabled_sources, require_sources, source_names
from finance_pipeline.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent


def test_sandbox_turns_every_source_on_and_dbt_keeps_its_defaults():
    settings = Settings()
    assert enabled_sources(settings) == source_names() and "shopify" in source_names()
    assert dbt_vars(settings, as_of="x") == {"as_of": "x"}


def test_live_mode_needs_the_setting_and_names_it():
    settings = Settings(mode="live")
    assert enabled_sources(settings) == []
    with pytest.raises(SettingsError, match="FINANCE_SOURCES=shopify,stripe"):
        require_sources(settings)


def test_unknown_source_is_refused_with_the_known_ones():
    with pytest.raises(SettingsError, match="unknown source.*shopfy.*known: .*shopify"):
        enabled_sources(Settings(sources=("shopfy",)))


def test_a_subset_restricts_the_dbt_channels():
    out = dbt_vars(Settings(mode="live", sources=("woocommerce", "stripe")))
    assert set(out["channels"]) == {"woocommerce", "stripe"} and out["sources"] == ["stripe", "woocommerce"]
    assert out["channels"]["stripe"] == ["payments", "payouts", "balance_transactions"]


def test_definitions_have_no_asset_for_a_source_switched_off(tmp_path):
    """Loaded in a fresh interpreter (definitions are built at import): only the named sources have
    ingest assets, and the dbt manifest was parsed for those channels only."""
    code = (
        "from finance_pipeline.definitions import defs\n"
        "import json\n"
        "keys = [k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()]\n"
        "print(json.dumps(keys))\n"
    )
    env = {**os.environ, "FINANCE_DATA_DIR": str(tmp_path), "FINANCE_SOURCES": "woocommerce,stripe"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    keys = json.loads(out.stdout.strip().splitlines()[-1])
    raw = {k.split("/")[0] for k in keys if k.startswith("raw_")}
    assert {"raw_woocommerce", "raw_stripe"} <= raw
    assert not any(k.startswith(("raw_shopify/", "raw_amazon/", "staging/stg_shopify")) for k in keys)
    assert "marts/fct_gl_entries" in keys and "marts/fct_invoices" in keys
