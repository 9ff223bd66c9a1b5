"""Alert rules, each a function of the marts and the settings returning `Alert`s."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import duckdb

from finance_pipeline.alerts.store import Alert
from finance_pipeline.settings import Settings


def trade_payment_failures(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    """Trade card payments failing above a threshold in a trailing window, per processor.

    Fires when, over the last `payment_failure_window_hours`, at least
    `payment_failure_min_attempts` trade payment attempts were made and the share that failed
    is at or above `payment_failure_threshold`.  The dedupe key is processor + the business
    date the window ends on, so one bad day alerts once."""
    window_start = as_of - timedelta(hours=settings.payment_failure_window_hours)
    rows = con.execute(
        """
        select processor,
               count(*) as attempts,
               count(*) filter (where status = 'failed') as failures,
               list(payment_id order by attempted_at) filter (where status = 'failed') as failed_ids
        from marts.fct_payments
        where customer_type = 'trade' and attempted_at > ? and attempted_at <= ?
        group by processor
        """,
        [window_start, as_of],
    ).fetchall()
    alerts = []
    threshold = Decimal(str(settings.payment_failure_threshold))
    for processor, attempts, failures, failed_ids in rows:
        if attempts < settings.payment_failure_min_attempts or failures == 0:
            continue
        rate = Decimal(failures) / Decimal(attempts)
        if rate < threshold:
            continue
        alerts.append(Alert(
            rule="trade_payment_failures",
            severity="critical" if rate >= threshold * 2 else "warning",
            dedupe_key=f"{processor}:{as_of.date().isoformat()}",
            title=(f"{failures} of {attempts} trade payments failed on {processor} in the last "
                   f"{settings.payment_failure_window_hours} h ({rate:.0%}, threshold {threshold:.0%})"),
            details={"processor": processor, "attempts": attempts, "failures": failures,
                     "failure_rate": str(rate.quantize(Decimal('0.0001'))), "failed_payment_ids": failed_ids,
                     "window_start": window_start.isoformat(), "window_end": as_of.isoformat()},
        ))
    return alerts


RULES = (trade_payment_failures,)
