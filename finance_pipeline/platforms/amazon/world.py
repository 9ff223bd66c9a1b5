"""The Amazon channel of the sandbox world: retail buyers on Amazon.co.uk (GBP) and Amazon.com (USD).

The business sells through Fulfilment by Amazon (FBA): Amazon ships, so buyers pay no shipping
and the seller pays a per-shipment fulfilment fee.  What happens to an order:

- placed (`purchase_at`), shipped by Amazon 6-40 h later, or (2 %) cancelled before shipping;
- on shipment Amazon posts a ShipmentEvent: per item the Principal (ex tax) and Tax charges, the
  referral fee (Commission, 15 % of the sales price, minimum 0.25 GBP / 0.30 USD), the FBA
  fulfilment fee, and on Amazon.com the sales tax withheld as marketplace facilitator
  (`MarketplaceFacilitatorTax-Principal`, the negative of the Tax charge): Amazon collects and
  remits US sales tax, the business never owes it.  Amazon.co.uk prices include 20 % VAT, which
  the business (UK-established) owes itself, so nothing is withheld there;
- (8 %) a refund of one item (some or all units) posted later as a RefundEvent: Principal and Tax
  given back, the referral fee returned less Amazon's refund administration fee
  (`RefundCommission`, 20 % of the returned fee, at most 5.00), and US tax no longer withheld;
- every month a ServiceFeeEvent for the Professional selling plan (25.00 GBP / 39.99 USD).

Events are settled in financial event groups of 14 days per marketplace.  A group is `Open` until
its end, then `Closed`; the transfer is initiated a day later (`FundTransferStatus` Processing ->
Succeeded).  Amazon.com groups are paid to the UK bank account in GBP, converted at the world's
USD rate of the transfer day (`ConvertedTotal`).

Tables (docs/architecture.md, "Channel kit"): amazon_orders, amazon_order_items, amazon_refunds,
amazon_event_lines (one row per financial event component), amazon_event_groups.
"""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.platforms.amazon import MARKETPLACES
from finance_pipeline.sandbox import catalogue as cat

UTC = timezone.utc
D = Decimal
CENT = D("0.01")
ZERO = D("0.00")

