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


# a US state's sales tax as the US division invoices it: state + county rates, each rounded per line
# (so a line's tax is not always round(line x combined rate), as on the Dynamics 365 invoices)
US_SALES_TAX_RATES = (Decimal("0.0625"), Decimal("0.0175"))


def set_us_sales_tax(path: Path, count: int = 3, rates: tuple[Decimal, ...] = US_SALES_TAX_RATES) -> list[str]:
    """Turn `count` not-voided invoices of US (USD) customers into US-sales-tax invoices: every line taxed at
    the state's rates, totals recomputed.  Returns their numbers."""
    con = duckdb.connect(str(path))
    try:
        numbers = [n for (n,) in con.execute(
            "SELECT invoice_number FROM marts.fct_invoices WHERE currency = 'USD' AND status <> 'voided' "
            "ORDER BY invoice_number LIMIT ?", [count]).fetchall()]
        for number in numbers:
            for line_number, amount in con.execute(
                    "SELECT line_number, line_amount FROM marts.fct_invoice_lines WHERE invoice_number = ?",
                    [number]).fetchall():
                tax = sum((_money(amount * r) for r in rates), Decimal("0.00"))
                con.execute("UPDATE marts.fct_invoice_lines SET tax_amount = ?, tax_rate = ? "
                            "WHERE invoice_number = ? AND line_number = ?", [tax, sum(rates), number, line_number])
            con.execute("UPDATE marts.fct_invoices SET tax_treatment = 'us_sales_tax' WHERE invoice_number = ?",
                        [number])
            _recompute(con, number)
            con.execute("UPDATE marts.fct_invoices SET paid_amount = least(paid_amount, total_amount), "
                        "open_amount = total_amount - least(paid_amount, total_amount) WHERE invoice_number = ?",
                        [number])
    finally:
        con.close()
    assert len(numbers) == count, f"only {len(numbers)} USD invoices in the marts"
    return numbers


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
                ("Status", "AUTHORISED", "AUTHORISED" if doc["Status"] == "PAID" else doc["Status"]),
                ("Total", m["total_amount"], doc["Total"]),
                ("TotalTax", m["tax_amount"], doc["TotalTax"]), ("SubTotal", m["subtotal_amount"], doc["SubTotal"]),
                ("DueDate", m["due_on"].isoformat(), doc.get("DueDate")),
                ("Date", m["issued_on"].isoformat(), doc["Date"]), ("CurrencyCode", m["currency"], doc["CurrencyCode"]),
                ("Reference", m["order_number"], doc["Reference"]),
                ("ContactNumber", m["customer_id"], doc["Contact"]["ContactNumber"]),
                ("lines", m["line_count"], len(doc["LineItems"]))):
            if expected != actual:
                problems.append((number, field, expected, actual))
    assert not problems, f"{len(problems)} differences, e.g. {problems[:5]}"
    extra = sorted(n for n in by_number if not n.startswith("PO-"))  # PO-…: payout summaries (payouts.py)
    assert not extra, f"invoices in Xero that the marts lack: {extra[:5]}"


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


PAYMENTS_DDL = """
CREATE OR REPLACE TABLE marts.fct_payments (
    channel VARCHAR, payment_id VARCHAR, processor VARCHAR, order_id VARCHAR, invoice_number VARCHAR,
    customer_id VARCHAR, customer_type VARCHAR, status VARCHAR, failure_code VARCHAR, currency VARCHAR,
    amount DECIMAL(18,2), amount_home DECIMAL(18,2), fee_home DECIMAL(18,2), refunded_amount DECIMAL(18,2),
    is_disputed BOOLEAN, dispute_status VARCHAR, attempted_at TIMESTAMPTZ, balance_transaction_id VARCHAR);
"""


