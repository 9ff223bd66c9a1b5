"""Xero test support: synthetic trade-invoice marts, a running emulator, and an independent check.

The marts do not exist yet, so `build_marts` writes `marts.fct_invoices` / `marts.fct_invoice_lines`
with the columns of docs/architecture.md ("Marts the publishers read") and realistic rows: trade
customers in GB / EU / US / AU, GBP/EUR/USD/AUD, UK VAT at 20 % and zero-rated treatments, fabric
by the 10 cm with 4-dp unit prices, discounts, shipping lines, net-30/60 terms, one voided invoice.
Money is Decimal throughout, line_amount = round(qty × unit − discount, 2), tax = round(line × rate, 2).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from conftest import make_settings
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.xero.emulator import XeroEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, RunningEmulator, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Settings

CENT = Decimal("0.01")
FX_PER_GBP = {"GBP": Decimal("1"), "EUR": Decimal("1.17"), "USD": Decimal("1.27"), "AUD": Decimal("1.93")}
REGIONS = [  # country, currency, tax treatment, weight
    ("GB", "GBP", "uk_vat", 50), ("FR", "EUR", "eu_reverse_charge", 8), ("DE", "EUR", "eu_reverse_charge", 8),
    ("IE", "EUR", "eu_reverse_charge", 6), ("NL", "EUR", "eu_reverse_charge", 4),
    ("US", "USD", "us_resale_exempt", 14), ("AU", "AUD", "export_zero_rated", 10),
]
PRODUCTS = [  # sku, description, unit price, quantity range
    ("FAB-LIN-NAT", "Linen fabric, natural (per 10 cm)", Decimal("1.85"), (60, 600)),
    ("FAB-VEL-NVY", "Cotton velvet, navy (per 10 cm)", Decimal("3.20"), (60, 400)),
    ("FAB-VOI-WHT", "Sheer voile, white (per 10 cm)", Decimal("0.9875"), (80, 600)),
    ("CUR-RM-140", "Ready-made lined curtain 140 x 220", Decimal("45.00"), (2, 24)),
    ("CUR-RM-228", "Ready-made blackout curtain 228 x 228", Decimal("79.5000"), (2, 16)),
    ("TRK-ALU-200", "Aluminium curtain track 200 cm", Decimal("28.50"), (2, 24)),
    ("POL-OAK-180", "Oak curtain pole 180 cm, finials", Decimal("39.90"), (2, 20)),
    ("BLD-ROM-090", "Made-to-measure roman blind 90 cm", Decimal("52.00"), (1, 12)),
]
PLACES = ["Bath", "Harrogate", "Lyon", "Cork", "Utrecht", "Austin", "Perth", "Hamburg", "Ludlow", "Brighton"]
WORDS = ["Interiors", "Design Studio", "Hotels", "Home Store", "Drapery", "Living", "Furnishings"]


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


MARTS_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE OR REPLACE TABLE marts.fct_invoices (
    invoice_number VARCHAR PRIMARY KEY, channel VARCHAR, order_id BIGINT, order_number VARCHAR,
    customer_id VARCHAR, customer_name VARCHAR, customer_email VARCHAR, customer_country VARCHAR,
    currency VARCHAR, issued_on DATE, due_on DATE, terms_days INTEGER, tax_treatment VARCHAR,
    subtotal_amount DECIMAL(18,2), tax_amount DECIMAL(18,2), total_amount DECIMAL(18,2),
    paid_amount DECIMAL(18,2), open_amount DECIMAL(18,2), status VARCHAR,
    total_amount_home DECIMAL(18,2), open_amount_home DECIMAL(18,2), updated_at TIMESTAMPTZ);
CREATE OR REPLACE TABLE marts.fct_invoice_lines (
    invoice_number VARCHAR, line_number INTEGER, kind VARCHAR, sku VARCHAR, description VARCHAR,
    quantity INTEGER, unit_amount DECIMAL(18,4), discount_amount DECIMAL(18,2), line_amount DECIMAL(18,2),
    tax_amount DECIMAL(18,2), tax_rate DECIMAL(9,4), account_kind VARCHAR,
    PRIMARY KEY (invoice_number, line_number));
"""


