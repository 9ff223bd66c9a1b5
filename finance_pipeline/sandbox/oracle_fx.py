"""The FX half of the oracle: the day's GBP rates from the ECB's reference rates (`fct_fx_rates`) and
the month-end revaluation of open foreign-currency trade invoices (`rpt_fx_exposure`), computed in
Python `Decimal` from the world without reading any dbt code.

- What the ECB published is the world's truth about it (`platforms/ecb/rates.py:observations`, the
  same rows the emulator serves); from there on everything is computed here: the cross rate through
  the euro, GBP per unit = (GBP per EUR) / (X per EUR) half-up to 10 decimals, EUR = GBP per EUR; each
  calendar day from the first publication to the as-of date takes the last published day's rate.
- The receivable of an invoice on a day is the ledger oracle's receivable movements for its document
  (`oracle_ledger`, order / refund / payments at the invoice's rate) dated on or before that day: its
  sum in the invoice currency (open amount) and in GBP (carrying amount).  Revalued = open amount x
  that day's rate, half-up to the penny; unrealised FX = revalued - carrying.
- Dates: each month end before the as-of date (from the month of the first movement) and the as-of
  date itself (the clock's business date).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from finance_pipeline.platforms.ecb.rates import observations
from finance_pipeline.sandbox import oracle as oracle_mod
from finance_pipeline.sandbox.oracle_ledger import AR_DOCS_KEY
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.sandbox.world import business_date, q

HOME = "GBP"
TEN_PLACES = Decimal("1e-10")


def cross_rates(published: list[tuple[str, date, Decimal]], through: date) -> dict[tuple[date, str], dict]:
    """{(calendar day, currency): {gbp_per_unit, source_rate_date, is_published_day}}."""
    home = {d: v for c, d, v in published if c == HOME}
    by_ccy: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for d, v in home.items():
        by_ccy["EUR"][d] = v.quantize(TEN_PLACES)
    for c, d, v in published:
        if c != HOME and d in home:
            with localcontext() as ctx:
                ctx.prec = 60
                by_ccy[c][d] = (home[d] / v).quantize(TEN_PLACES, rounding=ROUND_HALF_UP)
    out = {}
    for c, rates in by_ccy.items():
        days = sorted(rates)
        day, last = days[0], None
        while day <= through:
            if day in rates:
                last = day
            out[(day, c)] = {"gbp_per_unit": rates[last], "source_rate_date": last, "is_published_day": last == day}
            day += timedelta(days=1)
    return out


def _month_ends(first: date, today: date) -> list[date]:
    out, m = [], date(first.year, first.month, 1)
    while True:
        nxt = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        end = nxt - timedelta(days=1)
        if end >= today:
            return out
        out.append(end)
        m = nxt


def expected(sandbox: Sandbox, channels: set[str] | None = None) -> dict[str, dict[Any, dict]]:
    """{'fct_fx_rates': {(day, ccy): row}, 'rpt_fx_exposure': {(as_of_date, invoice_number): row}};
    `channels` limits the exposure to invoices of those channels (the sources a run had on)."""
    clock = sandbox.clock
    today = business_date(clock)
    with sandbox.connect() as con:
        published = observations(con, clock)
    rates = cross_rates(published, today)
    marts = oracle_mod.compute(sandbox).marts
    invoices = marts["fct_invoices"]
    docs = marts[AR_DOCS_KEY]
    doc_invoice = {doc: number for number, doc in docs["invoice_docs"].items()
                   if number in invoices and (channels is None or doc[0] in channels)}
    moves: dict[str, list[tuple[date, Decimal, Decimal]]] = defaultdict(list)
    for doc, at, foreign, home in docs["moves"]:
        number = doc_invoice.get(doc)
        if number is None:
            continue
        inv = invoices[number]
        if inv["currency"] == HOME or inv["status"] == "voided":
            continue
        assert foreign is not None, (number, at)  # an invoice is only ever settled in its own currency
        moves[number].append((business_date(at), foreign, home))
    exposure = {}
    first = min((d for ms in moves.values() for d, _, _ in ms), default=today)
    for as_of in [*_month_ends(first, today), today]:
        for number, ms in moves.items():
            open_amt = sum((f for d, f, _ in ms if d <= as_of), Decimal("0.00"))
            carrying = sum((h for d, _, h in ms if d <= as_of), Decimal("0.00"))
            if open_amt == 0 and carrying == 0:
                continue
            inv = invoices[number]
            rate = rates[(as_of, inv["currency"])]
            revalued = q(open_amt * rate["gbp_per_unit"])
            exposure[(as_of, number)] = {
                "is_today": as_of == today, "exposure": "receivable", "currency": inv["currency"],
                "customer_id": inv["customer_id"], "open_amount": open_amt, "carrying_amount_home": carrying,
                "ecb_gbp_per_unit": rate["gbp_per_unit"], "ecb_rate_date": rate["source_rate_date"],
                "revalued_amount_home": revalued, "unrealised_fx_home": revalued - carrying,
            }
    return {"fct_fx_rates": rates, "rpt_fx_exposure": exposure}