def build_payments(path: Path, seed: int = 5) -> dict:
    """`marts.fct_payments` consistent with `fct_invoices.paid_amount`: Stripe charges carrying the
    invoice number (paid in one go, or half; a failed attempt before some; one duplicate payment
    refunded in full), as `int_payments` shapes them."""
    rng = random.Random(seed)
    con = duckdb.connect(str(path))
    try:
        invoices = con.execute("SELECT invoice_number, currency, total_amount, paid_amount, issued_on, customer_id "
                               "FROM marts.fct_invoices WHERE paid_amount > 0 ORDER BY invoice_number").fetchall()
        rows = []
        for i, (number, currency, total, paid, issued, customer) in enumerate(invoices):
            when = datetime(issued.year, issued.month, issued.day, 11, tzinfo=timezone.utc) + timedelta(days=12)
            base = {"channel": "stripe", "processor": "stripe", "order_id": None, "invoice_number": number,
                    "customer_id": customer, "customer_type": "trade", "currency": currency,
                    "fee_home": Decimal("0.50"), "is_disputed": False, "dispute_status": None,
                    "balance_transaction_id": None, "amount_home": None, "failure_code": None}
            if rng.random() < 0.2:
                rows.append({**base, "payment_id": f"ch_3Q{i:06d}F{rng.randrange(10**9):09d}xyz", "status": "failed",
                             "failure_code": "card_declined", "amount": paid, "refunded_amount": Decimal("0.00"),
                             "attempted_at": when - timedelta(days=2)})
            rows.append({**base, "payment_id": f"ch_3Q{i:06d}S{rng.randrange(10**9):09d}abc", "status": "succeeded",
                         "amount": paid, "refunded_amount": Decimal("0.00"), "attempted_at": when})
            if i % 17 == 3:  # paid twice by mistake; the duplicate refunded in full
                rows.append({**base, "payment_id": f"ch_3Q{i:06d}D{rng.randrange(10**9):09d}dup", "status": "succeeded",
                             "amount": paid, "refunded_amount": paid, "attempted_at": when + timedelta(hours=1)})
        con.execute(PAYMENTS_DDL)
        if rows:
            _insert(con, "marts.fct_payments", rows)
    finally:
        con.close()
    return {"applied": len(invoices)}


PAYOUT_DDL = """
CREATE SCHEMA IF NOT EXISTS intermediate;
CREATE OR REPLACE TABLE marts.fct_orders (
    channel VARCHAR, order_id VARCHAR, order_number VARCHAR, customer_type VARCHAR, currency VARCHAR,
    tax_amount DECIMAL(18,2), total_amount DECIMAL(18,2));
CREATE OR REPLACE TABLE intermediate.int_balance_transactions (
    channel VARCHAR, balance_transaction_id VARCHAR, payout_id VARCHAR, type VARCHAR, category VARCHAR,
    order_id VARCHAR, source_id VARCHAR, currency VARCHAR, amount DECIMAL(18,2), fee DECIMAL(18,2),
    net DECIMAL(18,2), occurred_at TIMESTAMPTZ);
CREATE OR REPLACE TABLE marts.fct_payouts (
    channel VARCHAR, payout_id VARCHAR, balance_transaction_id VARCHAR, currency VARCHAR, amount DECIMAL(18,2),
    status VARCHAR, payout_date DATE, created_at TIMESTAMPTZ);
CREATE OR REPLACE TABLE marts.rpt_payout_reconciliation (
    channel VARCHAR, payout_id VARCHAR, payout_date DATE, payout_amount DECIMAL(18,2),
    reconciliation_status VARCHAR, break_reason VARCHAR);
"""


