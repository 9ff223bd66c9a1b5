"""The benchmark harness cannot rot: its quick mode runs and produces every figure.

Nothing here asserts a speed — speed is judged by `python -m bench` on a quiet machine."""
from __future__ import annotations

import json

import pytest

from bench.run import NOT_YET, Bench, _at_target_size, _percentile, _project, main, render_markdown, write_profile


def test_percentiles_are_nearest_rank():
    samples = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert (_percentile(samples, 0.5), _percentile(samples, 0.95)) == (3.0, 5.0)
    assert (_percentile([2.0, 1.0, 9.0], 0.5), _percentile([2.0, 1.0, 9.0], 0.95)) == (2.0, 9.0)


def test_profile_lists_the_top_functions_by_cumulative_and_own_time(tmp_path):
    import cProfile

    def leaf(n: int) -> int:
        return sum(i * i for i in range(n))

    def outer() -> int:
        return sum(leaf(20_000) for _ in range(20))

    profiler = cProfile.Profile()
    profiler.enable()
    outer()
    profiler.disable()
    listed = write_profile(profiler, tmp_path / "profile.txt", "a test", top=5)
    text = (tmp_path / "profile.txt").read_text()
    assert "top 5 by cumulative time" in text and "top 5 by own time" in text
    assert any("(outer)" in line for line in listed["cumulative"][:4])
    assert any("<genexpr>" in line for line in listed["own"][:2])  # the generator does the work
    assert len(listed["own"]) <= 12


def test_a_partial_result_renders_what_it_has_and_names_what_it_has_not():
    # the harness saves after every stage: a run stopped half-way must still leave a readable result
    bench = Bench(mode="full", budget_min=15, save=lambda r: None)
    bench.result["rate_limits"] = {"xero": {"operation": "GET TaxRates", "documented": "60 calls/min", "requests": 90,
                                            "achieved_per_s": 27.9, "time_scale": 30, "allowed_per_s": 30.0,
                                            "use": 0.93, "refused": 0}}
    report = render_markdown(bench.result)
    assert "| rate-limit use (worst API) | 93.0%, 0 refused over 1 operations | ≥ 90 % with zero refused | met |" in report
    assert report.count(NOT_YET) == 10  # every other figure, growth included
    assert "No full run measured yet" in report


def test_projections_go_through_the_two_largest_sizes():
    # a run has a fixed part (dbt's per-node cost, each step's start) and a part per order: two sizes
    # give both, one size can only be scaled linearly (which overstates a larger run)
    def size(n, wall, world, dbt):
        return {"size": n, "world": {"seconds": world}, "full": {"wall_s": wall, "stages_s": {"dbt": dbt}}}

    small, large = size(4_000, 110.0, 2.0, 40.0), size(16_000, 200.0, 8.0, 34.0)
    assert _project([small], 16_000) == pytest.approx(448.0)
    assert _project([small, large], 100_000) == pytest.approx(208.0 + (208.0 - 112.0) / 12_000 * 84_000)
    wall, how = _at_target_size({"sizes": [small, large]}, lambda s: s["full"]["wall_s"])
    assert wall == pytest.approx(200.0 + 90.0 / 12_000 * 984_000, abs=0.1) and "through 110.0 s at 4,000" in how
    dbt, _ = _at_target_size({"sizes": [small, large]}, lambda s: s["full"]["stages_s"]["dbt"])
    assert dbt == 34.0  # a cost that did not grow is not projected to shrink


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about two minutes on a quiet machine; CI machines are loaded
def test_quick_bench_produces_every_figure(tmp_path):
    # a small world keeps the suite quick; `python3 dev.py bench --quick` uses 50,000 orders
    assert main(["--quick", "--sizes", "4000", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    # every stage of the harness was timed, and saved as it went
    assert set(result["stages_s"]) == {"rate-limit probes", "webhook receiver", "Shopify REST vs GraphQL backfill",
                                       "world + full run at 4,000", "floor", "incremental run", "webhook latency"}
    assert result["slice"] == {"FINANCE_SOURCES": "shopify,stripe", "FINANCE_DESTINATIONS": "xero"}
    size = result["sizes"][0]
    # the slice ran: its two sources and its ledger, nothing else
    assert {k for k in size["full"]["steps_s"] if k.startswith("ingest_")} == {"ingest_shopify", "ingest_stripe"}
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
    assert latency["samples"] == len(latency["latencies_s"]) >= 2  # p50 and p95 of at least two
    assert 0 < latency["p50_s"] <= latency["p95_s"]
    report = (tmp_path / "result.md").read_text()
    for figure in ("world generator", "full backfill", "peak RSS", "floor", "incremental", "rate-limit use",
                   "dbt build", "verified deliveries/s", "event → marts latency", "GraphQL bulk vs REST", "growth",
                   "Closing note"):
        assert figure in report, figure
    # one size only: the 1M figures are projections, and say so
    assert "projected to 1,000,000" in report