SHARE = 0.15  # Amazon orders per Shopify order
US_SHARE = 0.4
CANCEL_RATE = 0.02
REFUND_RATE = 0.08
REFERRAL_RATE = D("0.15")
REFERRAL_MIN = {"GBP": D("0.25"), "USD": D("0.30")}
FBA_FEE = {"GBP": D("2.70"), "USD": D("3.85")}  # per shipped item line, plus 0.05 per extra unit
FBA_FEE_PER_EXTRA_UNIT = D("0.05")
REFUND_ADMIN_RATE = D("0.20")
REFUND_ADMIN_MAX = D("5.00")
SUBSCRIPTION = {"GBP": D("25.00"), "USD": D("39.99")}
GROUP_DAYS = 14
GROUP_ANCHOR = {"UK": datetime(2024, 12, 20, tzinfo=UTC), "US": datetime(2024, 12, 24, tzinfo=UTC)}
TRANSFER_AFTER = timedelta(days=1)


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def group_index(marketplace: str, at: datetime) -> int:
    return int((at - GROUP_ANCHOR[marketplace]).total_seconds() // (GROUP_DAYS * 86400))


def group_start(marketplace: str, k: int) -> datetime:
    return GROUP_ANCHOR[marketplace] + timedelta(days=GROUP_DAYS * k)


def group_id(seed: int, marketplace: str, k: int) -> str:
    """Amazon's group ids are opaque 43-character URL-safe strings."""
    digest = hashlib.blake2b(f"{seed}:amazon-group:{marketplace}:{k}".encode(), digest_size=32).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _order_id(rng, prefix: str, taken: set[str]) -> str:
    while True:
        oid = f"{prefix}-{rng.randint(1_000_000, 9_999_999)}-{rng.randint(1_000_000, 9_999_999)}"
        if oid not in taken:
            taken.add(oid)
            return oid


def _buyer_email(seed: int, customer_id: str, mkt: str) -> str:
    """Amazon shows buyers only through an anonymised relay address."""
    local = hashlib.blake2b(f"{seed}:{customer_id}".encode(), digest_size=8).hexdigest()
    return f"{local}@marketplace.{'amazon.co.uk' if mkt == 'UK' else 'amazon.com'}"


def generate(world) -> dict[str, list[dict]]:
    orders: list[dict] = []
    items: list[dict] = []
    refunds: list[dict] = []
    lines: list[dict] = []
    taken: set[str] = set()
    seq = {"item": 52_310_000_000_000, "adj": 71_840_000_000_000, "line": 0}
    max_posted = world.start

    def component(mkt: str, currency: str, event_type: str, event_key: str, posted: datetime, list_name: str,
                  ctype: str, amount: Decimal, *, order_id=None, item=None, adjustment_id=None, quantity=None,
                  tax_model=None, fee_reason=None) -> None:
        nonlocal max_posted
        seq["line"] += 1
        max_posted = max(max_posted, posted)
        lines.append({
            "line_id": seq["line"], "event_type": event_type, "event_key": event_key, "marketplace": mkt,
            "group_id": group_id(world.seed, mkt, group_index(mkt, posted)), "posted_at": posted,
            "order_id": order_id, "order_item_id": item["order_item_id"] if item else None,
            "adjustment_id": adjustment_id, "sku": item["sku"] if item else None, "quantity": quantity,
            "list_name": list_name, "component_type": ctype, "tax_model": tax_model, "fee_reason": fee_reason,
            "amount": amount, "currency": currency,
        })

    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            mkt = "US" if rng.random() < US_SHARE else "UK"
            mkt_id, _name, currency, prefix = MARKETPLACES[mkt]
            customer = world.retail_customer(rng, ("US",) if mkt == "US" else ("GB",))
            purchase = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 86399))
            order_id = _order_id(rng, prefix, taken)
            incl = mkt == "UK"
            treatment = world.tax_treatment(customer["country"], False)  # uk_vat | us_sales_tax
            rates = world.tax_rates(treatment, customer["country"], customer["region"])
            order = {
                "order_id": order_id, "marketplace": mkt, "marketplace_id": mkt_id, "currency": currency,
                "customer_id": customer["customer_id"], "country": customer["country"], "region": customer["region"],
                "buyer_email": _buyer_email(world.seed, customer["customer_id"], mkt),
                "purchase_at": purchase, "shipped_at": None, "cancelled_at": None,
                "taxes_included": incl, "tax_treatment": treatment,
            }
            order_items = []
            for pos, (product, qty) in enumerate(world.pick_lines(rng, False)):
                seq["item"] += 7
                unit = cat.market_price(product, currency)
                price = unit * qty
                if incl:
                    (_, rate), = rates
                    tax = q(price * rate / (1 + rate))
                    rate_sum = rate
                else:
                    tax = sum((q(price * r) for _, r in rates), ZERO)
                    rate_sum = sum((r for _, r in rates), D("0"))
                item = {
                    "order_item_id": str(seq["item"]), "order_id": order_id, "position": pos, "sku": product.sku,
                    "title": product.title, "quantity": qty, "unit_price": unit, "item_price": price,
                    "item_tax": tax, "tax_rate": rate_sum, "marketplace_facilitator": mkt == "US",
                    "unit_cost_gbp": world.unit_cost(product.sku, purchase),
                }
                order_items.append(item)
            if rng.random() < CANCEL_RATE:
                order["cancelled_at"] = purchase + timedelta(minutes=rng.randint(20, 180))
                orders.append(order)
                items.extend(order_items)
                continue
            shipped = purchase + timedelta(seconds=rng.randint(6 * 3600, 40 * 3600))
            order["shipped_at"] = shipped
            orders.append(order)
            items.extend(order_items)
            key = f"S:{order_id}"
            commissions = {}
            for item in order_items:
                principal = item["item_price"] - item["item_tax"] if incl else item["item_price"]
                tax = item["item_tax"]
                basis = principal + tax if incl else principal
                commission = max(q(basis * REFERRAL_RATE), REFERRAL_MIN[currency])
                commissions[item["order_item_id"]] = commission
                fba = q(FBA_FEE[currency] + FBA_FEE_PER_EXTRA_UNIT * (item["quantity"] - 1))
                kw = {"order_id": order_id, "item": item, "quantity": item["quantity"]}
                component(mkt, currency, "ShipmentEvent", key, shipped, "ItemChargeList", "Principal", principal, **kw)
                component(mkt, currency, "ShipmentEvent", key, shipped, "ItemChargeList", "Tax", tax, **kw)
                if item["marketplace_facilitator"] and tax:
                    component(mkt, currency, "ShipmentEvent", key, shipped, "ItemTaxWithheldList",
                              "MarketplaceFacilitatorTax-Principal", -tax, tax_model="MarketplaceFacilitator", **kw)
                component(mkt, currency, "ShipmentEvent", key, shipped, "ItemFeeList", "Commission", -commission, **kw)
                component(mkt, currency, "ShipmentEvent", key, shipped, "ItemFeeList", "FBAPerUnitFulfillmentFee",
                          -fba, **kw)
            if rng.random() < REFUND_RATE:
                item = rng.choice(order_items)
                qty = item["quantity"]
                rq = rng.randint(1, qty) if qty > 1 and rng.random() < 0.5 else qty
                days = rng.uniform(60, 100) if rng.random() < 0.1 else rng.uniform(3, 45)
                at = shipped + timedelta(seconds=int(days * 86400) + rng.randint(0, 3600))
                seq["adj"] += 11
                adj = str(seq["adj"])
                principal_full = item["item_price"] - item["item_tax"] if incl else item["item_price"]
                principal = q(principal_full * rq / qty)
                tax = q(item["item_tax"] * rq / qty)
                commission_back = q(commissions[item["order_item_id"]] * rq / qty)
                admin = min(q(commission_back * REFUND_ADMIN_RATE), REFUND_ADMIN_MAX)
                refunds.append({
                    "refund_id": adj, "order_id": order_id, "order_item_id": item["order_item_id"], "posted_at": at,
                    "quantity": rq, "principal": principal, "tax": tax, "commission_refund": commission_back,
                    "refund_commission": admin, "marketplace_facilitator": item["marketplace_facilitator"],
                    "currency": currency,
                })
                key = f"R:{adj}"
                kw = {"order_id": order_id, "item": item, "adjustment_id": adj, "quantity": rq}
                component(mkt, currency, "RefundEvent", key, at, "ItemChargeAdjustmentList", "Principal", -principal, **kw)
                component(mkt, currency, "RefundEvent", key, at, "ItemChargeAdjustmentList", "Tax", -tax, **kw)
                if item["marketplace_facilitator"] and tax:
                    component(mkt, currency, "RefundEvent", key, at, "ItemTaxWithheldList",
                              "MarketplaceFacilitatorTax-Principal", tax, tax_model="MarketplaceFacilitator", **kw)
                component(mkt, currency, "RefundEvent", key, at, "ItemFeeAdjustmentList", "Commission",
                          commission_back, **kw)
                component(mkt, currency, "RefundEvent", key, at, "ItemFeeAdjustmentList", "RefundCommission",
                          -admin, **kw)

    # the Professional selling plan, charged on the 1st of each month on each marketplace
    horizon = max_posted
    month = datetime(world.start.year, world.start.month, 1, 9, tzinfo=UTC)
    while month <= horizon:
        for mkt, (_mid, _name, currency, _p) in MARKETPLACES.items():
            component(mkt, currency, "ServiceFeeEvent", f"F:{mkt}:{month:%Y-%m}", month, "FeeList", "Subscription",
                      -SUBSCRIPTION[currency], fee_reason="Subscription fee")
        month = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, 9, tzinfo=UTC)

    groups = []
    for mkt in MARKETPLACES:
        currency = MARKETPLACES[mkt][2]
        last = group_index(mkt, max_posted)
        for k in range(group_index(mkt, world.start), last + 1):
            start = group_start(mkt, k)
            end = start + timedelta(days=GROUP_DAYS)
            transfer = end + TRANSFER_AFTER
            digest = hashlib.blake2b(f"{world.seed}:amazon-trace:{mkt}:{k}".encode(), digest_size=8).hexdigest()
            groups.append({
                "group_id": group_id(world.seed, mkt, k), "marketplace": mkt, "currency": currency,
                "start_at": start, "end_at": end, "transfer_at": transfer,
                # GBP per unit of the marketplace currency on the transfer day (Amazon's conversion)
                "conversion_rate": D("1") if currency == "GBP" else world.fx_rate(currency, transfer),
                "trace_id": digest.upper(), "account_tail": "042",
            })
    world.index("amazon_event_lines", "group_id")
    world.index("amazon_orders", "purchase_at")
    world.index("amazon_order_items", "order_id")
    return {"amazon_orders": orders, "amazon_order_items": items, "amazon_refunds": refunds,
            "amazon_event_lines": lines, "amazon_event_groups": groups}
