"""SAP Business One test support: a running Service Layer emulator on a copy of the small world, a
connection to it, and an independent check of the sales orders it holds against the marts."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sap_business_one.emulator import SapBusinessOneEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, RunningEmulator, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Secret, Settings


def start_b1(settings: Settings, **config) -> RunningEmulator:
    return serve(SapBusinessOneEmulator(Sandbox(settings.sandbox_dir),
                                        EmulatorConfig(time_scale=settings.time_scale, **config)))


def b1_connection(running: RunningEmulator, settings: Settings) -> Connection:
    creds = running.emulator.credentials()
    return Connection("sap_business_one", running.url,
                      {**creds, "password": Secret(creds["password"], "sap_business_one.password")}, settings)


def assert_b1_matches_marts(emulator: SapBusinessOneEmulator, warehouse: Path, exclude_channel: str = "sap_business_one"):
    """Straight from the emulator's store: one live order per non-voided mart invoice with its totals,
    voided ones cancelled or absent, no customer reference twice."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        marts = {r[0]: r[1:] for r in con.execute(
            "SELECT invoice_number, status, currency, total_amount, tax_amount, tax_treatment = 'us_sales_tax', "
            "(SELECT COUNT(*) FROM marts.fct_invoice_lines l WHERE l.invoice_number = i.invoice_number) "
            "FROM marts.fct_invoices i WHERE channel IS DISTINCT FROM ?", [exclude_channel]).fetchall()}
    finally:
        con.close()
    orders = emulator.store.orders()
    refs = Counter(o["NumAtCard"] for o in orders)
    assert not [r for r, n in refs.items() if n > 1], "a customer reference was posted twice"
    by_ref = {o["NumAtCard"]: o for o in orders}
    for number, (status, currency, total, tax, sales_tax, n_lines) in marts.items():
        o = by_ref.get(number)
        if status == "voided":
            assert o is None or o["Cancelled"] == "tYES", number
            continue
        assert o is not None and o["Cancelled"] == "tNO", number
        fc = currency != "GBP"
        assert Decimal(str(o["DocTotalFc" if fc else "DocTotal"])) == total, number
        if sales_tax:  # outside UK VAT: no VAT, the US sales tax a last line to the liability account
            assert Decimal(str(o["VatSumFc" if fc else "VatSum"])) == 0, number
            assert {ln["VatGroup"] for ln in o["DocumentLines"]} == {"OS"}, number
            last = o["DocumentLines"][-1]
            assert (last["ItemCode"], last["AccountCode"]) == ("US-SALES-TAX", "2220"), number
            assert Decimal(str(last["RowTotalFC" if fc else "LineTotal"])) == tax, number
            n_lines += 1
        else:
            assert Decimal(str(o["VatSumFc" if fc else "VatSum"])) == tax, number
        assert len(o["DocumentLines"]) == n_lines, number
    assert set(by_ref) <= set(marts)
