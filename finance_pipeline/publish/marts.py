"""The marts ledger publishers read, as typed records (docs/architecture.md, "Marts the publishers read").

Shared by every ledger destination (Xero, QuickBooks, NetSuite …) so each maps the same records:
- `load_trade_invoices`: `marts.fct_invoices` joined with `marts.fct_invoice_lines`;
- `load_invoice_payments`: succeeded card payments against trade invoices (`marts.fct_payments`
  rows with an `invoice_number`), net of refunds of them, capped so an invoice is never paid
  beyond its total (an overpayment stays an unapplied credit, scenario P9).
Money is Decimal throughout.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from finance_pipeline.settings import BUSINESS_TIMEZONE

_TZ = ZoneInfo(BUSINESS_TIMEZONE)


def to_decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


_dec = to_decimal

# US state sales tax is outside the scope of UK VAT and owed to the state, not revenue: a UK company's
# ledger books such an invoice's goods and shipping out of scope of VAT and the sales tax as one line of
# its own to the "US sales tax payable" liability (docs/decisions.md).  The ledger's VAT is then 0 and its
# invoice total still the marts' total.
SALES_TAX_AS_LIABILITY = frozenset({"us_sales_tax"})
SALES_TAX_LINE_NAME = "US sales tax"


@dataclass(frozen=True)
class MartLine:
    line_number: int
    kind: str
    sku: str | None
    description: str | None
    quantity: Decimal
    unit_amount: Decimal
    discount_amount: Decimal
    line_amount: Decimal
    tax_amount: Decimal
    tax_rate: Decimal | None
    account_kind: str


@dataclass(frozen=True)
class MartInvoice:
    invoice_number: str
    order_number: str | None
    customer_id: str | None
    customer_name: str | None
    customer_email: str | None
    currency: str
    issued_on: date
    due_on: date
    tax_treatment: str
    subtotal_amount: Decimal
    tax_amount: Decimal
    total_amount: Decimal
    status: str
    lines: tuple[MartLine, ...]
    channel: str = ""  # where the invoice was raised: a ledger never gets back its own invoices

    @property
    def voided(self) -> bool:
        return self.status == "voided"

    @property
    def sales_tax_payable(self) -> Decimal:
        """The tax a UK ledger books as a liability line (US sales tax), not as VAT; 0 for other treatments."""
        return self.tax_amount if self.tax_treatment in SALES_TAX_AS_LIABILITY else Decimal(0)

    @property
    def vat_amount(self) -> Decimal:
        """The tax the ledger holds as VAT on the lines: the marts' tax less the sales tax booked as a line."""
        return self.tax_amount - self.sales_tax_payable


def load_trade_invoices(con: duckdb.DuckDBPyConnection, exclude_channel: str | None = None) -> list[MartInvoice]:
    """The two marts, joined in Python (lines ordered by line_number).

    `exclude_channel`: a ledger that is also a sales channel (trade invoices raised in it, role "both")
    passes its own name, so the invoices it already holds are not written to it a second time."""
    lines: dict[str, list[MartLine]] = defaultdict(list)
    for row in con.execute(
            "SELECT invoice_number, line_number, kind, sku, description, quantity, unit_amount, discount_amount, "
            "line_amount, tax_amount, tax_rate, account_kind FROM marts.fct_invoice_lines "
            "ORDER BY invoice_number, line_number").fetchall():
        lines[row[0]].append(MartLine(int(row[1]), row[2], row[3], row[4], _dec(row[5]), _dec(row[6]), _dec(row[7]),
                                      _dec(row[8]), _dec(row[9]), None if row[10] is None else _dec(row[10]), row[11]))
    out = []
    for row in con.execute(
            "SELECT invoice_number, order_number, customer_id, customer_name, customer_email, currency, issued_on, "
            "due_on, tax_treatment, subtotal_amount, tax_amount, total_amount, status, channel FROM marts.fct_invoices "
            "WHERE channel IS DISTINCT FROM ? ORDER BY issued_on, invoice_number", [exclude_channel]).fetchall():
        out.append(MartInvoice(row[0], row[1], None if row[2] is None else str(row[2]), row[3], row[4],
                               (row[5] or "").upper(), row[6], row[7],
                               row[8], _dec(row[9]), _dec(row[10]), _dec(row[11]), row[12],
                               tuple(lines.get(row[0], ())), row[13]))
    return out


@dataclass(frozen=True)
class MartPayment:
    """A card payment applied to a trade invoice, as the ledger should record it."""

    payment_id: str  # the processor's id (Stripe charge id)
    channel: str
    invoice_number: str
    currency: str
    amount: Decimal  # applied to the invoice: net of refunds, never beyond the invoice's total
    paid_on: date  # business date of the attempt
    received: Decimal  # what the customer paid in this payment, net of refunds of it


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, table]).fetchone())


def load_invoice_payments(con: duckdb.DuckDBPyConnection, invoices: list[MartInvoice]) -> list[MartPayment]:
    """Payments to apply, oldest first per invoice; none for voided invoices or when the mart is absent."""
    if not _has_table(con, "marts", "fct_payments"):
        return []
    by_number = {inv.invoice_number: inv for inv in invoices}
    rows = con.execute(
        "SELECT payment_id, channel, invoice_number, currency, amount, coalesce(refunded_amount, 0), attempted_at "
        "FROM marts.fct_payments WHERE invoice_number IS NOT NULL AND status = 'succeeded' "
        "ORDER BY invoice_number, attempted_at, payment_id").fetchall()
    applied: dict[str, Decimal] = defaultdict(Decimal)
    out = []
    for payment_id, channel, number, currency, amount, refunded, attempted_at in rows:
        inv = by_number.get(number)
        if inv is None or inv.voided:
            continue
        received = _dec(amount) - _dec(refunded)
        room = inv.total_amount - applied[number]
        apply = min(received, room)
        if apply <= 0:
            continue
        applied[number] += apply
        when = attempted_at if isinstance(attempted_at, datetime) else datetime.fromisoformat(str(attempted_at))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        out.append(MartPayment(str(payment_id), channel, number, (currency or inv.currency).upper(), apply,
                               when.astimezone(_TZ).date(), received))
    return out
