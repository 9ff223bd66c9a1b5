"""QuickBooks test support: the emulator on a loopback port, a connection through the sandbox path,
and an independent comparison of what the emulator holds with the marts."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import make_settings
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.quickbooks.emulator import QuickBooksEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, RunningEmulator, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Settings
from xero_fixtures import mart_rows


@dataclass
class QboEnv:
    settings: Settings
    running: RunningEmulator

    @property
    def emulator(self) -> QuickBooksEmulator:
        return self.running.emulator  # type: ignore[return-value]

    @property
    def warehouse(self) -> Path:
        return self.settings.warehouse_path

    def connection(self) -> Connection:
        runtime.write_endpoints(self.settings, {"quickbooks": self.running})
        return runtime.connection(self.settings, "quickbooks")


def start_qbo(settings: Settings, **config) -> RunningEmulator:
    config.setdefault("time_scale", settings.time_scale)
    return serve(QuickBooksEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(**config)))


@pytest.fixture
def qbo_env(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_qbo(settings)
    yield QboEnv(settings, running)
    running.stop()


def expected_balances(warehouse: Path) -> dict[str, Decimal]:
    """Balance each invoice should show once its payments are applied: total - min(total, net paid)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        paid: dict[str, Decimal] = defaultdict(Decimal)
        has_payments = bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = 'marts' "
                                        "AND table_name = 'fct_payments'").fetchone())
        if has_payments:
            for number, amount in con.execute(
                    "SELECT invoice_number, SUM(amount - refunded_amount) FROM marts.fct_payments "
                    "WHERE status = 'succeeded' AND invoice_number IS NOT NULL GROUP BY 1").fetchall():
                paid[number] = amount
        totals = dict(con.execute("SELECT invoice_number, total_amount FROM marts.fct_invoices").fetchall())
    finally:
        con.close()
    return {n: t - min(t, paid.get(n, Decimal(0))) for n, t in totals.items()}


def assert_qbo_matches_marts(emulator: QuickBooksEmulator, warehouse: Path) -> None:
    """Read the emulator's store directly: one invoice per number, the marts' totals, tax, balance."""
    marts = mart_rows(warehouse)
    balances = expected_balances(warehouse)
    docs = emulator.docs("Invoice")
    numbers = [d.get("DocNumber") for d in docs]
    dupes = {n for n in numbers if numbers.count(n) > 1}
    assert not dupes, f"duplicate DocNumbers in QuickBooks: {sorted(dupes)[:10]}"
    by_number = {d["DocNumber"]: d for d in docs}
    problems = []
    for number, m in marts.items():
        doc = by_number.pop(number, None)
        if m["status"] == "voided":
            if doc is not None and doc.get("PrivateNote") != "Voided":
                problems.append((number, "voided", doc.get("PrivateNote")))
            continue
        if doc is None:
            problems.append((number, "presence", "missing"))
            continue
        sales_lines = [line for line in doc["Line"] if line["DetailType"] == "SalesItemLineDetail"]
        for field, expected, actual in (
                ("TotalAmt", m["total_amount"], doc["TotalAmt"]),
                ("TotalTax", m["tax_amount"], doc["TxnTaxDetail"]["TotalTax"]),
                ("Balance", balances[number], doc["Balance"]),
                ("TxnDate", m["issued_on"].isoformat(), doc["TxnDate"]),
                ("DueDate", m["due_on"].isoformat(), doc["DueDate"]),
                ("CurrencyRef", m["currency"], doc["CurrencyRef"]["value"]),
                ("lines", m["line_count"], len(sales_lines))):
            if expected != actual:
                problems.append((number, field, expected, actual))
    assert not problems, f"{len(problems)} differences, e.g. {problems[:5]}"
    assert not by_number, f"invoices in QuickBooks that the marts lack: {sorted(by_number)[:5]}"
