"""The hourly job (every registered source, dbt, alerts) on a small world: the FreshBooks rows of
every mart equal the oracle to the cent — the channel-keyed marts through `compare_with_oracle`, and
the invoice, receivable, GL and tax marts restricted to FreshBooks' own invoices, customers and
entries — and the emulator never refused a call."""
from __future__ import annotations

import shutil
from decimal import Decimal

import duckdb
import pytest

from finance_pipeline.sandbox import oracle as oracle_mod
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import _mart_key, _norm, compare_with_oracle, mart_rows, run_job

# the trade side only: customers' balances span every ledger channel, and Shopify's trade invoices are
# what the publisher sends
LEDGERS = {"shopify", "stripe", "freshbooks", "sage_intacct", "zoho_books", "dynamics365", "sap_business_one",
           "quickbooks"}


@pytest.fixture(scope="module")
def ran(small_world_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("fb-marts")
    shutil.copytree(small_world_dir / "sandbox", root / "sandbox")
    try:
        run_job(root, job="hourly_sync", sources=LEDGERS)
        emulator = runtime._running[(str(root), "freshbooks")].emulator
        yield root, dict(emulator.counters)
    finally:
        runtime.stop_emulators()


def _ours(mart: str, key, row: dict) -> bool:
    if mart in ("fct_invoices", "rpt_ar_invoice_detail"):
        return str(key).startswith("INV-FB-")
    if mart == "fct_gl_entries":
        return row.get("channel") == "freshbooks"
    return False


def test_channel_marts_equal_the_oracle(ran):
    root, counters = ran
    sandbox = Sandbox(root / "sandbox")
    assert compare_with_oracle(root / "warehouse.duckdb", sandbox, channels={"freshbooks"}) == {}
    assert counters["requests"] > 0 and counters.get("over_limit", 0) == 0


def test_invoice_and_ledger_marts_equal_the_oracle(ran):
    root, _ = ran
    expected = oracle_mod.compute(Sandbox(root / "sandbox"))
    problems = {}
    for mart in ("fct_invoices", "rpt_ar_invoice_detail", "fct_gl_entries"):
        got = {k: v for k, v in mart_rows(root / "warehouse.duckdb", mart).items() if _ours(mart, k, v)}
        exp = {_mart_key(k): v for k, v in expected.marts[mart].items()
               if _ours(mart, _mart_key(k), {"channel": v.get("channel"), **v})}
        issues = [f"missing {sorted(set(exp) - set(got), key=str)[:3]}"] if set(exp) - set(got) else []
        issues += [f"extra {sorted(set(got) - set(exp), key=str)[:3]}"] if set(got) - set(exp) else []
        for k, row in exp.items():
            for col, value in row.items():
                if k in got and col in got[k] and _norm(got[k][col]) != _norm(value):
                    issues.append(f"{k} {col}: mart {got[k][col]!r} != oracle {value!r}")
        if issues:
            problems[mart] = issues[:20]
        assert exp, f"no FreshBooks rows expected in {mart}"
    assert problems == {}


def test_outstanding_balances_and_tax_of_freshbooks_customers(ran):
    root, _ = ran
    expected = oracle_mod.compute(Sandbox(root / "sandbox"))
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        customers = {r[0] for r in con.execute(
            "select distinct customer_id from marts.fct_invoices where channel = 'freshbooks'").fetchall()}
        counts = con.execute("""
            select count(*), count(*) filter (where status = 'voided'), count(*) filter (where status = 'paid'),
                   count(*) filter (where status in ('overdue', 'partially_paid', 'unpaid')),
                   count(distinct currency)
            from marts.fct_invoices where channel = 'freshbooks'""").fetchone()
        services = con.execute("""select count(*), sum(cogs_home) from intermediate.int_order_lines
                                  where channel = 'freshbooks' and category = 'services'""").fetchone()
        fx = con.execute("""select count(*) from marts.fct_gl_entries where channel = 'freshbooks'
                            and account_code = '7100' and (debit_home <> 0 or credit_home <> 0)""").fetchone()[0]
    finally:
        con.close()
    got = {k: v for k, v in mart_rows(root / "warehouse.duckdb", "rpt_outstanding_balances").items() if k in customers}
    exp = {k: v for k, v in expected.marts["rpt_outstanding_balances"].items() if k in customers}
    assert set(got) == set(exp)
    bad = [(k, c) for k, row in exp.items() for c, v in row.items() if c in got[k] and _norm(got[k][c]) != _norm(v)]
    assert bad == []
    total, voided, paid, open_, currencies = counts
    assert total >= 20 and voided >= 1 and paid >= 5 and open_ >= 1 and currencies == 2
    assert services[0] > 0 and services[1] == Decimal("0")
    assert fx > 0  # EUR payments at another day's rate: realised FX posted


def test_publishing_the_real_marts_then_syncing_again(ran):
    """The other channels' trade invoices go to FreshBooks (never its own), read back equal to the
    marts; the next sync reads them back from FreshBooks but staging leaves them out."""
    from finance_pipeline.ingest.pipeline import run_platform
    from finance_pipeline.ingest.quarantine import Quarantine
    from finance_pipeline.platforms.freshbooks.publish import publish_to_freshbooks
    from finance_pipeline.platforms.freshbooks.source import freshbooks_source
    from tests.pipeline_helpers import pipeline_env
    from finance_pipeline.settings import get_settings

    root, _ = ran
    with pipeline_env(root):
        settings = get_settings()
        running = runtime.start_emulators(settings)["freshbooks"]
        connection = runtime.connection(settings, "freshbooks")
        result = publish_to_freshbooks(settings, connection, settings.warehouse_path)
        assert result.mismatches == [] and result.of("invoice").created > 20, result.summary()
        # lines whose tax FreshBooks would compute differently are refused before sending, quarantined
        assert result.of("invoice").failed <= result.of("invoice").created // 20
        assert result.quarantined >= result.of("invoice").failed
        numbers = {d["invoice_number"] for d in running.emulator.store.all("invoices")}
        assert numbers and not any(n.startswith("INV-FB-") for n in numbers)
        quarantine = Quarantine("freshbooks")
        run_platform(settings, "freshbooks", freshbooks_source(connection, quarantine), quarantine)
        runtime.stop_emulators()
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        raw = con.execute("select count(*) from raw_freshbooks.invoices where invoice_number like 'INV-%'").fetchone()[0]
        staged = con.execute("select count(*) from staging.stg_freshbooks__invoices "
                             "where invoice_number like 'INV-%'").fetchone()[0]
    finally:
        con.close()
    assert raw == len(numbers) and staged == 0
