"""The benchmark harness cannot rot: its quick mode runs and produces every figure.

Nothing here asserts a speed — speed is judged by `python -m bench` on a quiet machine."""
from __future__ import annotations

import json

import pytest

from bench.run import _percentile, main


def test_percentiles_are_nearest_rank():
    samples = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert (_percentile(samples, 0.5), _percentile(samples, 0.95)) == (3.0, 5.0)
    assert (_percentile([2.0, 1.0, 9.0], 0.5), _percentile([2.0, 1.0, 9.0], 0.95)) == (2.0, 9.0)


@pytest.mark.slow
def test_quick_bench_produces_every_figure(tmp_path):
    # a small world keeps the suite quick; `python3 dev.py bench --quick` uses 50,000 orders
    assert main(["--quick", "--sizes", "4000", "--profile", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    size = result["sizes"][0]
    assert size["world"]["orders_all_channels"] > 0 and size["world"]["seconds"] > 0
    assert {"ingest", "dbt", "publish"} <= set(size["full"]["stages_s"])
    assert size["full"]["orders"] > 0 and size["rss_gib"] > 0
    assert size["incremental"]["fraction"] > 0
    assert result["floor"]["rows_per_s"] > 0 and result["floor"]["ratio"] > 0
    limits = result["rate_limits"]
    assert {"shopify", "xero", "quickbooks", "amazon searchOrders", "amazon listFinancialEventGroups"} <= set(limits)
    assert all(v["refused"] == 0 and v["requests"] > 0 and v["achieved_per_s"] > 0 for v in limits.values())
    assert "client_share" in limits["amazon searchOrders"]  # its client paces below the documented rate, and says why
    receiver = result["webhooks"]["receiver"]
    assert receiver["deliveries_per_s"] > 0 and receiver["acknowledged"] == receiver["deliveries"]
    assert receiver["lost"] == 0 and receiver["doubled"] == 0 and receiver["kill9"]["missing_after_restart"] == 0
    latency = result["webhooks"]["latency"]
    assert latency["samples"] == len(latency["latencies_s"]) >= 3
    assert 0 < latency["p50_s"] <= latency["p95_s"]
    report = (tmp_path / "result.md").read_text()
    for figure in ("world generator", "full backfill", "peak RSS", "floor", "incremental", "rate-limit use",
                   "dbt build", "verified deliveries/s", "event → marts latency", "GraphQL bulk vs REST", "growth",
                   "Closing note"):
        assert figure in report, figure
    # one size only: the 1M figures are projections, and say so
    assert "projected to 1,000,000" in report
    # --profile: the (only, so largest) size's full job ran under cProfile
    profile = (tmp_path / "profile.txt").read_text()
    assert "top 30 by cumulative time" in profile and "execute_in_process" in profile
    assert size["full"]["profile"]["cumulative"] and "under cProfile" in report
