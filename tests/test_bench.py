"""The benchmark harness cannot rot: its quick mode runs and produces every figure.

Nothing here asserts a speed — speed is judged by `python -m bench` on a quiet machine."""
from __future__ import annotations

import json

import pytest

from bench.run import main

pytestmark = pytest.mark.slow


def test_quick_bench_produces_every_figure(tmp_path):
    # a small world keeps the suite quick; `python3 dev.py bench --quick` uses 50,000 orders
    assert main(["--quick", "--sizes", "4000", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    size = result["sizes"][0]
    assert size["world"]["orders_all_channels"] > 0 and size["world"]["seconds"] > 0
    assert {"ingest", "dbt", "publish"} <= set(size["full"]["stages_s"])
    assert size["full"]["orders"] > 0 and size["rss_gib"] > 0
    assert size["incremental"]["fraction"] > 0
    assert result["floor"]["rows_per_s"] > 0 and result["floor"]["ratio"] > 0
    assert {"shopify", "xero"} <= set(result["rate_limits"])
    assert all(v["refused"] == 0 for v in result["rate_limits"].values())
    report = (tmp_path / "result.md").read_text()
    for figure in ("full backfill", "peak RSS", "floor", "incremental", "rate-limit use", "dbt build"):
        assert figure in report
