"""Small synthetic marts for alert tests: a normal business that anomalies can be added to."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb

UTC = timezone.utc
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

DDL = """
create schema if not exists marts; create schema if not exists intermediate;
create or replace table marts.fct_orders (channel varchar, order_id varchar, ordered_at timestamptz);
create or replace table marts.fct_payments (channel varchar, payment_id varchar, processor varchar,
    customer_type varchar, customer_id varchar, invoice_number varchar, status varchar, amount decimal(18,2),
    attempted_at timestamptz);
create or replace table marts.fct_invoices (invoice_number varchar, customer_id varchar, customer_name varchar,
    status varchar, issued_on date, due_on date, currency varchar, total_amount decimal(18,2),
    open_amount decimal(18,2), total_amount_home decimal(18,2));
create or replace table marts.fct_payouts (channel varchar, payout_id varchar, payout_date date);
create or replace table intermediate.int_balance_transactions (channel varchar, balance_transaction_id varchar,
    payout_id varchar, type varchar, net decimal(18,2), currency varchar, occurred_at timestamptz);
create or replace table marts.rpt_payout_reconciliation (channel varchar, payout_id varchar, payout_date date,
    payout_amount decimal(18,2), transactions_net decimal(18,2), variance decimal(18,2), transaction_count int,
    break_reason varchar, currency varchar, reconciliation_status varchar);
"""

# orders per hour by hour of day: a shop that sleeps at night and is busier at weekends
HOURLY = [0.1] * 7 + [0.6, 1.0, 1.4, 1.6, 1.8, 1.8, 1.6, 1.5, 1.5, 1.6, 1.8, 2.0, 2.0, 1.6, 1.0, 0.5, 0.2]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list) -> None:
    """Bulk insert through Arrow (DuckDB's executemany goes row by row)."""
    import pyarrow as pa

    if not rows:
        return
    columns = list(zip(*rows))
    arrow = pa.table({f"c{i}": pa.array(list(col)) for i, col in enumerate(columns)})  # noqa: F841 - used in SQL
    con.execute(f"insert into {table} select * from arrow")


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, pow(2.718281828459045, -lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def normal_business(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, seed: int = 1,
                    channels: dict[str, float] | None = None) -> None:
    """Orders and payments per hour with ordinary noise, daily payouts that reconcile."""
    con.execute(DDL)
    rng = random.Random(seed)
    channels = channels or {"shopify": 1.0, "woocommerce": 0.6}
    orders, payments, bts, payouts, recon = [], [], [], [], []
    t = start
    n = 0
    while t < end:
        weekend = 1.15 if t.weekday() >= 5 else 1.0
        for channel, scale in channels.items():
            for _ in range(_poisson(rng, HOURLY[t.hour] * scale * weekend)):
                n += 1
                at = t + timedelta(seconds=rng.randint(0, 3599))
                orders.append((channel, f"o{n}", at))
                status = "failed" if rng.random() < 0.08 else "succeeded"
                payments.append((channel, f"p{n}", f"{channel}_payments", "retail", f"c{n % 300}", None, status,
                                 Decimal("50.00"), at))
                if status == "succeeded":
                    bts.append([channel, f"bt{n}", None, "charge", Decimal("48.00"), "GBP", at])
        t += timedelta(hours=1)
    # every balance transaction is paid out two days later, and each payout reconciles
    by_payout: dict[tuple[str, date], list] = {}
    for bt in bts:
        day = bt[6].date() + timedelta(days=2)
        if datetime.combine(day, datetime.min.time(), UTC) <= end:
            bt[2] = f"po_{bt[0]}_{day.isoformat()}"
            by_payout.setdefault((bt[0], day), []).append(bt)
    for (channel, day), items in by_payout.items():
        net = sum((b[4] for b in items), Decimal(0))
        payouts.append((channel, f"po_{channel}_{day.isoformat()}", day))
        recon.append((channel, f"po_{channel}_{day.isoformat()}", day, net, net, Decimal(0), len(items), None, "gbp",
                      "matched"))
    _insert(con, "marts.fct_orders", orders)
    _insert(con, "marts.fct_payments", payments)
    _insert(con, "intermediate.int_balance_transactions", bts)
    _insert(con, "marts.fct_payouts", payouts)
    _insert(con, "marts.rpt_payout_reconciliation", recon)


def add_orders(con: duckdb.DuckDBPyConnection, channel: str, start: datetime, hours: int, per_hour: int) -> None:
    rows = [(channel, f"spike-{start.isoformat()}-{h}-{i}", start + timedelta(hours=h, minutes=i % 60))
            for h in range(hours) for i in range(per_hour)]
    _insert(con, "marts.fct_orders", rows)


def remove_orders(con: duckdb.DuckDBPyConnection, channel: str, start: datetime, end: datetime) -> None:
    con.execute("delete from marts.fct_orders where channel = ? and ordered_at > ? and ordered_at <= ?",
                [channel, start, end])


def add_failed_payments(con: duckdb.DuckDBPyConnection, processor: str, at: datetime, n: int) -> None:
    rows = [(processor.split("_")[0], f"fail-{at.isoformat()}-{i}", processor, "trade", f"t{i}", None, "failed",
             Decimal("900.00"), at + timedelta(minutes=i)) for i in range(n)]
    _insert(con, "marts.fct_payments", rows)


def add_invoice(con: duckdb.DuckDBPyConnection, number: str, customer: str, due_on: date, total: str,
                open_amount: str | None = None) -> None:
    total_d = Decimal(total)
    con.execute("insert into marts.fct_invoices values (?, ?, ?, ?, ?, ?, 'GBP', ?, ?, ?)",
                [number, customer, f"{customer} Interiors", "overdue", due_on - timedelta(days=30), due_on, total_d,
                 Decimal(open_amount if open_amount is not None else total), total_d])
