"""Shared pieces of the Zoho Books publisher tests: the emulator on a copy of the small world (the
EU desk's own documents are there too, as in a real organisation) and the synthetic marts of
`xero_fixtures` (trade invoices of the Shopify channel, Stripe payments against them)."""
from __future__ import annotations

import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

from conftest import make_settings
from finance_pipeline.platforms.zoho_books.emulator import ACCOUNTS, ZohoBooksEmulator
from finance_pipeline.publish.marts import load_invoice_payments, load_trade_invoices
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, RunningEmulator, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Settings


def zoho_settings(tmp_path: Path, small_world_dir: Path) -> Settings:
    settings = make_settings(tmp_path)
    shutil.copytree(small_world_dir / "sandbox", settings.sandbox_dir)
    return settings


def start_zoho(settings: Settings, **config) -> RunningEmulator:
    config.setdefault("time_scale", settings.time_scale)
    running = serve(ZohoBooksEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(**config)))
    runtime.write_endpoints(settings, {"zoho_books": running})
    return running


def writes(emulator: ZohoBooksEmulator) -> int:
    return sum(v for k, v in emulator.store.counters().items()
               if k.endswith(("_created", "_updated", "_voided", "_deleted")))


def assert_no_duplicates(emulator: ZohoBooksEmulator) -> None:
    for kind, key in (("invoice", "invoice_number"), ("contact", "contact_number"), ("payment", "reference_number")):
        counts = Counter(d[key] for d in emulator.store.docs(kind))
        assert not [k for k, n in counts.items() if n > 1], (kind, counts.most_common(3))


def assert_zoho_matches_marts(emulator: ZohoBooksEmulator, warehouse: Path) -> None:
    """Independent of the publisher's own comparison: the emulator's store against the marts."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        invoices = load_trade_invoices(con, exclude_channel="zoho_books")
        payments = load_invoice_payments(con, invoices)
    finally:
        con.close()
    applied: dict[str, Decimal] = Counter()
    for p in payments:
        applied[p.invoice_number] += p.amount
    held = {d["invoice_number"]: d for d in emulator.docs("invoice")}
    for inv in invoices:
        if inv.voided:
            assert inv.invoice_number not in held or held[inv.invoice_number]["status"] == "void", inv.invoice_number
            continue
        doc = held[inv.invoice_number]
        if inv.tax_treatment == "us_sales_tax":  # outside UK VAT: the tax is a line to the liability account
            liability = {a["account_id"] for a in ACCOUNTS if a["account_code"] == "2220"}
            tax_lines = [ln for ln in doc["line_items"] if ln.get("account_id") in liability]
            assert [Decimal(str(ln["item_total"])) for ln in tax_lines] == [inv.tax_amount], inv.invoice_number
            assert doc["tax_total"] == 0 and all(Decimal(str(ln["line_tax"])) == 0 for ln in doc["line_items"]), \
                inv.invoice_number
        else:
            assert doc["tax_total"] == inv.tax_amount, inv.invoice_number
        assert doc["total"] == inv.total_amount, inv.invoice_number
        assert doc["balance"] == inv.total_amount - applied[inv.invoice_number], inv.invoice_number
        assert doc["currency_code"] == inv.currency and doc["due_date"] == inv.due_on.isoformat()
