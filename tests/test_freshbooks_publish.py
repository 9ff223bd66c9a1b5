"""The FreshBooks publisher against its emulator: clients, invoices and payments written once;
a re-run sends nothing; a changed mart invoice is updated in place, a voided one deleted, a
payment whose amount changed is updated; a record FreshBooks refuses is quarantined with its
message while the rest are published; dry-run writes nothing; injected faults change nothing;
the read-back equals the marts."""
from __future__ import annotations

from decimal import Decimal

import duckdb

from finance_pipeline.platforms.freshbooks.publish import publish_to_freshbooks
from freshbooks_fixtures import duplicates, fb_env, start_fb  # noqa: F401 - fixture
from xero_fixtures import build_marts, build_payments, set_line_quantity, set_status, set_us_sales_tax


def publish(env, **kw):
    return publish_to_freshbooks(env.settings, env.connection(), env.warehouse, **kw)


def active(emulator, kind):
    return [d for d in emulator.store.all(kind) if d.get("vis_state", 0) == 0]


def test_publish_then_rerun_then_changes(fb_env):
    made = build_marts(fb_env.warehouse, n_invoices=40, n_customers=10)
    build_payments(fb_env.warehouse)
    first = publish(fb_env)
    assert first.mismatches == [], first.mismatches[:5]
    assert first.of("invoice").created == made["invoices"] - made["voided"]
    assert first.of("client").created == made["customers"] or first.of("client").created > 0
    paid = first.of("payment").created
    assert paid > 5
    em = fb_env.emulator
    assert len(active(em, "invoices")) == made["invoices"] - made["voided"]
    assert duplicates(em) == {"invoices": [], "clients": [], "payments": []}
    # a re-run sends nothing
    again = publish(fb_env)
    assert again.writes == 0 and again.mismatches == []
    # a changed line: updated in place (same id); a voided invoice: deleted (vis_state 1)
    target = "INV-1010"
    before = {d["invoice_number"]: d["id"] for d in em.store.all("invoices")}
    set_line_quantity(fb_env.warehouse, target, 1, 555)
    set_status(fb_env.warehouse, "INV-1012", "voided")
    third = publish(fb_env)
    assert third.of("invoice").updated == 1 and third.of("invoice").voided == 1, third.summary()
    after = {d["invoice_number"]: d for d in em.store.all("invoices")}
    assert after[target]["id"] == before[target] and after["INV-1012"]["vis_state"] == 1
    assert third.mismatches == [], third.mismatches[:5]
    assert duplicates(em)["invoices"] == []


def test_us_sales_tax_is_one_line_and_reads_back_equal(fb_env):
    """US sales tax (the state's and county's tax rounded per line, which one FreshBooks percentage cannot
    reproduce): the goods untaxed, the tax one line of its own; the invoice's amount is the marts' total."""
    made = build_marts(fb_env.warehouse, n_invoices=40, n_customers=10)
    build_payments(fb_env.warehouse)
    taxed = set_us_sales_tax(fb_env.warehouse, 3)
    con = duckdb.connect(str(fb_env.warehouse), read_only=True)
    want = dict(con.execute("SELECT invoice_number, tax_amount FROM marts.fct_invoices WHERE tax_treatment = "
                            "'us_sales_tax'").fetchall())
    con.close()
    first = publish(fb_env)
    assert first.mismatches == [] and first.of("invoice").failed == 0, first.summary()
    assert first.of("invoice").created == made["invoices"] - made["voided"]
    held = {d["invoice_number"]: d for d in fb_env.emulator.store.all("invoices")}
    for number in taxed:
        *goods, tax_line = held[number]["lines"]
        assert tax_line["name"] == "US sales tax" and Decimal(tax_line["unit_cost"]["amount"]) == want[number]
        assert not [ln for ln in held[number]["lines"] if Decimal(str(ln.get("taxAmount1") or 0))], number
    assert publish(fb_env).writes == 0


def test_payment_amount_change_updates_the_payment(fb_env):
    build_marts(fb_env.warehouse, n_invoices=20, n_customers=5)
    build_payments(fb_env.warehouse)
    publish(fb_env)
    con = duckdb.connect(str(fb_env.warehouse))
    pid, = con.execute("SELECT payment_id FROM marts.fct_payments WHERE status = 'succeeded' AND refunded_amount = 0 "
                       "ORDER BY payment_id LIMIT 1").fetchone()
    con.execute("UPDATE marts.fct_payments SET refunded_amount = 1.00 WHERE payment_id = ?", [pid])
    con.close()
    result = publish(fb_env)
    assert result.of("payment").updated == 1, result.summary()
    (doc,) = [p for p in fb_env.emulator.store.all("payments") if p["note"].endswith(pid)]
    assert doc["vis_state"] == 0 and Decimal(doc["amount"]["amount"]) > 0
    assert result.mismatches == []


