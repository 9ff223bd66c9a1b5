"""BI publisher test support: the trade-invoice marts of xero_fixtures plus one mart with every column
kind the warehouse produces (BIGINT, DECIMAL(18,2), DECIMAL(38,2) sums, DOUBLE, BOOLEAN, DATE,
TIMESTAMPTZ, VARCHAR, NULLs), and an independent reading of the marts for assertions."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb

from xero_fixtures import build_marts

PAYOUTS_DDL = """
CREATE OR REPLACE TABLE marts.fct_payouts (
    channel VARCHAR, payout_id BIGINT, payout_date DATE, arrival_at TIMESTAMPTZ, currency VARCHAR,
    amount DECIMAL(18,2), fees DECIMAL(38,2), fx_rate DOUBLE, reconciled BOOLEAN, note VARCHAR);
"""


def build_bi_marts(path: Path, n_invoices: int = 120, n_payouts: int = 150, seed: int = 5) -> dict:
    made = build_marts(path, n_invoices=n_invoices, n_customers=20)
    rng = random.Random(seed)
    rows = []
    for i in range(n_payouts):
        day = date(2025, 1, 1) + timedelta(days=i)
        amount = Decimal(rng.randint(10_000, 900_000)) / 100
        rows.append((rng.choice(["shopify", "stripe"]), 90_000_000 + i, day,
                     datetime(day.year, day.month, day.day, 9, 30, tzinfo=timezone.utc),
                     rng.choice(["GBP", "EUR", "USD"]), amount, (amount * Decimal("0.029")).quantize(Decimal("0.01")),
                     rng.choice([1.0, 1.17, 1.2731]), rng.random() < 0.9, None if i % 3 else f"payout {i}"))
    con = duckdb.connect(str(path))
    try:
        con.execute(PAYOUTS_DDL)
        con.executemany("INSERT INTO marts.fct_payouts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        con.close()
    return {**made, "payouts": n_payouts, "tables": {"fct_invoices": made["invoices"],
                                                     "fct_invoice_lines": made["lines"], "fct_payouts": n_payouts}}


def mart_count(path: Path, table: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT COUNT(*) FROM marts.{table}").fetchone()[0]
    finally:
        con.close()


def mart_sum(path: Path, table: str, column: str) -> Decimal:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT COALESCE(SUM({column}), 0) FROM marts.{table}").fetchone()[0]
    finally:
        con.close()


def execute(path: Path, sql: str, params: list | None = None) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql, params or [])
    finally:
        con.close()
