"""What the ECB publishes for the sandbox world: its reference rates derived from the world's daily
`fx_rates` (GBP per unit), on TARGET business days only, as of the sandbox clock.

This is the world's truth about the ECB (the emulator serves it, the oracle reads it), not a
computation of the pipeline: the GBP cross rates, the carry-forward over closed days and everything
built on them are computed independently by dbt and by `sandbox/oracle_fx.py`.

- USD per EUR on day d = (GBP per EUR) / (GBP per USD) of the world, rounded half-up to the series'
  DECIMALS; GBP per EUR = the world's EUR rate rounded to 5 decimals.
- Published at 16:00 Europe/Berlin on day d: before that moment of the clock, day d is not served.
- TARGET closing days: Saturdays, Sundays, 1 January, Good Friday, Easter Monday, 1 May, 25 and
  26 December.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from finance_pipeline.platforms.ecb import DECIMALS

FRANKFURT = ZoneInfo("Europe/Berlin")
PUBLISHED_AT = time(16, 0)


def easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@lru_cache(maxsize=64)
def target_holidays(year: int) -> frozenset[date]:
    e = easter(year)
    return frozenset({date(year, 1, 1), e - timedelta(days=2), e + timedelta(days=1), date(year, 5, 1),
                      date(year, 12, 25), date(year, 12, 26)})


def is_target_day(d: date) -> bool:
    return d.weekday() < 5 and d not in target_holidays(d.year)


def published_at(d: date) -> datetime:
    return datetime.combine(d, PUBLISHED_AT, tzinfo=FRANKFURT)


def quantize(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-DECIMALS.get(currency, 4)), rounding=ROUND_HALF_UP)


def observations(con, clock: datetime, currencies: tuple[str, ...] = ("GBP", "USD", "AUD")
                 ) -> list[tuple[str, date, Decimal]]:
    """(currency, date, units per EUR) published by `clock`, by currency then date."""
    rows = con.execute("select rate_date, currency, gbp_per_unit from fx_rates where rate_date <= ? "
                       "order by rate_date", [clock.date()]).fetchall()
    by_day: dict[date, dict[str, Decimal]] = {}
    for d, ccy, gbp in rows:
        by_day.setdefault(d, {})[ccy] = Decimal(gbp)
    out = []
    for d, rates in by_day.items():
        if not is_target_day(d) or published_at(d) > clock or "EUR" not in rates:
            continue
        gbp_per_eur = rates["EUR"]
        for ccy in currencies:
            if ccy == "GBP":
                out.append((ccy, d, quantize(gbp_per_eur, ccy)))
            elif ccy in rates:
                out.append((ccy, d, quantize(gbp_per_eur / rates[ccy], ccy)))
    out.sort(key=lambda r: (r[0], r[1]))
    return out
