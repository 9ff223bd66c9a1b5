"""Refunds of trade invoices become Xero credit notes allocated to their invoice: one per refund,
nothing new on a re-run, an edited refund updated in place (allocation removed first, as Xero
requires), a bad refund quarantined while the rest are published."""
from __future__ import annotations

from decimal import Decimal

import duckdb

from xero_fixtures import XeroEnv, build_marts, xero_env  # noqa: F401  (xero_env is a fixture)
from finance_pipeline.platforms.xero.publish import publish_trade_invoices

REFUNDS_DDL = """
CREATE OR REPLACE TABLE marts.fct_refunds (
    channel VARCHAR, refund_id VARCHAR, order_id VARCHAR, refunded_at TIMESTAMPTZ, currency VARCHAR,
    goods_amount DECIMAL(18,2), shipping_amount DECIMAL(18,2), tax_amount DECIMAL(18,2),
    total_amount DECIMAL(18,2), payment_id VARCHAR);
"""


def publish(env: XeroEnv, **kw):
    return publish_trade_invoices(env.settings, env.connection(), env.warehouse, payouts=False, **kw)


def build_refunds(path, n: int = 6) -> dict[str, tuple[str, Decimal]]:
    """A partial refund (a third of the goods, its tax, part of the shipping) of `n` open invoices."""
    con = duckdb.connect(str(path))
    try:
        con.execute(REFUNDS_DDL)
        rows = con.execute(
            "SELECT i.invoice_number, i.order_id, i.currency, i.issued_on, i.subtotal_amount, i.tax_amount "
            "FROM marts.fct_invoices i WHERE status <> 'voided' AND subtotal_amount > 30 AND tax_amount > 0 "
            "ORDER BY invoice_number LIMIT ?", [n]).fetchall()
        out = {}
        for k, (number, order, currency, issued, sub, tax) in enumerate(rows):
            goods = (sub / 3).quantize(Decimal("0.01"))
            ship = Decimal("2.50")
            rtax = (tax * (goods + ship) / sub).quantize(Decimal("0.01"))
            rid = f"re_{k:03d}"
            con.execute("INSERT INTO marts.fct_refunds VALUES ('shopify', ?, ?, ?::TIMESTAMPTZ, ?, ?, ?, ?, ?, NULL)",
                        [rid, order, f"{issued} 12:00:00+00", currency, goods, ship, rtax, goods + ship + rtax])
            out[rid] = (number, goods + ship + rtax, rtax)
        return out
    finally:
        con.close()


def notes(env: XeroEnv) -> dict[str, dict]:
    return {d["InvoiceNumber"]: d for d in env.emulator.credit_notes()}


def invoices(env: XeroEnv) -> dict[str, dict]:
    return {d["InvoiceNumber"]: d for d in env.emulator.invoices()}


