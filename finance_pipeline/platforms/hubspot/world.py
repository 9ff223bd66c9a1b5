"""The trade desk's CRM deals in HubSpot (UK/EU reps), and the deal generator both CRMs share.

A closed-won deal becomes a Shopify B2B trade order (core world, `shopify_orders` kind 'trade')
and so a trade invoice `INV-<order number>`.  The business runs two CRMs and splits trade customers
between them deterministically (`owner_crm`): Salesforce for the US accounts team and every hotel
account, HubSpot for everybody else.  `crm_deals(world, crm, ...)` is called by both platforms'
world generators (`platforms/salesforce/world.py` imports it; a world.py of either platform is in
the world's fingerprint, so editing this file rebuilds the world).

Per CRM, two tables:
- `<crm>_deals`: one row per deal (id, name, customer, currency, owner, created_at, deleted_at,
  `kind`: 'converted' | 'lost' | 'open' | 'won_no_order', order_id of the converted ones);
- `<crm>_deal_versions`: the deal's history (stage, amount, close_date, invoice_number, each from
  `valid_from`); the API shows the last version at or before the clock, `valid_from` is its
  last-modified time.

Deals that convert: created 5-45 days before the order, moved through some open stages, won hours
or days before the order was placed, at the rep's estimate (a third exact, the rest within ±15 %,
rounded to whole units); the `invoice_number` property is set once the order exists (hours later),
and one in ten is edited after close (amount corrected to the invoice total, weeks later).  A
cancelled trade order leaves a won deal whose invoice is voided.  Deals that do not convert, per
day: closed-lost (a few deleted later), open for long (half of them lost months later), and a few
won but never ordered.  Amounts are `Decimal` with 2 dp in the customer's (= invoice) currency.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

from finance_pipeline.sandbox.world import ChannelWorld, business_date, day_start, invoice_number, q

UTC = timezone.utc
D = Decimal
DEAL_SHARE = 0.05  # deals that never convert, per CRM, relative to the core Shopify volume

# HubSpot's default sales pipeline (internal stage ids)
OPEN_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent")
WON, LOST = "closedwon", "closedlost"
STAGE_PROBABILITY = {"appointmentscheduled": "0.2", "qualifiedtobuy": "0.4", "presentationscheduled": "0.6",
                     "decisionmakerboughtin": "0.8", "contractsent": "0.9", WON: "1.0", LOST: "0.0"}
HUBSPOT_OWNERS = ("51240301", "51240302", "51240303", "51240304")
PROJECTS = ("curtains", "blinds", "showroom drapes", "bedroom refit", "lobby drapery", "window dressing",
            "bay window project", "trade restock")


def owner_crm(customer: dict) -> str:
    """Which CRM holds a trade customer: Salesforce for US and hotel accounts, HubSpot for the rest."""
    if customer["country"] == "US" or "Hotels" in (customer.get("company") or ""):
        return "salesforce"
    return "hubspot"


def crm_deals(world: ChannelWorld, crm: str, *, deal_id: Callable[[int], str], owners: tuple[str, ...],
              open_stages: tuple[str, ...], won: str, lost: str) -> dict[str, list[dict[str, Any]]]:
    deals: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    customers = {c["customer_id"]: c for c in world.trade_customers}
    mine = [c for c in world.trade_customers if owner_crm(c) == crm]
    world.index(f"{crm}_deals", "deal_id")
    world.index(f"{crm}_deal_versions", "deal_id")

    def add(num: int, customer: dict, created: datetime, kind: str, rng, steps: list[tuple], order=None,
            deleted_at: datetime | None = None) -> None:
        did = deal_id(num)
        deals.append({
            "deal_id": did, "deal_num": num, "customer_id": customer["customer_id"],
            "company": customer["company"], "name": f"{customer['company']} - {rng.choice(PROJECTS)}",
            "currency": customer["currency"], "owner_id": rng.choice(owners), "created_at": created,
            "deleted_at": deleted_at, "kind": kind, "order_id": order["order_id"] if order else None,
        })
        for n, (at, stage, amount, close_date, number) in enumerate(steps):
            versions.append({"deal_id": did, "version": n, "valid_from": at, "stage": stage, "amount": amount,
                             "close_date": close_date, "invoice_number": number})

    def progress(rng, created: datetime, closed: datetime, amount: Decimal, expected: date) -> list[tuple]:
        """Open stages from `created` to just before `closed`, at the first estimate."""
        k = rng.randint(1, len(open_stages))
        span = max((closed - created).total_seconds(), 60.0)
        times = sorted(created + timedelta(seconds=rng.uniform(60, span * 0.95)) for _ in range(k - 1))
        return [(at, open_stages[i], amount, expected, None) for i, at in enumerate([created, *times])]

    # -- deals that became trade orders ------------------------------------------------------------
    for o in world.builder.t["shopify_orders"]:
        if o["kind"] != "trade" or owner_crm(customers[o["customer_id"]]) != crm:
            continue
        rng = world.rng(o["order_number"])
        customer = customers[o["customer_id"]]
        placed = o["created_at"]
        created = placed - timedelta(days=rng.uniform(5, 45))
        won_at = placed - timedelta(hours=rng.uniform(2, 72))
        total = o["invoice_total"] if o["invoice_total"] is not None else q(D(rng.randint(400, 6000)))
        estimate = total if rng.random() < 0.33 else total * (1 + D(rng.randint(-150, 150)) / 1000)
        amount = q(D(int(estimate)))
        first = q(amount * (1 + D(rng.randint(-200, 200)) / 1000))
        closes = business_date(won_at)
        steps = progress(rng, created, won_at, first, closes + timedelta(days=rng.randint(0, 20)))
        steps.append((won_at, won, amount, closes, None))
        linked = placed + timedelta(hours=rng.uniform(0.5, 8))
        steps.append((linked, won, amount, closes, invoice_number(o["name"])))
        if rng.random() < 0.10 and o["invoice_total"] is not None:  # edited after close
            steps.append((linked + timedelta(days=rng.uniform(3, 60)), won, o["invoice_total"], closes,
                          invoice_number(o["name"])))
        add(o["order_number"] * 2, customer, created, "converted", rng, steps, order=o)

    # -- deals that did not (or not yet) become orders -----------------------------------------------
    if not mine:
        return {f"{crm}_deals": deals, f"{crm}_deal_versions": versions}
    for d, rng, expected in world.days(DEAL_SHARE):
        if d.weekday() >= 5:
            continue
        for i in range(world.count(rng, expected * 7 / 5)):
            customer = rng.choice(mine)
            created = day_start(d) + timedelta(seconds=rng.randint(8 * 3600, 18 * 3600))
            amount = q(D(rng.randint(30, 900) * 10))
            roll = rng.random()
            num = (d.toordinal() * 100 + i) * 2 + 1
            if roll < 0.60:  # closed lost within two months; a few deleted afterwards
                closed = created + timedelta(days=rng.uniform(3, 60))
                steps = progress(rng, created, closed, amount, business_date(closed) + timedelta(days=7))
                steps.append((closed, lost, amount, business_date(closed), None))
                deleted = closed + timedelta(days=rng.uniform(1, 30)) if rng.random() < 0.05 else None
                add(num, customer, created, "lost", rng, steps, deleted_at=deleted)
            elif roll < 0.94:  # open for long: half are lost months later
                end = created + timedelta(days=rng.uniform(90, 300))
                expected_close = business_date(created) + timedelta(days=rng.randint(20, 90))
                if rng.random() < 0.5:
                    steps = progress(rng, created, end, amount, expected_close)
                    steps.append((end, lost, amount, business_date(end), None))
                    add(num, customer, created, "lost", rng, steps)
                else:
                    steps = progress(rng, created, end, amount, expected_close)
                    add(num, customer, created, "open", rng, steps)
            else:  # won, but the order was never placed (won, not invoiced)
                won_at = created + timedelta(days=rng.uniform(5, 40))
                steps = progress(rng, created, won_at, amount, business_date(won_at))
                steps.append((won_at, won, amount, business_date(won_at), None))
                add(num, customer, created, "won_no_order", rng, steps)
    return {f"{crm}_deals": deals, f"{crm}_deal_versions": versions}


def hubspot_deal_id(num: int) -> str:
    return str(18_400_000_000 + num)


def generate(world: ChannelWorld) -> dict[str, list[dict[str, Any]]]:
    return crm_deals(world, "hubspot", deal_id=hubspot_deal_id, owners=HUBSPOT_OWNERS,
                     open_stages=OPEN_STAGES, won=WON, lost=LOST)


# The state of every deal as of a clock `$t`, for the emulators (the oracle computes it in Python).
CURRENT_SQL = """
select d.*, v.stage, v.amount, v.close_date, v.invoice_number, v.valid_from as modified_at,
       d.deleted_at is not null and d.deleted_at <= $t as is_deleted,
       case when d.deleted_at is not null and d.deleted_at <= $t then d.deleted_at
            else v.valid_from end as system_modstamp
from {crm}_deals d
join (select *, row_number() over (partition by deal_id order by version desc) as rn
      from {crm}_deal_versions where valid_from <= $t) v on v.deal_id = d.deal_id and v.rn = 1
where d.created_at <= $t
"""


def current_sql(crm: str) -> tuple[str, int]:
    """(SQL with `?` for the clock, how many times the clock is bound)."""
    sql = CURRENT_SQL.format(crm=crm)
    return sql.replace("$t", "?"), sql.count("$t")
