"""Alert rules: each reads the marts (channel-agnostic: every channel or processor that lands in
a mart is covered without a change here) and returns the conditions that hold at `as_of`.

| rule | condition (settings, defaults in settings.py) |
|---|---|
| `order_volume` | orders per channel in the last `alert_volume_window_hours` (24) against the same hours of the week in the previous `alert_volume_baseline_weeks` (8): robust z = (n − median) / max(1.4826·MAD, √(median + 1)) beyond ±`alert_volume_z` (4); spikes need ≥ `alert_volume_min_orders` (10) orders, drops a median ≥ that |
| `payment_failures` | per processor, over `payment_failure_window_hours` (72): ≥ `payment_failure_min_attempts` (4) attempts, a failed share ≥ `payment_failure_threshold` (25 %), and a binomial tail probability ≤ `alert_payment_failure_p` (0.001) against the processor's own rate over the previous `alert_payment_baseline_days` (28); critical at twice the threshold |
| `overdue_invoices` | per trade customer, open invoices more than 30 / 60 / 90 days past due (`alert_overdue_days`) totalling ≥ `alert_overdue_min_home` (£0); severity by the oldest threshold crossed |
| `payout_missing` | per channel that has payouts, balance transactions older than its usual payout lag (99th percentile over 120 days) + 2 days, and at least `alert_payout_missing_days` (5), that no payout carried, netting above zero |
| `payout_short` | a payout smaller than the transactions it carried (`rpt_payout_reconciliation.variance` < 0) |
| `reconciliation_break` | any other payout break (more than its transactions, or no transactions) |
| `stale_sync` | a source platform whose last successful load (dlt's `_dlt_loads`) is older than `alert_stale_sync_hours` (6) of wall time, or that never loaded |
"""
from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb

from finance_pipeline.alerts.store import Alert
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import missing_table_errors

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAD_SCALE = 1.4826  # MAD of a normal distribution → its standard deviation


