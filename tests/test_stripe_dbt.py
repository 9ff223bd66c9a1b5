"""dbt staging for Stripe: built and tested on a warehouse the Stripe source loaded."""
from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.stripe.emulator import StripeEmulator
from finance_pipeline.platforms.stripe.source import stripe_source

DBT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

CONTRACT = {
    "stg_stripe__charges": ["charge_id", "amount", "amount_refunded", "currency", "status", "paid", "refunded",
                            "disputed", "failure_code", "failure_message", "customer", "payment_intent",
                            "balance_transaction_id", "created_at", "invoice_number", "order_number", "order_id",
                            "channel"],
    "stg_stripe__refunds": ["refund_id", "charge_id", "amount", "currency", "status", "reason",
                            "balance_transaction_id", "created_at", "channel"],
    "stg_stripe__disputes": ["dispute_id", "charge_id", "amount", "currency", "status", "reason", "created_at",
                             "channel"],
    "stg_stripe__balance_transactions": ["balance_transaction_id", "type", "reporting_category", "source_id",
                                         "amount", "fee", "net", "currency", "exchange_rate", "status",
                                         "created_at", "available_on", "channel"],
    "stg_stripe__payouts": ["payout_id", "amount", "currency", "status", "created_at", "arrival_date",
                            "balance_transaction_id", "channel"],
    "stg_stripe__payout_balance_transactions": ["payout_id", "balance_transaction_id", "channel"],
}


def test_staging_models_build_and_keep_the_contract(settings, sandbox, start_emulator, tmp_path):
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale)
    quarantine = Quarantine("stripe")
    conn = Connection("stripe", running.url, running.emulator.credentials(), settings)
    run_platform(settings, "stripe", stripe_source(conn, quarantine), quarantine)

    env = {**os.environ, "FINANCE_WAREHOUSE_PATH": str(settings.warehouse_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [str(dbt), "build", "--select", "staging.stripe", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for model, columns in CONTRACT.items():
            described = {r[0]: r[1] for r in con.execute(f"describe staging.{model}").fetchall()}
            assert [c for c in columns if c not in described] == [], model
            for money in ("amount", "amount_refunded", "fee", "net"):
                if money in described:
                    assert described[money] == "DECIMAL(18,2)", (model, money)
            for ts in ("created_at", "available_on"):
                if ts in described:
                    assert described[ts] == "TIMESTAMP WITH TIME ZONE", (model, ts)
        assert con.execute("describe staging.stg_stripe__payouts").fetchall()[5][1] == "DATE"
        # minor units -> major units, exactly; currencies upper case; metadata unpacked
        pairs = con.execute("""select s.amount, r.amount, s.currency, s.invoice_number, s.order_number, s.order_id,
                                      s.channel
                               from staging.stg_stripe__charges s join raw_stripe.charges r on r.id = s.charge_id""").fetchall()
        assert pairs and all(s == Decimal(r) / 100 for s, r, *_ in pairs)
        assert {p[2] for p in pairs} <= {"GBP", "EUR", "USD", "AUD"} and {p[6] for p in pairs} == {"stripe"}
        assert all(p[3].startswith("INV-") and p[4].startswith("#") and isinstance(p[5], int) for p in pairs)
        # a payout equals what it carried (scenario R1), in staging as on the wire
        off = con.execute("""select p.payout_id
                             from staging.stg_stripe__payouts p
                             join staging.stg_stripe__payout_balance_transactions pbt on pbt.payout_id = p.payout_id
                             join staging.stg_stripe__balance_transactions b
                               on b.balance_transaction_id = pbt.balance_transaction_id
                             where b.type <> 'payout'
                             group by p.payout_id, p.amount having sum(b.net) <> p.amount""").fetchall()
        assert off == []