def test_refused_record_is_quarantined_and_the_rest_published(fb_env):
    made = build_marts(fb_env.warehouse, n_invoices=15, n_customers=5)
    con = duckdb.connect(str(fb_env.warehouse))
    con.execute("UPDATE marts.fct_invoices SET currency = 'XXX' WHERE invoice_number = 'INV-1003'")
    con.close()
    result = publish(fb_env)
    assert result.of("invoice").failed == 1
    assert result.of("invoice").created == made["invoices"] - made["voided"] - 1
    assert result.quarantined >= 1
    con = duckdb.connect(str(fb_env.warehouse), read_only=True)
    reason, = con.execute("SELECT reason FROM ops.quarantine WHERE platform = 'freshbooks' "
                          "AND record_id = 'INV-1003'").fetchone()
    con.close()
    assert "currency" in reason.lower()


def test_dry_run_writes_nothing(fb_env):
    build_marts(fb_env.warehouse, n_invoices=10, n_customers=4)
    result = publish(fb_env, dry_run=True)
    assert result.dry_run and result.dry_run["would_send"].get("invoice.create", 0) > 0
    assert fb_env.emulator.store.all("invoices") == [] and fb_env.emulator.store.all("clients") == []


def test_faults_change_nothing(tmp_path):
    from conftest import make_settings
    from freshbooks_fixtures import FbEnv

    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_fb(settings, fault_rate=0.15, write_faults=("429", "503", "500_after_commit"))
    env = FbEnv(settings, running)
    try:
        made = build_marts(env.warehouse, n_invoices=25, n_customers=6)
        build_payments(env.warehouse)
        for _ in range(6):
            result = publish(env)
            if not result.mismatches and not any(c.unresolved or c.failed for c in result.counts.values()):
                break
        assert result.mismatches == []
        assert len(active(env.emulator, "invoices")) == made["invoices"] - made["voided"]
        assert duplicates(env.emulator) == {"invoices": [], "clients": [], "payments": []}
        assert sum(env.emulator.faults.values()) > 0
    finally:
        running.stop()


def test_client_freshbooks_already_holds_is_adopted_not_written(tmp_path, small_world_dir):
    """A trade customer the workroom already has as a FreshBooks client (its customer id in the note; the
    sandbox refuses writes to those, as a shared account would): used as it is, never written, even
    when the marts later give it another name; its invoices go to that client and read back equal."""
    import shutil

    from conftest import make_settings
    from freshbooks_fixtures import FbEnv

    settings = make_settings(tmp_path)
    shutil.copytree(small_world_dir / "sandbox", settings.sandbox_dir)
    env = FbEnv(settings, start_fb(settings))
    try:
        own = [c for c in env.emulator._world()[2] if c.get("note")]
        assert own, "the small world has no FreshBooks clients"
        theirs = own[0]
        made = build_marts(env.warehouse, n_invoices=20, n_customers=5)
        con = duckdb.connect(str(env.warehouse))
        customer, = con.execute("SELECT customer_id FROM marts.fct_invoices WHERE invoice_number = 'INV-1001'").fetchone()
        con.execute("UPDATE marts.fct_invoices SET customer_id = ? WHERE customer_id = ?", [theirs["note"], customer])
        mine = [n for (n,) in con.execute("SELECT invoice_number FROM marts.fct_invoices WHERE customer_id = ? "
                                          "AND status <> 'voided'", [theirs["note"]]).fetchall()]
        con.close()
        first = publish(env)
        assert first.of("client").failed == 0 and first.of("client").adopted == 1, first.summary()
        assert first.of("client").created == made["customers"] - 1
        assert first.mismatches == [] and first.of("invoice").failed == 0, first.summary()
        assert not [c for c in env.emulator.store.all("clients") if c.get("note") == theirs["note"]]
        held = {d["invoice_number"]: d for d in env.emulator.store.all("invoices")}
        assert mine and {held[n]["customerid"] for n in mine} == {theirs["id"]}

        con = duckdb.connect(str(env.warehouse))
        con.execute("UPDATE marts.fct_invoices SET customer_name = 'Renamed Ltd' WHERE customer_id = ?",
                    [theirs["note"]])
        con.close()
        again = publish(env)
        assert again.writes == 0 and again.of("client").failed == 0 and again.mismatches == [], again.summary()
    finally:
        env.running.stop()