def _robust_z(observed: int, baseline: list[int]) -> tuple[float, float, float]:
    """(z, median, spread) with spread = max(1.4826·MAD, √(median + 1)): the MAD of a few weeks can be
    zero, and counts are at least Poisson-noisy, so the spread never falls below the Poisson one."""
    med = statistics.median(baseline)
    mad = statistics.median([abs(b - med) for b in baseline])
    spread = max(MAD_SCALE * mad, (med + 1) ** 0.5)
    return (observed - med) / spread, med, spread


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    from math import comb

    return sum(comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def order_volume(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    """Unusual order volume per channel, spikes and drops, against an hour-of-week baseline."""
    hours = settings.alert_volume_window_hours
    weeks = settings.alert_volume_baseline_weeks
    start = as_of - timedelta(hours=hours)
    earliest = start - timedelta(weeks=weeks)
    # whole seconds from each order to as_of, as whole epoch seconds apart (DuckDB's
    # date_diff('second', ...), spelled so that PostgreSQL reads it too)
    as_of_s = (as_of - EPOCH) // timedelta(seconds=1)
    rows = con.execute(
        """with o as (
               select channel, ? - cast(floor(extract(epoch from ordered_at)) as bigint) as seconds_back
               from marts.fct_orders
               where ordered_at > ?::timestamptz and ordered_at <= ?::timestamptz)
           select channel, cast(floor(seconds_back / 604800.0) as integer) as week_back, count(*)
           from o
           -- only the same hours of the week as the current window
           where seconds_back % 604800 < ?
           group by 1, 2""",
        [as_of_s, earliest, as_of, hours * 3600]).fetchall()
    first_seen = dict(con.execute("select channel, min(ordered_at) from marts.fct_orders group by channel").fetchall())
    counts: dict[str, dict[int, int]] = {}
    for channel, week_back, n in rows:
        counts.setdefault(channel, {})[week_back] = n
    alerts = []
    for channel in sorted(set(counts) | set(first_seen)):
        by_week = counts.get(channel, {})
        # a baseline week counts only if the channel already existed then
        history_start = first_seen.get(channel)
        baseline = [by_week.get(w, 0) for w in range(1, weeks + 1)
                    if history_start is not None and history_start <= start - timedelta(weeks=w)]
        if len(baseline) < max(3, weeks // 2):
            continue
        observed = by_week.get(0, 0)
        z, med, spread = _robust_z(observed, baseline)
        threshold = settings.alert_volume_z
        details = {"channel": channel, "orders": observed, "baseline_median": med, "baseline_weeks": baseline,
                   "robust_z": round(z, 2), "window_start": start.isoformat(), "window_end": as_of.isoformat()}
        if z >= threshold and observed >= settings.alert_volume_min_orders:
            alerts.append(Alert("order_volume", "critical" if z >= 2 * threshold else "warning", f"{channel}:spike",
                                f"{channel}: {observed} orders in the last {hours} h, usually about {med:g} "
                                f"(robust z {z:+.1f})", details, timedelta(hours=24), round(z, 2)))
        elif z <= -threshold and med >= settings.alert_volume_min_orders:
            alerts.append(Alert("order_volume", "critical" if observed == 0 else "warning", f"{channel}:drop",
                                f"{channel}: only {observed} orders in the last {hours} h, usually about {med:g} "
                                f"(robust z {z:+.1f})", details, timedelta(hours=24), round(-z, 2)))
    return alerts


def payment_failures(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    """A spike in the share of failed payment attempts, per processor.

    Over the trailing `payment_failure_window_hours`, with at least `payment_failure_min_attempts`
    attempts, the failed share must reach `payment_failure_threshold` AND be improbable under the
    processor's own failure rate p₀ over the previous `alert_payment_baseline_days`: the binomial
    tail P(X ≥ failures | attempts, p₀) ≤ `alert_payment_failure_p`.  Ordinary
    declines (a few percent of attempts, two unlucky ones on a quiet day) do not alert; an outage
    that fails every attempt does."""
    window_start = as_of - timedelta(hours=settings.payment_failure_window_hours)
    baseline_start = window_start - timedelta(days=settings.alert_payment_baseline_days)
    rows = con.execute(
        """select processor,
                  count(*) filter (where attempted_at > ?) as attempts,
                  count(*) filter (where attempted_at > ? and status = 'failed') as failures,
                  array_agg(payment_id order by attempted_at, payment_id)
                      filter (where attempted_at > ? and status = 'failed'),
                  count(distinct customer_id) filter (where attempted_at > ? and status = 'failed') as customers,
                  count(*) filter (where attempted_at <= ?) as base_attempts,
                  count(*) filter (where attempted_at <= ? and status = 'failed') as base_failures
           from marts.fct_payments
           where attempted_at > ? and attempted_at <= ?
           group by processor
           order by processor""",
        [window_start] * 4 + [window_start] * 2 + [baseline_start, as_of]).fetchall()
    alerts = []
    threshold = Decimal(str(settings.payment_failure_threshold))
    for processor, attempts, failures, failed_ids, customers, base_n, base_failed in rows:
        if attempts < settings.payment_failure_min_attempts or failures == 0:
            continue
        rate = Decimal(failures) / Decimal(attempts)
        if rate < threshold:
            continue
        # the baseline rate, shrunk towards a typical card decline rate (10 %, weight of 20 attempts)
        # so that a quiet month with no failures does not make the next two declines look like a spike
        p0 = (base_failed + 2) / (base_n + 20)
        tail = _binomial_tail(failures, attempts, p0)
        if tail > settings.alert_payment_failure_p:
            continue
        alerts.append(Alert(
            rule="payment_failures", severity="critical" if rate >= threshold * 2 else "warning",
            dedupe_key=str(processor),
            title=(f"{failures} of {attempts} payments failed on {processor} in the last "
                   f"{settings.payment_failure_window_hours} h ({rate:.0%}; usually {p0:.0%})"),
            details={"processor": processor, "attempts": attempts, "failures": failures, "customers": customers,
                     "failure_rate": str(rate.quantize(Decimal('0.0001'))), "baseline_rate": round(p0, 4),
                     "p_value": float(f"{tail:.3g}"), "failed_payment_ids": (failed_ids or [])[:50],
                     "window_start": window_start.isoformat(), "window_end": as_of.isoformat()},
            value=rate,
        ))
    return alerts


def overdue_invoices(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    """Trade customers with invoices past 30 / 60 / 90 days overdue.  The open amount is taken as
    of `as_of`: payments the mart knows of that were made later are added back."""
    thresholds = sorted(settings.alert_overdue_days)
    as_of_date = as_of.date()
    rows = con.execute(
        """with later as (
               select invoice_number, sum(amount) as paid_later
               from marts.fct_payments
               where status = 'succeeded' and invoice_number is not null and attempted_at > ?
               group by invoice_number)
           select i.customer_id, i.customer_name,
                  i.invoice_number, i.due_on, i.currency,
                  i.open_amount + coalesce(l.paid_later, 0) as open_amount,
                  case when i.total_amount = 0 then 0 else
                    cast((i.open_amount + coalesce(l.paid_later, 0)) * i.total_amount_home / i.total_amount
                         as decimal(18, 2)) end as open_home
           from marts.fct_invoices i left join later l using (invoice_number)
           where i.status <> 'voided' and i.issued_on <= ?::date and i.due_on < ?::date
             and i.open_amount + coalesce(l.paid_later, 0) > 0
           order by i.customer_id, i.due_on, i.invoice_number""", [as_of, as_of_date, as_of_date - timedelta(days=thresholds[0])]).fetchall()
    by_customer: dict[str, dict] = {}
    for customer_id, name, invoice, due_on, currency, open_amount, open_home in rows:
        days = (as_of_date - due_on).days
        crossed = max((t for t in thresholds if days > t), default=None)
        if crossed is None:
            continue
        c = by_customer.setdefault(customer_id, {"name": name, "invoices": [], "home": Decimal(0), "crossed": 0})
        c["invoices"].append({"invoice_number": invoice, "days_past_due": days, "currency": currency,
                              "open_amount": str(open_amount)})
        c["home"] += Decimal(open_home)
        c["crossed"] = max(c["crossed"], crossed)
    alerts = []
    severity_for = {thresholds[0]: "info", **{t: "warning" for t in thresholds[1:-1]}, thresholds[-1]: "critical"}
    for customer_id, c in sorted(by_customer.items()):
        if c["home"] < Decimal(str(settings.alert_overdue_min_home)):
            continue
        alerts.append(Alert(
            "overdue_invoices", severity_for[c["crossed"]], str(customer_id),
            f"{c['name'] or customer_id}: {len(c['invoices'])} invoice(s) more than {c['crossed']} days overdue, "
            f"£{c['home']:,.2f} open",
            {"customer_id": customer_id, "customer_name": c["name"], "open_home": str(c["home"]),
             "threshold_days": c["crossed"], "invoices": c["invoices"][:20]},
            timedelta(days=30), c["crossed"]))
    return alerts


def payout_missing(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    """Money that should have been paid out by now, per channel that pays out at all.

    Each channel's own rhythm is the baseline: the 99th percentile of days from transaction to
    the payout that carried it, over the last 120 days (Shopify pays two days on, Amazon settles
    every two weeks).  Transactions older than that plus two days — and never less than
    `alert_payout_missing_days` — that no payout arrived by `as_of` carried, netting above zero,
    are missing.  Channels with no payouts in the marts (money reaches the bank another way) are
    not judged."""
    rows = con.execute(
        """with paid as (
               select b.channel,
                      percentile_cont(0.99) within group (
                          order by p.payout_date - cast(b.occurred_at as date)) as lag_days
               from intermediate.int_balance_transactions b
               join marts.fct_payouts p on p.channel = b.channel and p.payout_id = b.payout_id
               where b.type <> 'payout' and p.payout_date <= ?::date
                 and b.occurred_at > ?::timestamptz - interval '120 days'
               group by b.channel),
           limits as (
               select channel, greatest(?, cast(ceil(lag_days) as integer) + 2) as limit_days from paid)
           select b.channel, l.limit_days, count(*), sum(b.net), min(b.occurred_at), min(b.currency)
           from intermediate.int_balance_transactions b
           join limits l using (channel)
           left join marts.fct_payouts p on p.channel = b.channel and p.payout_id = b.payout_id
           where b.type <> 'payout' and b.occurred_at <= ?::timestamptz - l.limit_days * interval '1 day'
             and (b.payout_id is null or p.payout_id is null or p.payout_date > ?::date)
           group by b.channel, l.limit_days
           order by b.channel""",
        [as_of.date(), as_of, settings.alert_payout_missing_days, as_of, as_of.date()]).fetchall()
    alerts = []
    for channel, limit_days, n, net, oldest, currency in rows:
        if net is None or net <= 0:
            continue
        alerts.append(Alert(
            "payout_missing", "warning", str(channel),
            f"{channel}: {n} transaction(s) netting {net:,.2f} {str(currency).upper()} not paid out "
            f"{limit_days} days on (oldest {oldest:%Y-%m-%d})",
            {"channel": channel, "transactions": n, "net": str(net), "oldest": str(oldest), "limit_days": limit_days},
            timedelta(hours=24), net))
    return alerts


def _breaks(con: duckdb.DuckDBPyConnection, as_of: datetime, short: bool) -> list[tuple]:
    return con.execute(
        f"""select channel, payout_id, payout_date, payout_amount, transactions_net, variance, break_reason, currency
            from marts.rpt_payout_reconciliation
            where reconciliation_status <> 'matched' and payout_date <= ?::date
              and {'variance < 0 and transaction_count > 0' if short else 'not (variance < 0 and transaction_count > 0)'}
            order by payout_date, channel, payout_id""", [as_of.date()]).fetchall()


def payout_short(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    out = []
    for channel, payout_id, day, amount, net, variance, reason, currency in _breaks(con, as_of, short=True):
        out.append(Alert("payout_short", "critical", f"{channel}:{payout_id}",
                         f"{channel} payout {payout_id} of {day} is {-variance:,.2f} {str(currency).upper()} short "
                         f"of its transactions ({amount:,.2f} paid, {net:,.2f} expected)",
                         {"channel": channel, "payout_id": payout_id, "payout_date": str(day),
                          "payout_amount": str(amount), "transactions_net": str(net), "variance": str(variance)},
                         timedelta(days=7), -variance))
    return out


def reconciliation_break(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime) -> list[Alert]:
    out = []
    for channel, payout_id, day, amount, net, variance, reason, currency in _breaks(con, as_of, short=False):
        out.append(Alert("reconciliation_break", "warning", f"{channel}:{payout_id}",
                         f"{channel} payout {payout_id} of {day} does not reconcile: {reason}",
                         {"channel": channel, "payout_id": payout_id, "payout_date": str(day),
                          "payout_amount": str(amount), "transactions_net": str(net), "variance": str(variance),
                          "reason": reason}, timedelta(days=7), abs(variance)))
    return out


def stale_sync(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime,
               now: datetime | None = None) -> list[Alert]:
    """A source whose last successful load is too old (wall time: syncing is a real-time matter
    even when the sandbox clock is elsewhere).  dlt writes `_dlt_loads` only for completed loads."""
    from finance_pipeline.platforms import registry

    now = now or datetime.now(timezone.utc)
    limit = timedelta(hours=settings.alert_stale_sync_hours)
    schemas = {r[0] for r in con.execute(
        "select table_schema from information_schema.tables where table_name = '_dlt_loads'").fetchall()}
    alerts = []
    for platform in registry.sources():
        schema = f"raw_{platform.name}"
        last = None
        if schema in schemas:
            last = con.execute(f'select max(inserted_at) from "{schema}"._dlt_loads where status = 0').fetchone()[0]
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=timezone.utc)
        if last is not None and now - last <= limit:
            continue
        age_h = None if last is None else (now - last).total_seconds() / 3600
        alerts.append(Alert(
            "stale_sync", "critical" if last is None or age_h > 4 * settings.alert_stale_sync_hours else "warning",
            platform.name,
            f"{platform.title}: " + ("never synced" if last is None else
                                     f"last successful sync {age_h:.1f} h ago (limit {settings.alert_stale_sync_hours} h)"),
            {"platform": platform.name, "last_success": None if last is None else last.isoformat()},
            timedelta(hours=settings.alert_stale_sync_hours), round(age_h or 0, 1)))
    return alerts


RULES = (order_volume, payment_failures, overdue_invoices, payout_missing, payout_short, reconciliation_break,
         stale_sync)


def run_rules(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: datetime, rules=RULES,
              log=None) -> dict[str, list[Alert] | None]:  # noqa: ANN001
    """Every rule's current conditions; None for a rule whose inputs are missing (nothing resolves)."""
    out: dict[str, list[Alert] | None] = {}
    for rule in rules:
        try:
            out[rule.__name__] = rule(con, settings, as_of)
        except missing_table_errors() as exc:
            out[rule.__name__] = None
            if log:
                log(f"alert rule {rule.__name__} skipped: {str(exc).splitlines()[0]}")
    return out