def build_marts(path: Path, n_invoices: int = 300, n_customers: int = 40, seed: int = 11,
                voided: tuple[str, ...] = ("INV-1007",)) -> dict:
    """Create the two marts in the DuckDB at `path`; returns a few counts for assertions."""
    rng = random.Random(seed)
    customers = []
    for i in range(n_customers):
        country, currency, treatment, _ = rng.choices(REGIONS, [r[3] for r in REGIONS])[0]
        name = f"{rng.choice(PLACES)} {rng.choice(WORDS)} {i + 1}"
        customers.append({"id": str(7_390_000_000 + i * 7), "name": name, "country": country, "currency": currency,
                          "treatment": treatment, "terms": rng.choice([30, 30, 30, 60]),
                          "email": f"accounts@{name.lower().replace(' ', '-')}.example"})
    invoices, lines = [], []
    base_day = date(2025, 1, 6)
    for i in range(n_invoices):
        c = rng.choice(customers)
        number = f"INV-{1001 + i}"
        issued = base_day + timedelta(days=i // 3)
        rate = Decimal("0.2000") if c["treatment"] == "uk_vat" else Decimal("0.0000")
        rows = []
        for line_number, (sku, desc, price, (lo, hi)) in enumerate(rng.sample(PRODUCTS, rng.randint(1, 5)), start=1):
            qty = rng.randint(lo, hi)
            gross = qty * price
            discount = _money(gross * Decimal(rng.choice([5, 10])) / 100) if rng.random() < 0.3 else Decimal("0.00")
            line_amount = _money(gross - discount)
            rows.append({"invoice_number": number, "line_number": line_number, "kind": "goods", "sku": sku,
                         "description": desc, "quantity": qty, "unit_amount": price, "discount_amount": discount,
                         "line_amount": line_amount, "tax_amount": _money(line_amount * rate), "tax_rate": rate,
                         "account_kind": "sales_trade"})
        if rng.random() < 0.8:
            shipping = Decimal(rng.choice(["15.00", "25.00", "39.50", "65.00"]))
            rows.append({"invoice_number": number, "line_number": len(rows) + 1, "kind": "shipping", "sku": None,
                         "description": "Delivery (pallet)", "quantity": 1, "unit_amount": shipping,
                         "discount_amount": Decimal("0.00"), "line_amount": shipping,
                         "tax_amount": _money(shipping * rate), "tax_rate": rate, "account_kind": "shipping_income"})
        lines += rows
        subtotal = sum((r["line_amount"] for r in rows), Decimal("0.00"))
        tax = sum((r["tax_amount"] for r in rows), Decimal("0.00"))
        total = subtotal + tax
        if number in voided:
            status, paid = "voided", Decimal("0.00")
        else:
            status = rng.choice(["paid", "unpaid", "overdue", "partially_paid", "unpaid"])
            paid = {"paid": total, "partially_paid": _money(total / 2)}.get(status, Decimal("0.00"))
        open_amount = Decimal("0.00") if status == "voided" else total - paid
        fx = FX_PER_GBP[c["currency"]]
        invoices.append({
            "invoice_number": number, "channel": "shopify", "order_id": 5_000_000 + i, "order_number": f"#{1001 + i}",
            "customer_id": c["id"], "customer_name": c["name"], "customer_email": c["email"],
            "customer_country": c["country"], "currency": c["currency"], "issued_on": issued,
            "due_on": issued + timedelta(days=c["terms"]), "terms_days": c["terms"], "tax_treatment": c["treatment"],
            "subtotal_amount": subtotal, "tax_amount": tax, "total_amount": total, "paid_amount": paid,
            "open_amount": open_amount, "status": status, "total_amount_home": _money(total / fx),
            "open_amount_home": _money(open_amount / fx),
            "updated_at": datetime(2025, 6, 1, tzinfo=timezone.utc) + timedelta(minutes=i),
        })
    con = duckdb.connect(str(path))
    try:
        con.execute(MARTS_DDL)
        _insert(con, "marts.fct_invoices", invoices)
        _insert(con, "marts.fct_invoice_lines", lines)
    finally:
        con.close()
    return {"invoices": len(invoices), "lines": len(lines), "customers": len({i["customer_id"] for i in invoices}),
            "voided": sum(1 for i in invoices if i["status"] == "voided"),
            "currencies": sorted({i["currency"] for i in invoices}),
            "treatments": sorted({i["tax_treatment"] for i in invoices})}


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    con.register("_rows", pa.Table.from_pylist(rows))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


def _recompute(con: duckdb.DuckDBPyConnection, number: str) -> None:
    con.execute("""
        UPDATE marts.fct_invoices SET
          subtotal_amount = s.sub, tax_amount = s.tax, total_amount = s.sub + s.tax,
          open_amount = s.sub + s.tax - paid_amount, updated_at = now()
        FROM (SELECT SUM(line_amount) AS sub, SUM(tax_amount) AS tax FROM marts.fct_invoice_lines
              WHERE invoice_number = ?) s
        WHERE invoice_number = ?""", [number, number])


def set_line_quantity(path: Path, number: str, line_number: int, quantity: int) -> None:
    """An edited trade order (S13-like): one line's quantity changes, totals follow."""
    con = duckdb.connect(str(path))
    try:
        row = con.execute("SELECT unit_amount, discount_amount, tax_rate FROM marts.fct_invoice_lines "
                          "WHERE invoice_number = ? AND line_number = ?", [number, line_number]).fetchone()
        unit, discount, rate = row
        line_amount = _money(quantity * unit - discount)
        con.execute("UPDATE marts.fct_invoice_lines SET quantity = ?, line_amount = ?, tax_amount = ? "
                    "WHERE invoice_number = ? AND line_number = ?",
                    [quantity, line_amount, _money(line_amount * rate), number, line_number])
        _recompute(con, number)
    finally:
        con.close()


def add_line(path: Path, number: str, sku: str, description: str, quantity: int, unit_amount: Decimal) -> None:
    con = duckdb.connect(str(path))
    try:
        next_line, rate = con.execute(
            "SELECT MAX(line_number) + 1, ANY_VALUE(tax_rate) FROM marts.fct_invoice_lines WHERE invoice_number = ?",
            [number]).fetchone()
        line_amount = _money(quantity * unit_amount)
        con.execute("INSERT INTO marts.fct_invoice_lines VALUES (?, ?, 'goods', ?, ?, ?, ?, 0, ?, ?, ?, 'sales_trade')",
                    [number, next_line, sku, description, quantity, unit_amount, line_amount,
                     _money(line_amount * rate), rate])
        _recompute(con, number)
    finally:
        con.close()


def set_status(path: Path, number: str, status: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE marts.fct_invoices SET status = ?, updated_at = now() WHERE invoice_number = ?",
                    [status, number])
    finally:
        con.close()


def mart_rows(path: Path) -> dict[str, dict]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute("SELECT i.*, (SELECT COUNT(*) FROM marts.fct_invoice_lines l "
                          "WHERE l.invoice_number = i.invoice_number) AS line_count FROM marts.fct_invoices i")
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    finally:
        con.close()


def assert_xero_matches_marts(emulator: XeroEmulator, warehouse: Path) -> None:
    """Independent of the publisher's own comparison: read the emulator's store directly."""
    marts = mart_rows(warehouse)
    docs = [d for d in emulator.invoices() if d["Type"] == "ACCREC"]
    numbers = [d["InvoiceNumber"] for d in docs]
    dupes = {n for n in numbers if numbers.count(n) > 1}
    assert not dupes, f"duplicate invoice numbers in Xero: {sorted(dupes)[:10]}"
    by_number = {d["InvoiceNumber"]: d for d in docs}
    problems = []
    for number, m in marts.items():
        doc = by_number.pop(number, None)
        if m["status"] == "voided":
            if doc is not None and doc["Status"] != "VOIDED":
                problems.append((number, "Status", "VOIDED", doc["Status"]))
            continue
        if doc is None:
            problems.append((number, "presence", "in Xero", "missing"))
            continue
        for field, expected, actual in (
                ("Status", "AUTHORISED", doc["Status"]), ("Total", m["total_amount"], doc["Total"]),
                ("TotalTax", m["tax_amount"], doc["TotalTax"]), ("SubTotal", m["subtotal_amount"], doc["SubTotal"]),
                ("DueDate", m["due_on"].isoformat(), doc.get("DueDate")),
                ("Date", m["issued_on"].isoformat(), doc["Date"]), ("CurrencyCode", m["currency"], doc["CurrencyCode"]),
                ("Reference", m["order_number"], doc["Reference"]),
                ("ContactNumber", m["customer_id"], doc["Contact"]["ContactNumber"]),
                ("lines", m["line_count"], len(doc["LineItems"]))):
            if expected != actual:
                problems.append((number, field, expected, actual))
    assert not problems, f"{len(problems)} differences, e.g. {problems[:5]}"
    assert not by_number, f"invoices in Xero that the marts lack: {sorted(by_number)[:5]}"


# -- emulator and connection ------------------------------------------------------------------------
@dataclass
class XeroEnv:
    settings: Settings
    running: RunningEmulator

    @property
    def emulator(self) -> XeroEmulator:
        return self.running.emulator  # type: ignore[return-value]

    @property
    def warehouse(self) -> Path:
        return self.settings.warehouse_path

    def connection(self) -> Connection:
        """Through the real sandbox path: endpoints.json + runtime.connection (secrets wrapped)."""
        runtime.write_endpoints(self.settings, {"xero": self.running})
        return runtime.connection(self.settings, "xero")


def start_xero(settings: Settings, **config) -> RunningEmulator:
    config.setdefault("time_scale", settings.time_scale)
    return serve(XeroEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(**config)))


@pytest.fixture
def xero_env(tmp_path):
    """A fresh data dir, the Xero emulator on a loopback port (time_scale 30), no faults."""
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_xero(settings)
    yield XeroEnv(settings, running)
    running.stop()