def build_payout_marts(path: Path, n_shopify: int = 10, seed: int = 3) -> dict:
    """Processor payouts as the marts hold them: Shopify Payments payouts of retail orders (20 % UK VAT,
    EU OSS VAT, US sales tax; fees; refunds of earlier orders), Stripe payouts of the trade-invoice
    charges in `fct_payments` (call `build_payments` first) with fees and a dispute withdrawal; one
    negative payout, one that does not reconcile, one still in transit.  `postable` maps the summary
    number of every payout that should reach Xero to its amount (negative: a credit note)."""
    rng = random.Random(seed)
    con = duckdb.connect(str(path))
    orders, txns, payouts, recon = [], [], [], []
    try:
        trade = con.execute("SELECT payment_id, amount - refunded_amount, attempted_at FROM marts.fct_payments "
                            "WHERE status = 'succeeded' AND amount > refunded_amount ORDER BY attempted_at").fetchall()
        day = date(2025, 2, 3)
        order_no = 5000
        for n in range(n_shopify):
            payout_id = str(91_000_000 + n)
            rows = []
            for _ in range(rng.randint(3, 7)):
                order_no += 1
                rate = rng.choice([Decimal("0.20"), Decimal("0.20"), Decimal("0.21"), Decimal("0.0825")])
                net = Decimal(rng.randint(2_000, 40_000)) / 100
                tax = _money(net * rate)
                total = net + tax
                orders.append({"channel": "shopify", "order_id": str(order_no), "order_number": f"#{order_no}",
                               "customer_type": "retail", "currency": "GBP", "tax_amount": tax, "total_amount": total})
                fee = _money(total * Decimal("0.019") + Decimal("0.20"))
                rows.append(("charge", str(order_no), total, fee))
            if n == 4:  # refunds of earlier orders exceed the day's sales: a debit from the bank
                rows = [(t, o, a, f) for t, o, a, f in rows[:1]]
                rows.append(("refund", "5001", -orders[0]["total_amount"] * 3, Decimal("0.00")))
            elif n % 3 == 1:  # a partial refund of an earlier order
                o = rng.choice(orders[:-3])
                rows.append(("refund", o["order_id"], -_money(o["total_amount"] / 2), Decimal("0.00")))
            amount = sum((a - f for _, _, a, f in rows), Decimal("0.00"))
            payout_day = day + timedelta(days=2 * n)
            for i, (kind, order_id, a, f) in enumerate(rows):
                txns.append({"channel": "shopify", "balance_transaction_id": f"{payout_id}{i:03d}", "payout_id": payout_id,
                             "type": kind, "category": kind, "order_id": order_id, "source_id": f"{order_id}{i}",
                             "currency": "GBP", "amount": a, "fee": f, "net": a - f,
                             "occurred_at": datetime(payout_day.year, payout_day.month, payout_day.day,
                                                     tzinfo=timezone.utc) - timedelta(days=2)})
            reported = amount + (Decimal("5.00") if n == 7 else 0)  # n 7: the bank got 5.00 more than the txns
            status = "in_transit" if n == n_shopify - 1 else "paid"
            payouts.append({"channel": "shopify", "payout_id": payout_id, "balance_transaction_id": None,
                            "currency": "GBP", "amount": reported, "status": status, "payout_date": payout_day,
                            "created_at": None})
            recon.append({"channel": "shopify", "payout_id": payout_id, "payout_date": payout_day,
                          "payout_amount": reported, "reconciliation_status": "matched" if reported == amount else "break",
                          "break_reason": None if reported == amount else f"payout differs from its transactions by "
                                                                          f"{reported - amount}"})
        # Stripe: trade-invoice charges in payouts of 8
        for n, start in enumerate(range(0, len(trade), 8)):
            payout_id = f"po_1Q{n:04d}TRADE{rng.randrange(10**8):08d}"
            chunk = trade[start:start + 8]
            rows = [("charge", pid, _money(Decimal(amt)), _money(Decimal(amt) * Decimal("0.015") + Decimal("0.20")))
                    for pid, amt, _ in chunk]
            if n == 1:
                rows.append(("adjustment", f"du_{n}", Decimal("-120.00"), Decimal("15.00")))
            last = max(a for _, _, a in chunk)
            payout_day = (last + timedelta(days=3)).date()
            amount = sum((a - f for _, _, a, f in rows), Decimal("0.00"))
            for i, (kind, source, a, f) in enumerate(rows):
                txns.append({"channel": "stripe", "balance_transaction_id": f"txn_{payout_id}_{i}", "payout_id": payout_id,
                             "type": kind, "category": kind, "order_id": None, "source_id": source, "currency": "GBP",
                             "amount": a, "fee": f, "net": a - f, "occurred_at": last})
            payouts.append({"channel": "stripe", "payout_id": payout_id, "balance_transaction_id": f"txn_{payout_id}",
                            "currency": "GBP", "amount": amount, "status": "paid", "payout_date": payout_day,
                            "created_at": last})
            recon.append({"channel": "stripe", "payout_id": payout_id, "payout_date": payout_day, "payout_amount": amount,
                          "reconciliation_status": "matched", "break_reason": None})
        con.execute(PAYOUT_DDL)
        _insert(con, "marts.fct_orders", orders)
        _insert(con, "intermediate.int_balance_transactions", txns)
        _insert(con, "marts.fct_payouts", payouts)
        _insert(con, "marts.rpt_payout_reconciliation", recon)
    finally:
        con.close()
    paid = [p for p, r in zip(payouts, recon) if p["status"] == "paid"]
    postable = [p for p, r in zip(payouts, recon)
                if p["status"] == "paid" and r["reconciliation_status"] == "matched" and p["amount"] != 0]
    return {"payouts": len(payouts), "paid": len(paid), "postable": {f"PO-{p['channel']}-{p['payout_id']}": p["amount"]
                                                                     for p in postable},
            "negative": [f"PO-shopify-{payouts[4]['payout_id']}"] if n_shopify > 5 else [],
            "break": [f"PO-shopify-{payouts[7]['payout_id']}"] if n_shopify > 8 else []}