def test_refunds_become_allocated_credit_notes_once(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    refunds = build_refunds(xero_env.warehouse)
    assert len(refunds) == 6
    con = duckdb.connect(str(xero_env.warehouse))  # same order id in another channel: not a trade invoice's
    con.execute("INSERT INTO marts.fct_refunds SELECT 'amazon', 'amz-1', order_id, refunded_at, currency, "
                "goods_amount, shipping_amount, tax_amount, total_amount, NULL FROM marts.fct_refunds LIMIT 1")
    con.close()
    first = publish(xero_env)
    assert first.ok, first.summary()
    assert first.mismatches == []
    got, invs = notes(xero_env), invoices(xero_env)
    assert set(got) == {f"CN-{r}" for r in refunds}
    for rid, (number, total, tax) in refunds.items():
        note, inv = got[f"CN-{rid}"], invs[number]
        assert note["Total"] == total and note["TotalTax"] == tax  # the refund's tax to the cent
        assert note["Type"] == "ACCRECCREDIT" and note["Reference"] == number
        assert note["Contact"]["ContactID"] == inv["Contact"]["ContactID"]
        assert note["CurrencyCode"] == inv["CurrencyCode"] and note["CurrencyRate"] == inv["CurrencyRate"]
        assert {l["TaxType"] for l in note["LineItems"]} <= {l["TaxType"] for l in inv["LineItems"]}
        # allocated up to what the invoice owed: the invoice owes that much less
        assert note["AmountCredited"] == min(total, inv["Total"] - inv["AmountPaid"])
        assert inv["AmountCredited"] == note["AmountCredited"]
        assert inv["AmountDue"] == inv["Total"] - inv["AmountPaid"] - inv["AmountCredited"]
        assert [a["Amount"] for a in note.get("Allocations", [])] == [note["AmountCredited"]]

    again = publish(xero_env)
    assert again.ok and again.mismatches == []
    assert again.of("credit_note").created == 0 and again.of("credit_note").updated == 0
    assert again.of("credit_note").unchanged == 6 and again.of("credit_allocation").unchanged == 6
    assert notes(xero_env) == got  # nothing new, nothing touched


def test_an_edited_refund_is_updated_in_place(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    refunds = build_refunds(xero_env.warehouse, n=3)
    assert publish(xero_env).ok
    rid = sorted(refunds)[0]
    before = notes(xero_env)[f"CN-{rid}"]
    con = duckdb.connect(str(xero_env.warehouse))
    con.execute("UPDATE marts.fct_refunds SET shipping_amount = 0, total_amount = goods_amount + tax_amount "
                "WHERE refund_id = ?", [rid])
    con.close()
    second = publish(xero_env)
    assert second.ok and second.mismatches == [], second.summary()
    assert second.of("credit_note").updated == 1
    after = notes(xero_env)[f"CN-{rid}"]
    assert after["InvoiceID"] == before["InvoiceID"]  # same credit note, edited
    assert after["Total"] == before["Total"] - Decimal("2.50") and len(after["LineItems"]) == 1
    assert len(after["Allocations"]) == 1 and after["AmountCredited"] == after["Total"]
    inv = invoices(xero_env)[refunds[rid][0]]
    assert inv["AmountCredited"] == after["Total"]
    assert len(notes(xero_env)) == 3


def test_a_bad_refund_is_quarantined_and_the_rest_published(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    refunds = build_refunds(xero_env.warehouse, n=4)
    bad = sorted(refunds)[1]
    con = duckdb.connect(str(xero_env.warehouse))
    con.execute("UPDATE marts.fct_refunds SET currency = 'JPY' WHERE refund_id = ?", [bad])  # not the invoice's
    con.close()
    result = publish(xero_env)
    assert result.of("credit_note").failed == 1
    assert {e.key for e in result.errors if e.object_type == "credit_note"} == {f"CN-{bad}"}
    assert set(notes(xero_env)) == {f"CN-{r}" for r in refunds if r != bad}
    assert result.quarantined


def test_emulator_refuses_allocations_xero_would_refuse(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    refunds = build_refunds(xero_env.warehouse, n=1)
    assert publish(xero_env).ok
    (rid,) = refunds
    note = notes(xero_env)[f"CN-{rid}"]
    inv = invoices(xero_env)[refunds[rid][0]]
    client = xero_env.connection()
    from finance_pipeline.platforms.xero.client import make_client
    from finance_pipeline.http import ApiError

    api = make_client(client)
    try:
        try:
            api.request("PUT", f"CreditNotes/{note['InvoiceID']}/Allocations",
                        json={"Allocations": [{"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": Decimal("1.00"),
                                               "Date": "2025-01-01"}]})
            raise AssertionError("an allocation above the remaining credit was accepted")
        except ApiError as exc:
            assert exc.status == 400 and b"remaining credit" in (exc.body if isinstance(exc.body, bytes)
                                                                 else str(exc.body).encode())
        try:  # an allocated credit note cannot be edited
            api.request("POST", f"CreditNotes/{note['InvoiceID']}", json={"Reference": "changed"})
            raise AssertionError("an allocated credit note was edited")
        except ApiError as exc:
            assert exc.status == 400
    finally:
        api.close()


def test_a_refund_of_a_paid_invoice_is_a_refunded_credit_note(xero_env):
    from xero_fixtures import build_payments

    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    build_payments(xero_env.warehouse)
    con = duckdb.connect(str(xero_env.warehouse))
    con.execute(REFUNDS_DDL)
    number, order, currency, issued, total = con.execute(
        "SELECT invoice_number, order_id, currency, issued_on, total_amount FROM marts.fct_invoices "
        "WHERE status <> 'voided' AND open_amount = 0 AND tax_amount > 0 ORDER BY invoice_number LIMIT 1").fetchone()
    con.execute("INSERT INTO marts.fct_refunds VALUES ('shopify', 're_cash', ?, ?::TIMESTAMPTZ, ?, 10.00, 0, 2.00, "
                "12.00, NULL)", [order, f"{issued} 12:00:00+00", currency])
    con.close()
    first = publish(xero_env)
    assert first.ok and first.mismatches == [], first.summary()
    note = notes(xero_env)["CN-re_cash"]
    inv = invoices(xero_env)[number]
    assert inv["AmountPaid"] == total and inv["AmountCredited"] == 0  # nothing owed: no allocation
    assert note["Status"] == "PAID" and note["AmountPaid"] == Decimal("12.00") and not note.get("Allocations")
    refunds = [(p["Amount"], p["Account"]["Code"], p["Status"]) for p in xero_env.emulator.payments()
               if p.get("CreditNote", {}).get("CreditNoteID") == note["InvoiceID"]]
    assert refunds == [(Decimal("12.00"), "090", "AUTHORISED")]
    n_payments = len(xero_env.emulator.payments())
    again = publish(xero_env)
    assert again.of("credit_refund").unchanged == 1 and len(xero_env.emulator.payments()) == n_payments
    assert notes(xero_env)["CN-re_cash"] == note

    # edited: Xero refuses to edit a refunded credit note, so the refund payment goes, the note is
    # edited in place and refunded again for the new amount
    con = duckdb.connect(str(xero_env.warehouse))
    con.execute("UPDATE marts.fct_refunds SET goods_amount = 20.00, tax_amount = 4.00, total_amount = 24.00 "
                "WHERE refund_id = 're_cash'")
    con.close()
    third = publish(xero_env)
    assert third.ok and third.mismatches == [], third.summary()
    edited = notes(xero_env)["CN-re_cash"]
    assert edited["InvoiceID"] == note["InvoiceID"] and edited["Total"] == Decimal("24.00")
    assert edited["TotalTax"] == Decimal("4.00") and edited["AmountPaid"] == Decimal("24.00")
    mine = [(p["Amount"], p["Status"]) for p in xero_env.emulator.payments()
            if p.get("CreditNote", {}).get("CreditNoteID") == note["InvoiceID"]]
    assert sorted(mine) == [(Decimal("12.00"), "DELETED"), (Decimal("24.00"), "AUTHORISED")]


def test_ten_kills_while_credit_notes_are_posted(tmp_path):
    """kill -9 at ten random points of runs that post credit notes, their allocations and a cash refund
    (the invoices are already in Xero), then a clean run: one credit note per refund, each allocated
    once, one cash refund, read-back clean."""
    import json

    from conftest import make_settings
    from publish_kill import run_to_end, run_trials
    from finance_pipeline.sandbox import runtime
    from xero_fixtures import build_payments, start_xero

    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_marts(settings.warehouse_path, n_invoices=80, n_customers=10)
    build_payments(settings.warehouse_path)
    running = start_xero(settings)
    emulator = running.emulator
    runtime.write_endpoints(settings, {"xero": running})
    try:
        assert json.loads(run_to_end("xero", settings, tmp_path))["mismatch_count"] == 0  # invoices first
        refunds = build_refunds(settings.warehouse_path, n=25)
        con = duckdb.connect(str(settings.warehouse_path))
        order, currency, issued = con.execute(
            "SELECT order_id, currency, issued_on FROM marts.fct_invoices WHERE status <> 'voided' "
            "AND open_amount = 0 AND tax_amount > 0 ORDER BY invoice_number LIMIT 1").fetchone()
        con.execute("INSERT INTO marts.fct_refunds VALUES ('shopify', 're_cash', ?, ?::TIMESTAMPTZ, ?, 10.00, 0, "
                    "2.00, 12.00, NULL)", [order, f"{issued} 12:00:00+00", currency])
        con.close()
        emulator.write_delay_s = 0.3

        def writes() -> int:
            stats = emulator.stats()
            return sum(stats.get(k, 0) for k in ("credit_notes_created", "credit_notes_updated", "allocations_created",
                                                 "allocations_deleted", "payments_created", "payments_deleted"))

        kills = run_trials("xero", settings, tmp_path, trials=10, writes=writes, max_wait_s=1.5, seed=3)
        print("kills (delay s, writes):", kills)
        assert sum(1 for _, w in kills if w > 0) >= 8, kills  # the kills land among the writes
        emulator.write_delay_s = 0.0
        summary = json.loads(run_to_end("xero", settings, tmp_path))
        assert summary["mismatch_count"] == 0, summary
        got = notes_of(emulator)
        assert sorted(got) == sorted([f"CN-{r}" for r in refunds] + ["CN-re_cash"])
        assert emulator.stats()["credit_notes_created"] == len(got)  # never a second create
        for rid, (number, total, _) in refunds.items():
            note = got[f"CN-{rid}"]
            assert note["Total"] == total and len(note.get("Allocations", [])) <= 1
            assert note["AmountCredited"] + note["AmountPaid"] == total and note["Status"] == "PAID"
        cash = [(p["CreditNote"]["CreditNoteNumber"], p["Amount"]) for p in emulator.payments()
                if p.get("CreditNote") and p["Status"] == "AUTHORISED" and p["Reference"].startswith("CN-")]
        assert len(cash) == len({n for n, _ in cash})  # at most one cash refund per credit note
        assert sorted(cash) == sorted((n, d["AmountPaid"]) for n, d in got.items() if d["AmountPaid"])
        assert ("CN-re_cash", Decimal("12.00")) in cash
        assert got["CN-re_cash"]["Status"] == "PAID"
        docs = {d["InvoiceNumber"]: d for d in emulator.invoices()}
        for number, inv in docs.items():
            assert inv["AmountDue"] == inv["Total"] - inv["AmountPaid"] - inv["AmountCredited"] >= 0
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            assert con.execute("SELECT COUNT(*) FROM ops.publish_ledger WHERE status = 'pending'").fetchone()[0] == 0
        finally:
            con.close()
    finally:
        running.stop()


def notes_of(emulator) -> dict[str, dict]:
    return {d["InvoiceNumber"]: d for d in emulator.credit_notes()}


def test_read_back_sees_an_allocation_removed_in_xero(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    refunds = build_refunds(xero_env.warehouse, n=2)
    assert publish(xero_env).mismatches == []
    rid = sorted(refunds)[0]
    note = notes(xero_env)[f"CN-{rid}"]
    assert xero_env.emulator.store.delete_allocation(note["InvoiceID"], note["Allocations"][0]["AllocationID"])
    found = {(m.key, m.field) for m in publish(xero_env).mismatches}
    assert found == {(f"CN-{rid}", "RemainingCredit"), (refunds[rid][0], "AmountDue")}


def test_dry_run_posts_no_credit_note(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    build_refunds(xero_env.warehouse, n=2)
    result = publish(xero_env, dry_run=True)
    assert xero_env.emulator.credit_notes() == [] and xero_env.emulator.invoices() == []
    assert "credit_note" in str(result.dry_run)


def test_a_credit_note_xero_refuses_is_quarantined_with_xeros_message(xero_env):
    from finance_pipeline.platforms.xero.client import make_client

    build_marts(xero_env.warehouse, n_invoices=40, n_customers=8)
    assert publish(xero_env).ok  # the invoices first
    refunds = build_refunds(xero_env.warehouse, n=4)
    victim_number = refunds[sorted(refunds)[0]][0]
    victim = invoices(xero_env)[victim_number]["Contact"]["ContactID"]
    hit = {r for r, (n, _, _) in refunds.items() if invoices(xero_env)[n]["Contact"]["ContactID"] == victim}
    api = make_client(xero_env.connection())
    try:  # someone archives the customer in Xero: Xero refuses new documents for it
        api.request("POST", f"Contacts/{victim}", json={"ContactID": victim, "ContactStatus": "ARCHIVED"})
    finally:
        api.close()
    result = publish(xero_env)
    errors = {e.key: e.message for e in result.errors if e.object_type == "credit_note"}
    assert set(errors) == {f"CN-{r}" for r in hit}
    assert all("archived" in m for m in errors.values()), errors
    assert set(notes(xero_env)) == {f"CN-{r}" for r in refunds if r not in hit}
    assert result.quarantined
