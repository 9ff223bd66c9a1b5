"""Xero complete: card payments applied to trade invoices, and one summary invoice per payout through
the clearing account (fees, refunds and tax on their own lines) paid from the bank, so the payout
equals the deposit; refused payouts quarantined; re-runs write nothing."""
from __future__ import annotations

from decimal import Decimal

import duckdb

from finance_pipeline.platforms.xero.publish import publish_trade_invoices
from xero_fixtures import (  # noqa: F401  (xero_env is a fixture)
    XeroEnv, assert_xero_matches_marts, build_marts, build_payments, build_payout_marts, xero_env,
)


def publish(env: XeroEnv, **kw):
    return publish_trade_invoices(env.settings, env.connection(), env.warehouse, **kw)


def test_payments_and_payout_summaries_match_the_bank(xero_env):
    made = build_marts(xero_env.warehouse, n_invoices=120)
    build_payments(xero_env.warehouse)
    payouts = build_payout_marts(xero_env.warehouse)
    result = publish(xero_env)
    errors = {e.key: e.message for e in result.errors}
    assert set(errors) == set(payouts["break"]), errors
    assert "does not reconcile" in errors[payouts["break"][0]]
    assert result.mismatches == [], result.mismatches[:5]
    assert result.created == made["invoices"] - made["voided"]
    assert_xero_matches_marts(xero_env.emulator, xero_env.warehouse)

    # trade invoices: Xero's AmountPaid equals what the marts apply (net of refunded duplicates)
    con = duckdb.connect(str(xero_env.warehouse), read_only=True)
    paid = dict(con.execute("SELECT invoice_number, LEAST(SUM(amount - refunded_amount), ANY_VALUE(i.total_amount)) "
                            "FROM marts.fct_payments p JOIN marts.fct_invoices i USING (invoice_number) "
                            "WHERE p.status = 'succeeded' GROUP BY 1").fetchall())
    con.close()
    docs = {d["InvoiceNumber"]: d for d in xero_env.emulator.invoices()}
    for number, amount in paid.items():
        assert docs[number]["AmountPaid"] == amount, number
        assert docs[number]["Status"] == ("PAID" if amount == docs[number]["Total"] else "AUTHORISED")
    trade_payments = [p for p in xero_env.emulator.payments() if not p["Reference"].startswith("PO-")]
    assert len(trade_payments) == len(paid) and {p["Account"]["Code"] for p in trade_payments} == {"835"}

    # payouts: one invoice each, total = payout = the bank payment; tax and fees on their own lines;
    # a negative payout is a credit note refunded from the bank (the debit on the statement)
    notes = {n["InvoiceNumber"]: n for n in xero_env.emulator.credit_notes()}
    assert set(notes) == set(payouts["negative"])
    for number in payouts["negative"]:
        amount = payouts["postable"][number]
        assert amount < 0 and notes[number]["Total"] == -amount and notes[number]["Status"] == "PAID"
        refund = [p for p in xero_env.emulator.payments() if p["Reference"] == number]
        assert len(refund) == 1 and refund[0]["Amount"] == -amount and refund[0]["Account"]["Code"] == "090"
        assert refund[0]["PaymentType"] == "ARCREDITPAYMENT"
    for number, amount in payouts["postable"].items():
        if amount < 0:
            continue
        doc = docs[number]
        assert doc["Total"] == amount and doc["Status"] == "PAID" and doc["AmountPaid"] == amount, number
        bank = [p for p in xero_env.emulator.payments() if p["Reference"] == number]
        assert len(bank) == 1 and bank[0]["Account"]["Code"] == "090" and bank[0]["Amount"] == amount
        accounts = {line["AccountCode"] for line in doc["LineItems"]}
        assert "404" in accounts  # fees
        if "-shopify-" in number:
            assert {"200", "825"} <= accounts  # sales ex tax, and the tax on its own line
        else:
            assert "835" in accounts and "200" not in accounts  # trade charges empty the clearing account
    for number in payouts["negative"] + payouts["break"]:
        assert number not in docs
    summaries = [n for n in docs if n.startswith("PO-")]  # the payout in transit is not there yet
    assert len(summaries) + len(notes) == len(payouts["postable"])

    again = publish(xero_env)
    assert again.writes == 0 and again.mismatches == [], again.summary()


def test_a_refunded_payment_is_deleted_and_entered_again(xero_env):
    build_marts(xero_env.warehouse, n_invoices=40)
    build_payments(xero_env.warehouse)
    assert publish(xero_env, payouts=False).ok
    con = duckdb.connect(str(xero_env.warehouse))
    pid, number, amount = con.execute(
        "SELECT payment_id, invoice_number, amount FROM marts.fct_payments WHERE status = 'succeeded' "
        "AND refunded_amount = 0 ORDER BY payment_id LIMIT 1").fetchone()
    con.execute("UPDATE marts.fct_payments SET refunded_amount = ? WHERE payment_id = ?",
                [amount - Decimal("10.00"), pid])
    con.close()
    result = publish(xero_env, payouts=False)
    assert result.ok, result.summary()
    live = [p for p in xero_env.emulator.payments() if p["Reference"] == pid and p["Status"] == "AUTHORISED"]
    assert len(live) == 1 and live[0]["Amount"] == Decimal("10.00")
    doc = next(d for d in xero_env.emulator.invoices() if d["InvoiceNumber"] == number)
    assert doc["AmountPaid"] == Decimal("10.00") and doc["Status"] == "AUTHORISED"
    assert publish(xero_env, payouts=False).writes == 0


def test_dry_run_writes_nothing(xero_env):
    build_marts(xero_env.warehouse, n_invoices=30)
    build_payments(xero_env.warehouse)
    build_payout_marts(xero_env.warehouse, n_shopify=4)
    result = publish(xero_env, dry_run=True)
    would = result.dry_run["would_send"]
    assert would["invoice.create"] == 29 and would["payment.create"] > 0 and would["payout.create"] >= 3
    assert would["payout_payment.create"] == would["payout.create"]
    assert xero_env.emulator.invoices() == [] and xero_env.emulator.contacts() == []
