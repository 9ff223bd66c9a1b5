"""Shared by the Stripe source tests: load through the source, read the world's truth as of the clock."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb

from finance_pipeline.ingest.pipeline import make_pipeline, run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.stripe.source import stripe_source
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
TABLES = ("charges", "refunds", "disputes", "balance_transactions", "payouts", "payout_balance_transactions")

# The world, as of the clock, in the shape the warehouse should hold (ids and what changes).
TRUTH = {
    "charges": """
        select c.charge_id, c.amount, coalesce(r.refunded, 0) as amount_refunded,
               c.status = 'succeeded' and coalesce(r.refunded, 0) >= c.amount as refunded,
               d.charge_id is not null as disputed, c.status, c.currency, epoch(c.created)::bigint
        from stripe_charges c
        left join (select charge_id, sum(amount) as refunded from stripe_refunds where created <= $1
                   group by all) r using (charge_id)
        left join (select distinct charge_id from stripe_disputes where created <= $1) d using (charge_id)
        where c.created <= $1 order by 1""",
    "refunds": """select refund_id, charge_id, amount, status, epoch(created)::bigint from stripe_refunds
                  where created <= $1 order by 1""",
    "disputes": """
        select dispute_id, charge_id, amount,
               case when closed_at <= $1 then outcome
                    when created + interval 5 day <= $1 then 'under_review' else 'needs_response' end
        from stripe_disputes where created <= $1 order by 1""",
    "balance_transactions": """
        select bt_id, type, source, amount, fee, net, case when available_on <= $1 then 'available' else 'pending' end,
               epoch(created)::bigint, epoch(available_on)::bigint
        from stripe_balance_transactions where created <= $1 order by 1""",
    "payouts": """select payout_id, amount, case when arrival_date <= $1 then 'paid' else 'in_transit' end,
                         epoch(arrival_date)::bigint, balance_transaction
                  from stripe_payouts where created <= $1 order by 1""",
    "payout_balance_transactions": """
        select b.payout_id, b.bt_id from stripe_balance_transactions b
        join stripe_payouts p on p.payout_id = b.payout_id and p.created <= $1 order by 1, 2""",
}
LOADED = {
    "charges": """select id, amount, amount_refunded, refunded, disputed, status, currency, epoch(created)::bigint
                  from raw_stripe.charges order by 1""",
    "refunds": "select id, charge, amount, status, epoch(created)::bigint from raw_stripe.refunds order by 1",
    "disputes": "select id, charge, amount, status from raw_stripe.disputes order by 1",
    "balance_transactions": """select id, type, source, amount, fee, net, status, epoch(created)::bigint,
                                      epoch(available_on)::bigint from raw_stripe.balance_transactions order by 1""",
    "payouts": """select id, amount, status, epoch(arrival_date)::bigint, balance_transaction
                  from raw_stripe.payouts order by 1""",
    "payout_balance_transactions": """select payout_id, balance_transaction_id
                                      from raw_stripe.payout_balance_transactions order by 1, 2""",
}


def truth(sandbox: Sandbox) -> dict[str, list[tuple]]:
    with sandbox.connect() as con:
        return {t: con.execute(sql, [sandbox.clock]).fetchall() for t, sql in TRUTH.items()}


def loaded(settings) -> dict[str, list[tuple]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {t: con.execute(sql).fetchall() for t, sql in LOADED.items()}


def full_tables(settings) -> dict[str, list[tuple]]:
    """Every column of every raw table (dlt's bookkeeping columns aside), sorted."""
    out = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for t in TABLES:
            cols = [r[0] for r in con.execute(f"describe raw_stripe.{t}").fetchall() if not r[0].startswith("_dlt")]
            out[t] = con.execute(f"select {', '.join(cols)} from raw_stripe.{t} order by all").fetchall()
    return out


def load(settings, running, quarantine: Quarantine | None = None):
    quarantine = quarantine if quarantine is not None else Quarantine("stripe")
    conn = Connection("stripe", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "stripe", stripe_source(conn, quarantine), quarantine)


def resource_state(settings, resource: str) -> dict[str, Any]:
    return make_pipeline(settings, "stripe").state["sources"]["stripe"]["resources"][resource]


def jump(sandbox: Sandbox, to: datetime) -> None:
    sandbox.advance((to - sandbox.clock).total_seconds() / 3600)
