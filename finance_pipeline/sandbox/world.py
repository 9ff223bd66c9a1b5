"""The sandbox world: one consistent curtain business, generated from (seed, size) and revealed by a clock.

The generator writes the *truth* — what happened, with the amounts each platform recorded — for
the whole timeline up to a horizon beyond the clock.  Every object carries the timestamps of its
events (created, refunded, edited, cancelled, paid out …); emulators render the state of each
object *as of the clock*, so advancing the clock makes new orders appear and old ones change
(late refunds, edits, disputes closing, payouts landing), exactly as a live shop would.

Generation is day by day with one RNG per day, so the same (seed, size) always gives the same
world, and a longer horizon only appends days.  The oracle (`oracle.py`) computes the expected
finance figures from these tables in plain Python, independently of dbt.

Money is `Decimal` in major units for Shopify-recorded amounts (Shopify speaks decimal strings)
and `int` minor units for Stripe (Stripe speaks integer minor units).
"""
from __future__ import annotations

import hashlib
import math
import random
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.settings import BUSINESS_TIMEZONE

UTC = timezone.utc
LONDON = ZoneInfo(BUSINESS_TIMEZONE)
D = Decimal
CENT = D("0.01")
ZERO = D("0.00")

WORLD_START = datetime(2025, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 365
INITIAL_CLOCK = WORLD_START + timedelta(days=HISTORY_DAYS)
LOOKAHEAD_DAYS = 500  # events of an order can land this long after it was placed (late payers, disputes)

SHOP_ID_BASE = 5_100_000_000_000
def _generator_fingerprint() -> str:
    """A stored world is reused only if it was made by this very generator and cost list."""
    from pathlib import Path

    h = hashlib.blake2b(digest_size=4)
    here = Path(__file__).resolve().parent
    channel_worlds = sorted((here.parent / "platforms").glob("*/world.py"))
    for path in (here / "world.py", here / "catalogue.py", cat.COSTS_SEED, *channel_worlds):
        h.update(path.read_bytes())
    return h.hexdigest()


WORLD_FORMAT = _generator_fingerprint()


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def to_minor(x: Decimal) -> int:
    return int((x * 100).to_integral_value(rounding=ROUND_HALF_UP))


def stripe_id(prefix: str, seed: int, n: int) -> str:
    """Deterministic Stripe-looking ids: ch_3Q… (24 base62 characters)."""
    digest = hashlib.blake2b(f"{seed}:{prefix}:{n}".encode(), digest_size=18).digest()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    num = int.from_bytes(digest, "big")
    chars = []
    for _ in range(24):
        num, r = divmod(num, 62)
        chars.append(alphabet[r])
    return f"{prefix}_{''.join(chars)}"


def business_date(at: datetime) -> date:
    """Periods are cut in the business time zone (Europe/London)."""
    return at.astimezone(LONDON).date()


def day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class WorldSpec:
    seed: int
    size: int  # orders in the first year of history
    through: date  # orders are generated for days before this date

    @property
    def key(self) -> str:
        return f"g{WORLD_FORMAT}-s{self.seed}-n{self.size}-t{self.through.isoformat()}" + (
            "" if anomalies_enabled() else "-quiet")


class _Seq:
    def __init__(self, start: int, step: int = 1) -> None:
        self.n = start
        self.step = step

    def __call__(self) -> int:
        self.n += self.step
        return self.n


class WorldBuilder:
    """Builds every table of the world as lists of row dicts."""

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.seed = spec.seed
        self.t: dict[str, list[dict[str, Any]]] = {name: [] for name in (
            "fx_rates", "products", "product_costs", "customers",
            "shopify_orders", "shopify_order_lines", "shopify_tax_lines", "shopify_refunds",
            "shopify_refund_lines", "shopify_transactions", "shopify_balance_transactions", "shopify_payouts",
            "shopify_gift_cards",
            "stripe_customers", "stripe_charges", "stripe_refunds", "stripe_disputes",
            "stripe_balance_transactions", "stripe_payouts",
        )}
        self.order_seq = _Seq(0)
        self.line_seq = _Seq(14_210_000_000_000, 3)
        self.refund_seq = _Seq(9_330_000_000_000, 7)
        self.refund_line_seq = _Seq(4_120_000_000_000, 3)
        self.txn_seq = _Seq(6_540_000_000_000, 11)
        self.bt_seq = _Seq(7_010_000_000_000, 13)
        self.stripe_seq = _Seq(0)
        self.fx: dict[tuple[date, str], Decimal] = {}
        self.costs: dict[str, list[tuple[date, Decimal]]] = {}
        self.indexes: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ reference data
    def _reference(self) -> None:
        rng = random.Random(self.seed * 7919 + 1)
        first = WORLD_START.date()
        last = self.spec.through + timedelta(days=LOOKAHEAD_DAYS + 5)
        level = {c: float(v) for c, v in cat.FX_CENTRE.items()}
        d = first
        while d <= last:
            for ccy, centre in cat.FX_CENTRE.items():
                # mean-reverting random walk, ~0.4 % daily moves
                level[ccy] += (float(centre) - level[ccy]) * 0.02 + rng.gauss(0, 0.004) * float(centre)
                rate = D(f"{level[ccy]:.6f}")
                self.fx[(d, ccy)] = rate
                self.t["fx_rates"].append({"rate_date": d, "currency": ccy, "gbp_per_unit": rate})
            d += timedelta(days=1)
        for p in cat.PRODUCTS:
            self.t["products"].append({
                "sku": p.sku, "title": p.title, "category": p.category, "unit": p.unit,
                "price_gbp": p.price_gbp,
            })
        # dated unit costs come from the business's price list (a dbt seed), scenario C3
        for sku, valid_from, cost in cat.product_costs():
            self.costs.setdefault(sku, []).append((valid_from, cost))
            self.t["product_costs"].append({"sku": sku, "valid_from": valid_from, "unit_cost_gbp": cost})
        for history in self.costs.values():
            history.sort()

    def fx_rate(self, ccy: str, when: datetime) -> Decimal:
        if ccy == "GBP":
            return D("1")
        return self.fx[(when.date(), ccy)]

    def unit_cost(self, sku: str, at: datetime) -> Decimal:
        """The cost valid on the business-time-zone date of `at`."""
        on = business_date(at)
        hist = self.costs[sku]
        i = bisect_right([h[0] for h in hist], on) - 1
        return hist[max(i, 0)][1]

    # ------------------------------------------------------------------ customers
    def _customers(self) -> None:
        rng = random.Random(self.seed * 104729 + 2)
        n_trade = max(24, self.spec.size // 100)
        n_retail = max(200, int(self.spec.size * 0.7))
        first_names = ["Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Freya", "Arthur", "Sophie", "Leo",
                       "Chloe", "Harry", "Emma", "Lucas", "Mia", "Liam", "Grace", "Jack", "Ella", "Hugo"]
        last_names = ["Smith", "Murphy", "Dubois", "Müller", "de Vries", "Jones", "Taylor", "Walsh", "Martin",
                      "Schmidt", "Brown", "Wilson", "Nguyen", "Kelly", "Bernard", "Fischer", "Evans", "Clarke"]
        trade_words = ["Interiors", "Design Studio", "Hotels", "Home Store", "Drapery", "Living", "Furnishings"]
        places = ["Bath", "Dublin", "Lyon", "Hamburg", "Utrecht", "Brooklyn", "Austin", "Sydney", "Leeds",
                  "Cork", "Bordeaux", "Munich", "Seattle", "Melbourne", "York", "Harrogate", "Galway"]
        self.trade_customers: list[dict] = []
        self.retail_customers: dict[str, list[dict]] = {}
        n = 0
        for kind, count in (("trade", n_trade), ("retail", n_retail)):
            for _ in range(count):
                n += 1
                if kind == "trade":
                    country = rng.choices(["GB", "IE", "FR", "DE", "NL", "US", "AU"], [60, 6, 6, 5, 3, 15, 5])[0]
                else:
                    country = rng.choices(["GB", "IE", "FR", "DE", "NL", "US", "AU"], [60, 4, 4, 4, 3, 17, 8])[0]
                region = rng.choice(cat.US_STATES) if country == "US" else None
                first, last = rng.choice(first_names), rng.choice(last_names)
                company = f"{rng.choice(places)} {rng.choice(trade_words)} {n}" if kind == "trade" else None
                cid = f"C{n:06d}"
                row = {
                    "customer_id": cid, "kind": kind, "first_name": first, "last_name": last,
                    "company": company, "email": f"{first.lower()}.{n}@example-{country.lower()}.test",
                    "country": country, "region": region, "currency": cat.CURRENCY_OF_COUNTRY[country],
                    "terms_days": (rng.choice([30, 30, 30, 60]) if kind == "trade" else None),
                    "vat_number": (f"{country}{rng.randint(100000000, 999999999)}"
                                   if kind == "trade" and country not in ("US", "AU") else None),
                    "resale_certificate": (f"RC-{region}-{rng.randint(10000, 99999)}"
                                           if kind == "trade" and country == "US" else None),
                    "shopify_customer_id": 7_300_000_000_000 + n * 17,
                    "stripe_customer_id": stripe_id("cus", self.seed, n) if kind == "trade" else None,
                    "created_at": WORLD_START - timedelta(days=rng.randint(1, 900)),
                }
                self.t["customers"].append(row)
                if kind == "trade":
                    self.trade_customers.append(row)
                    self.t["stripe_customers"].append({
                        "id": row["stripe_customer_id"], "email": row["email"], "name": company,
                        "created": row["created_at"], "customer_id": cid, "currency": row["currency"],
                    })
                else:
                    self.retail_customers.setdefault(country, []).append(row)
        self.retail_countries = list(self.retail_customers)
        self.retail_weights = [len(self.retail_customers[c]) for c in self.retail_countries]

    # ------------------------------------------------------------------ orders
    def build(self) -> dict[str, list[dict[str, Any]]]:
        self._reference()
        self._customers()
        d = WORLD_START.date()
        while d < self.spec.through:
            rng = random.Random((self.seed * 1_000_003) ^ (d.toordinal() * 2_654_435_761))
            weekday = d.weekday()
            base = self.daily_base(d)
            n_orders = max(0, int(round(base + math.sqrt(base) * rng.gauss(0, 1))))
            for _ in range(n_orders):
                trade = weekday < 5 and rng.random() < 0.17
                created = day_start(d) + timedelta(seconds=rng.randint(6 * 3600, 23 * 3600 - 1))
                if trade:
                    self._trade_order(rng, created)
                else:
                    self._retail_order(rng, created)
            d += timedelta(days=1)
        self._force_scenarios()
        if anomalies_enabled():
            self._volume_spike()
        self._gift_cards()
        self._tax_rounded_per_order()
        self._shopify_payouts()
        self._stripe_payouts()
        self._channels()
        return self.t

    def daily_base(self, d: date) -> float:
        """Expected Shopify orders on day `d`: the size spread over a year, with the curtain trade's
        seasons (autumn re-decorating before Christmas, January sales) and busier weekends."""
        weekday = d.weekday()
        season = 1.0 + 0.35 * math.exp(-((d.timetuple().tm_yday - 330) / 25.0) ** 2) \
            + 0.15 * math.exp(-((d.timetuple().tm_yday - 20) / 12.0) ** 2)
        return self.spec.size / HISTORY_DAYS * season * (1.12 if weekday >= 5 else 0.95)

    def _channels(self) -> None:
        """Every other sales channel adds its own tables (docs/architecture.md, "Channel kit")."""
        from finance_pipeline.platforms import registry

        for platform in registry.PLATFORMS:
            if platform.world is None:
                continue
            tables = registry.Platform.load(platform.world)(ChannelWorld(self, platform.name))
            for name, rows in tables.items():
                if not name.startswith(f"{platform.name}_"):
                    raise ValueError(f"{platform.name}: world table {name!r} must be named {platform.name}_<entity>")
                if name in self.t:
                    raise ValueError(f"{platform.name}: world table {name!r} is defined twice")
                self.t[name] = rows

    # -- shared pieces of an order -------------------------------------------------------
    def _new_order(self, rng: random.Random, created: datetime, customer: dict, trade: bool) -> dict:
        n = self.order_seq()
        currency = customer["currency"]
        country = customer["country"]
        taxes_included = (not trade) and currency in ("GBP", "EUR", "AUD")
        order = {
            "order_id": SHOP_ID_BASE + n * 7919, "name": f"#{1000 + n}", "order_number": 1000 + n,
            "customer_id": customer["customer_id"], "shopify_customer_id": customer["shopify_customer_id"],
            "kind": "trade" if trade else "retail", "currency": currency, "country": country,
            "region": customer["region"], "email": customer["email"],
            "fx_rate": self.fx_rate(currency, created), "taxes_included": taxes_included,
            "created_at": created, "cancelled_at": None, "cancel_reason": None, "fulfilled_at": None,
            "discount_code": None, "discount_pct": None, "shipping_title": None, "shipping_price": ZERO,
            "terms_days": customer["terms_days"] if trade else None, "due_on": None,
            "tax_treatment": None, "source_name": "shopify_draft_order" if trade else "web",
            "edited_at": None, "invoice_total": None, "shipping_refunded": False,
        }
        order["tax_treatment"] = self._tax_treatment(customer, trade)
        return order

    @staticmethod
    def _tax_treatment(customer: dict, trade: bool) -> str:
        c = customer["country"]
        if c == "GB":
            return "uk_vat"
        if trade:
            return {"US": "us_resale_exempt", "AU": "export_zero_rated"}.get(c, "eu_reverse_charge")
        return {"US": "us_sales_tax", "AU": "au_gst"}.get(c, "eu_oss_vat")

    def _tax_components(self, order: dict) -> tuple[tuple[str, Decimal], ...]:
        treat = order["tax_treatment"]
        if treat in ("uk_vat", "eu_oss_vat", "au_gst"):
            c = order["country"]
            return ((cat.VAT_TITLES[c], cat.VAT_RATES[c]),)
        if treat == "us_sales_tax":
            return cat.US_STATE_TAX[order["region"]]
        return ()

    def _taxes_for(self, order: dict, amount: Decimal) -> list[tuple[str, Decimal, Decimal]]:
        comps = self._tax_components(order)
        if not comps:
            return []
        if order["taxes_included"]:
            (title, rate), = comps
            return [(title, rate, q(amount * rate / (1 + rate)))]
        return [(title, rate, q(amount * rate)) for title, rate in comps]

    def _add_tax_lines(self, order: dict, owner: str, owner_id: int, taxes: list) -> Decimal:
        fx = order["fx_rate"]
        total = ZERO
        for pos, (title, rate, amount) in enumerate(taxes):
            self.t["shopify_tax_lines"].append({
                "order_id": order["order_id"], "owner": owner, "owner_id": owner_id, "position": pos,
                "title": title, "rate": rate, "amount": amount, "amount_shop": q(amount * fx),
            })
            total += amount
        return total

    def _add_line(self, rng: random.Random, order: dict, product: cat.Product, qty: int,
                  added_at: datetime | None, discount_pct: Decimal | None) -> dict:
        trade = order["kind"] == "trade"
        price = cat.trade_price(product, order["currency"]) if trade else cat.market_price(product, order["currency"])
        discount = q(price * qty * discount_pct) if discount_pct else ZERO
        line_total = price * qty - discount
        fx = order["fx_rate"]
        line = {
            "line_id": self.line_seq(), "order_id": order["order_id"], "sku": product.sku,
            "title": product.title, "category": product.category, "unit": product.unit,
            "variant_title": "per 10 cm" if product.unit == "10cm" else None,
            "quantity": qty, "price": price, "price_shop": q(price * fx),
            "discount": discount, "discount_shop": q(discount * fx),
            "added_at": added_at, "sold_at": added_at or order["created_at"],
            # sales are recognised at the order date (REST exposes no per-line edit time; decisions.md)
            "unit_cost_gbp": self.unit_cost(product.sku, order["created_at"]),
        }
        taxes = self._taxes_for(order, line_total)
        line["tax"] = self._add_tax_lines(order, "line", line["line_id"], taxes)
        line["tax_shop"] = sum((q(a * fx) for _, _, a in taxes), ZERO)
        line["taxes"] = taxes
        self.t["shopify_order_lines"].append(line)
        return line

    def _pick_lines(self, rng: random.Random, trade: bool) -> list[tuple[cat.Product, int]]:
        n_lines = rng.choices([1, 2, 3, 4, 5, 6, 8], [0, 10, 25, 25, 20, 12, 8] if trade else [45, 30, 15, 7, 3, 0, 0])[0]
        products = rng.sample(cat.PRODUCTS, n_lines)
        out = []
        for p in products:
            if p.unit == "10cm":
                qty = rng.randint(60, 600) if trade else rng.randint(12, 120)
            elif p.category == "accessories":
                qty = rng.randint(10, 80) if trade else rng.randint(1, 6)
            else:
                qty = rng.randint(2, 24) if trade else rng.choices([1, 2, 3, 4], [60, 25, 10, 5])[0]
            out.append((p, qty))
        return out

    def _shipping(self, rng: random.Random, order: dict, merchandise: Decimal) -> None:
        std, free_over, freight, freight_free = cat.SHIPPING[order["currency"]]
        if order["kind"] == "trade":
            price = ZERO if merchandise >= freight_free else freight
            title = "Trade freight"
        else:
            price = ZERO if merchandise >= free_over else std
            title = "Standard delivery"
        order["shipping_title"] = title
        order["shipping_price"] = price
        order["shipping_price_shop"] = q(price * order["fx_rate"])
        taxes = self._taxes_for(order, price) if price else []
        order["shipping_tax"] = self._add_tax_lines(order, "shipping", 0, taxes)
        order["shipping_tax_shop"] = sum((q(a * order["fx_rate"]) for _, _, a in taxes), ZERO)
        order["shipping_taxes"] = taxes

    @staticmethod
    def _payable(order: dict, lines: list[dict], with_shipping: bool = True) -> Decimal:
        goods = sum((l["price"] * l["quantity"] - l["discount"] for l in lines), ZERO)
        tax = sum((l["tax"] for l in lines), ZERO)
        ship = order["shipping_price"] if with_shipping else ZERO
        ship_tax = order["shipping_tax"] if with_shipping else ZERO
        if order["taxes_included"]:
            return goods + ship
        return goods + tax + ship + ship_tax

    # -- retail ------------------------------------------------------------------------------
    def _retail_order(self, rng: random.Random, created: datetime) -> None:
        country = rng.choices(self.retail_countries, self.retail_weights)[0]
        customer = rng.choice(self.retail_customers[country])
        order = self._new_order(rng, created, customer, trade=False)
        if rng.random() < 0.15:
            code, pct = rng.choice(cat.DISCOUNT_CODES)
            order["discount_code"], order["discount_pct"] = code, pct
        lines = [self._add_line(rng, order, p, qty, None, order["discount_pct"]) for p, qty in self._pick_lines(rng, False)]
        merchandise = sum((l["price"] * l["quantity"] - l["discount"] for l in lines), ZERO)
        self._shipping(rng, order, merchandise)
        self.t["shopify_orders"].append(order)
        # paid at checkout through Shopify Payments (scenario S1/P1)
        self._sale(order, self._payable(order, lines), created + timedelta(seconds=rng.randint(2, 40)))
        fulfilled = created + timedelta(hours=rng.uniform(18, 96))
        order["fulfilled_at"] = fulfilled

        roll = rng.random()
        remaining = {l["line_id"]: l["quantity"] for l in lines}
        if roll < 0.025:  # cancelled after payment: full refund (P12)
            at = created + timedelta(hours=rng.uniform(1, 20))
            order["cancelled_at"], order["cancel_reason"], order["fulfilled_at"] = at, "customer", None
            self._refund(rng, order, lines, remaining, at, "cancel", full=True)
            return
        if roll < 0.11:  # partial refund of one line, maybe with shipping (P4)
            at = fulfilled + timedelta(days=rng.uniform(2, 25))
            self._refund(rng, order, lines, remaining, at, "partial")
        if rng.random() < 0.012:  # late refund, older than any sync lookback (R8)
            at = created + timedelta(days=rng.uniform(60, 120))
            self._refund(rng, order, lines, remaining, at, "late")
        if rng.random() < 0.02:  # edited weeks later: a line added and charged (P13)
            at = created + timedelta(days=rng.uniform(7, 30), seconds=rng.randint(0, 3600))
            product = rng.choice(cat.ACCESSORIES)
            line = self._add_line(rng, order, product, rng.randint(1, 4), at, None)
            lines.append(line)
            order["edited_at"] = at
            self._sale(order, self._payable(order, [line], with_shipping=False), at + timedelta(minutes=rng.randint(5, 90)))

    def _sale(self, order: dict, amount: Decimal, at: datetime) -> None:
        txn_id = self.txn_seq()
        amount_shop = q(amount * order["fx_rate"])
        self.t["shopify_transactions"].append({
            "txn_id": txn_id, "order_id": order["order_id"], "kind": "sale", "gateway": "shopify_payments",
            "status": "success", "amount": amount, "amount_shop": amount_shop, "currency": order["currency"],
            "created_at": at, "refund_id": None, "parent_id": None,
        })
        pct = D("0.016") if order["currency"] == "GBP" else D("0.031")
        fee = q(amount_shop * pct) + D("0.20")
        self._shopify_bt("charge", order, txn_id, amount_shop, fee, at)

    def _shopify_bt(self, kind: str, order: dict, txn_id: int, amount: Decimal, fee: Decimal, at: datetime) -> None:
        self.t["shopify_balance_transactions"].append({
            "bt_id": self.bt_seq(), "type": kind, "order_id": order["order_id"], "txn_id": txn_id,
            "amount": amount, "fee": fee, "net": amount - fee, "currency": "GBP",
            "processed_at": at + timedelta(seconds=3), "payout_id": None,
        })

    def _refund(self, rng: random.Random, order: dict, lines: list[dict], remaining: dict[int, int],
                at: datetime, kind: str, full: bool = False) -> None:
        fx = order["fx_rate"]
        candidates = [l for l in lines if remaining.get(l["line_id"], 0) > 0]
        if not candidates:
            return
        if full:
            picks = [(l, remaining[l["line_id"]]) for l in candidates]
        else:
            l = rng.choice(candidates)
            left = remaining[l["line_id"]]
            picks = [(l, rng.randint(1, left) if left > 1 else 1)]
        refund_id = self.refund_seq()
        restock = rng.random() < 0.8
        total = ZERO
        rows = []
        for line, qty in picks:
            remaining[line["line_id"]] -= qty
            line_total = line["price"] * line["quantity"] - line["discount"]
            subtotal = q(line_total * qty / line["quantity"])
            tax = sum((q(a * qty / line["quantity"]) for _, _, a in line["taxes"]), ZERO)
            rows.append({
                "refund_line_id": self.refund_line_seq(), "refund_id": refund_id, "order_id": order["order_id"],
                "line_id": line["line_id"], "quantity": qty, "subtotal": subtotal, "total_tax": tax,
                "subtotal_shop": q(subtotal * fx), "total_tax_shop": q(tax * fx),
                "restock_type": "return" if restock else "no_restock", "sku": line["sku"],
                "unit_cost_gbp": line["unit_cost_gbp"],
            })
            total += subtotal if order["taxes_included"] else subtotal + tax
        shipping = shipping_tax = ZERO
        if order["shipping_price"] and (full or (kind == "partial" and rng.random() < 0.3)):
            if order["taxes_included"]:
                shipping_tax = order["shipping_tax"]
                shipping = order["shipping_price"] - shipping_tax
            else:
                shipping, shipping_tax = order["shipping_price"], order["shipping_tax"]
            total += shipping + shipping_tax
            order["shipping_refunded"] = True
        self.t["shopify_refund_lines"].extend(rows)
        self.t["shopify_refunds"].append({
            "refund_id": refund_id, "order_id": order["order_id"], "created_at": at, "kind": kind,
            "note": {"cancel": "Order cancelled", "partial": "Damaged in transit", "late": "Late return"}[kind],
            "restock": restock, "shipping_amount": shipping, "shipping_tax": shipping_tax,
            "shipping_amount_shop": q(shipping * fx), "shipping_tax_shop": q(shipping_tax * fx),
            "amount": total,
        })
        if order["kind"] == "retail":
            txn_id = self.txn_seq()
            amount_shop = q(total * fx)
            self.t["shopify_transactions"].append({
                "txn_id": txn_id, "order_id": order["order_id"], "kind": "refund", "gateway": "shopify_payments",
                "status": "success", "amount": total, "amount_shop": amount_shop, "currency": order["currency"],
                "created_at": at, "refund_id": refund_id, "parent_id": None,
            })
            self._shopify_bt("refund", order, txn_id, -amount_shop, ZERO, at)

    # -- trade ---------------------------------------------------------------------------------
    def _trade_order(self, rng: random.Random, created: datetime) -> None:
        customer = rng.choice(self.trade_customers)
        order = self._new_order(rng, created, customer, trade=True)
        lines = [self._add_line(rng, order, p, qty, None, None) for p, qty in self._pick_lines(rng, True)]
        merchandise = sum((l["price"] * l["quantity"] for l in lines), ZERO)
        self._shipping(rng, order, merchandise)
        self.t["shopify_orders"].append(order)
        terms = order["terms_days"]
        issued = business_date(created)
        order["due_on"] = issued + timedelta(days=terms)
        if rng.random() < 0.03:  # cancelled before payment (P11): no revenue, invoice voided
            at = created + timedelta(hours=rng.uniform(4, 90))
            order["cancelled_at"], order["cancel_reason"] = at, "customer"
            return
        order["fulfilled_at"] = created + timedelta(hours=rng.uniform(24, 120))
        # when will they pay?
        due = day_start(order["due_on"])
        roll = rng.random()
        if roll < 0.55:
            plan = [(None, created + timedelta(days=rng.uniform(3, terms)))]
        elif roll < 0.72:
            plan = [(None, due + timedelta(days=rng.uniform(2, 50)))]
        elif roll < 0.82:
            part = D(rng.randint(30, 70)) / 100
            plan = [(part, created + timedelta(days=rng.uniform(5, terms))),
                    (None, due + timedelta(days=rng.uniform(10, 90)))]
        elif roll < 0.94:
            plan = [(None, due + timedelta(days=rng.uniform(60, 190)))]
        else:
            plan = []  # never pays
        if lines and rng.random() < 0.03 and plan:
            first_pay = plan[0][1]
            at = created + timedelta(days=rng.uniform(0.5, 2.5))
            if at < first_pay:  # edit before any payment: the invoice grows
                line = self._add_line(rng, order, rng.choice(cat.ACCESSORIES), rng.randint(5, 30), at, None)
                lines.append(line)
                order["edited_at"] = at
        total = self._payable(order, lines)
        order["invoice_total"] = total
        paid = ZERO
        stops_paying = anomalies_enabled() and self._stops_paying(customer, created)
        kept = {name: len(self.t[name]) for name in STRIPE_PAYMENT_TABLES} if stops_paying else None
        for part, when in plan:
            amount = q(total * part) if part is not None else total - paid
            if amount <= 0:
                continue
            self._stripe_payment(rng, order, customer, amount, when)
            paid += amount
        if kept is not None:  # same random draws as a paying customer, so nothing else changes
            for name, n in kept.items():
                del self.t[name][n:]

    def _stripe_payment(self, rng: random.Random, order: dict, customer: dict, amount: Decimal, when: datetime) -> None:
        """A trade customer pays (part of) an invoice by card through Stripe (P3 failures, P9 duplicates).

        Some attempts are declined and retried a few days later; on a processor outage day every
        attempt fails with `processing_error` and is retried the next days (the spike the
        payment-failure alert is for)."""
        declines = 0
        if rng.random() < 0.12:
            declines = 1 + (rng.random() < 0.2)
        at = when
        while True:
            outage = is_outage_day(at)
            ok = declines == 0 and not outage
            charge = self._stripe_charge(rng, order, customer, amount, at, ok,
                                         failure_code="processing_error" if outage else None)
            if ok:
                break
            declines -= 0 if outage else 1
            at = at + timedelta(days=rng.uniform(1, 3))
        if rng.random() < 0.02:  # paid twice by mistake; the duplicate is refunded later
            dup = self._stripe_charge(rng, order, customer, amount, when + timedelta(hours=rng.uniform(1, 20)), True)
            self._stripe_refund(dup, dup["amount"], dup["created"] + timedelta(days=rng.uniform(2, 10)), "duplicate")
        elif rng.random() < 0.012:
            self._stripe_dispute(rng, charge)

    def _stripe_charge(self, rng: random.Random, order: dict, customer: dict, amount: Decimal,
                       at: datetime, ok: bool, failure_code: str | None = None) -> dict:
        n = self.stripe_seq()
        ccy = order["currency"]
        charge = {
            "charge_id": stripe_id("ch", self.seed, n), "seq": n, "customer": customer["stripe_customer_id"],
            "customer_id": customer["customer_id"], "amount": to_minor(amount), "currency": ccy.lower(),
            "status": "succeeded" if ok else "failed", "created": at.replace(microsecond=0),
            "failure_code": None if ok else failure_code or rng.choice(["card_declined", "insufficient_funds",
                                                                        "expired_card"]),
            "order_id": order["order_id"], "order_name": order["name"],
            "invoice_number": invoice_number(order["name"]), "card_country": order["country"],
            "balance_transaction": None, "payment_intent": stripe_id("pi", self.seed, n), "disputed": False,
        }
        if ok:
            fx = self.fx_rate(ccy, at)
            gbp = q(amount * fx)
            pct = {"GB": D("0.015")}.get(order["country"], D("0.025") if ccy == "EUR" else D("0.0325"))
            if ccy != "GBP":
                pct += D("0.02")
            fee = q(gbp * pct) + D("0.20")
            bt = self._stripe_bt("charge", "charge", charge["charge_id"], to_minor(gbp), to_minor(fee), at,
                                 None if ccy == "GBP" else fx, f"Invoice {charge['invoice_number']}")
            charge["balance_transaction"] = bt["bt_id"]
        charge["failure_message"] = None if ok else {
            "card_declined": "Your card was declined.", "insufficient_funds": "Your card has insufficient funds.",
            "expired_card": "Your card has expired.",
            "processing_error": "An error occurred while processing your card. Try again in a little bit.",
        }[charge["failure_code"]]
        self.t["stripe_charges"].append(charge)
        return charge

    def _stripe_bt(self, kind: str, category: str, source: str, amount: int, fee: int, at: datetime,
                   exchange_rate: Decimal | None, description: str | None, n: int | None = None) -> dict:
        n = self.stripe_seq() if n is None else n
        created = at.replace(microsecond=0)
        bt = {
            "bt_id": stripe_id("txn", self.seed, n), "seq": n, "type": kind, "reporting_category": category,
            "source": source, "amount": amount, "fee": fee, "net": amount - fee, "currency": "gbp",
            "exchange_rate": exchange_rate, "created": created,
            "available_on": day_start(created.date() + timedelta(days=2)), "payout_id": None,
            "description": description,
        }
        self.t["stripe_balance_transactions"].append(bt)
        return bt

    def _stripe_refund(self, charge: dict, amount: int, at: datetime, reason: str) -> None:
        n = self.stripe_seq()
        rid = stripe_id("re", self.seed, n)
        ccy = charge["currency"].upper()
        fx = self.fx_rate(ccy, at)
        gbp = q(D(amount) / 100 * fx)
        bt = self._stripe_bt("refund", "refund", rid, -to_minor(gbp), 0, at, None if ccy == "GBP" else fx,
                             f"Refund of duplicate payment {charge['invoice_number']}")
        self.t["stripe_refunds"].append({
            "refund_id": rid, "seq": n, "charge_id": charge["charge_id"], "amount": amount,
            "currency": charge["currency"], "created": at.replace(microsecond=0),
            "reason": "duplicate" if reason == "duplicate" else "requested_by_customer",
            "balance_transaction": bt["bt_id"], "status": "succeeded",
        })

    def _stripe_dispute(self, rng: random.Random, charge: dict, outcome: str | None = None) -> None:
        # ids derive from the charge, so a dispute keeps its ids when the world grows
        n = 1_000_000_000 + charge["seq"] * 4
        did = stripe_id("dp", self.seed, n)
        opened = charge["created"] + timedelta(days=rng.uniform(20, 60))
        closed = opened + timedelta(days=rng.uniform(25, 70))
        outcome = outcome or ("won" if rng.random() < 0.6 else "lost")
        ccy = charge["currency"].upper()
        fx_open = self.fx_rate(ccy, opened)
        gbp = to_minor(q(D(charge["amount"]) / 100 * fx_open))
        bt_open = self._stripe_bt("adjustment", "dispute", did, -gbp, 1500, opened,
                                  None if ccy == "GBP" else fx_open, f"Chargeback withdrawal for {charge['charge_id']}", n + 1)
        bt_close = None
        if outcome == "won":
            fx_close = self.fx_rate(ccy, closed)
            back = to_minor(q(D(charge["amount"]) / 100 * fx_close))
            bt_close = self._stripe_bt("adjustment", "dispute_reversal", did, back, 0, closed,
                                       None if ccy == "GBP" else fx_close, f"Chargeback reversal for {charge['charge_id']}", n + 2)["bt_id"]
        self.t["stripe_disputes"].append({
            "dispute_id": did, "seq": n, "charge_id": charge["charge_id"], "amount": charge["amount"],
            "currency": charge["currency"], "created": opened.replace(microsecond=0),
            "closed_at": closed.replace(microsecond=0), "outcome": outcome,
            "reason": rng.choice(["fraudulent", "product_not_received", "product_unacceptable"]),
            "bt_open": bt_open["bt_id"], "bt_close": bt_close,
        })
        charge["disputed"] = True

    # -- business anomalies (FINANCE_SANDBOX_ANOMALIES=off leaves them out) ---------------------
    def _stops_paying(self, customer: dict, created: datetime) -> bool:
        """One trade customer (picked on its own random stream) pays nothing it is invoiced from
        STOPS_PAYING_FROM on: its invoices run through 30, 60, 90 days overdue."""
        if not hasattr(self, "_non_payer"):
            self._non_payer = random.Random(self.seed * 4099 + 77).choice(self.trade_customers)["customer_id"]
        return customer["customer_id"] == self._non_payer and created >= STOPS_PAYING_FROM

    def _volume_spike(self) -> None:
        """A burst of extra retail orders on SPIKE_DAY (a viral post): four times a normal day, real
        orders paid through Shopify Payments like any other.  Its own random stream and id ranges,
        so no other order, line, refund or transaction changes."""
        if not (WORLD_START.date() <= SPIKE_DAY < self.spec.through):
            return
        rng = random.Random(self.seed * 7_777_777 + SPIKE_DAY.toordinal())
        saved = (self.order_seq, self.line_seq, self.refund_seq, self.refund_line_seq, self.txn_seq, self.bt_seq)
        self.order_seq = _Seq(900_000)
        self.line_seq = _Seq(14_900_000_000_000, 3)
        self.refund_seq = _Seq(9_900_000_000_000, 7)
        self.refund_line_seq = _Seq(4_900_000_000_000, 3)
        self.txn_seq = _Seq(6_900_000_000_000, 11)
        self.bt_seq = _Seq(7_900_000_000_000, 13)
        try:
            for _ in range(int(round(SPIKE_FACTOR * self.daily_base(SPIKE_DAY)))):
                created = day_start(SPIKE_DAY) + timedelta(seconds=rng.randint(9 * 3600, 22 * 3600))
                self._retail_order(rng, created)
        finally:
            (self.order_seq, self.line_seq, self.refund_seq, self.refund_line_seq, self.txn_seq,
             self.bt_seq) = saved

    # -- gift cards (scenario S12) ---------------------------------------------------------------
    def _tax_rounded_per_order(self) -> None:
        """Scenario S13: some tax-inclusive orders have their order-level tax rounded once, on the
        sum of the unrounded tax of every taxed line and the shipping line, while each line's own
        tax line stays rounded on its own (what Shopify shows for such an order: line `tax_lines`
        that add up to a cent or two more or less than the order's `tax_lines` / `total_tax`).

        The buyer pays the same (prices include tax); only the order-level figure differs.  It is
        kept as one extra `shopify_tax_lines` row per order with owner 'order' (one per rate; a
        tax-inclusive order has a single rate) and only for orders where the two figures differ.
        Eligible: tax-inclusive, at least two taxed owners (lines and shipping), no line added by a
        later edit.  The draws are on this scenario's own random stream, so no other row of the
        world changes."""
        rng = random.Random(self.seed * 15_485_863 + 13)
        lines_by_order: dict[int, list[dict]] = {}
        for line in self.t["shopify_order_lines"]:
            lines_by_order.setdefault(line["order_id"], []).append(line)
        for order in self.t["shopify_orders"]:
            if not order["taxes_included"] or order["edited_at"] is not None:
                continue
            owners = [(l["price"] * l["quantity"] - l["discount"], l["taxes"]) for l in lines_by_order.get(order["order_id"], ())
                      if l["taxes"]]
            if order.get("shipping_taxes"):
                owners.append((order["shipping_price"], order["shipping_taxes"]))
            if len(owners) < 2:
                continue
            if rng.random() >= 0.4:  # draw for every eligible order, so the stream does not depend on amounts
                continue
            (title, rate, _), = owners[0][1]
            exact = sum((amount * rate / (1 + rate) for amount, _ in owners), ZERO)
            rounded = sum((t[0][2] for _, t in owners), ZERO)
            if q(exact) == rounded:
                continue
            self.t["shopify_tax_lines"].append({
                "order_id": order["order_id"], "owner": "order", "owner_id": 0, "position": 0,
                "title": title, "rate": rate, "amount": q(exact), "amount_shop": q(q(exact) * order["fx_rate"]),
            })

    def _gift_cards(self) -> None:
        """A few UK retail orders a month buy a gift card (alone or beside goods), and later orders
        spend it: part of an order, all of it, or over several orders; some cards are never used.

        Gift cards are sold and spent in GBP by UK customers.  The card line carries no VAT (a
        multi-purpose voucher: VAT is due when it is spent) and is not shipped.  At checkout the
        card is charged first (an order transaction with gateway `gift_card`, never a Shopify
        Payments balance transaction) and the rest, if any, through Shopify Payments.  Every draw is
        on this scenario's own random stream (one per month) and every id in its own range, so no
        other row of the world changes, and a longer horizon only appends months."""
        saved = (self.order_seq, self.line_seq, self.txn_seq, self.bt_seq)
        self.order_seq = _Seq(800_000)
        self.line_seq = _Seq(14_800_000_000_000, 3)
        self.txn_seq = _Seq(6_800_000_000_000, 11)
        self.bt_seq = _Seq(7_800_000_000_000, 13)
        customers = self.retail_customers.get("GB") or []
        per_month = max(2.0, self.spec.size / 650)
        try:
            month = WORLD_START.date()
            while month < self.spec.through and customers:
                rng = random.Random(self.seed * 6_151 + 12 * 1_000_003 + month.toordinal())
                for _ in range(max(0, int(round(per_month + math.sqrt(per_month) * rng.gauss(0, 1))))):
                    day = month + timedelta(days=rng.randint(0, 27))
                    if day >= self.spec.through:
                        continue
                    created = day_start(day) + timedelta(seconds=rng.randint(8 * 3600, 22 * 3600))
                    self._gift_card_sale(rng, created, customers)
                month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        finally:
            self.order_seq, self.line_seq, self.txn_seq, self.bt_seq = saved

    def _gift_card_sale(self, rng: random.Random, created: datetime, customers: list[dict]) -> None:
        order = self._new_order(rng, created, rng.choice(customers), trade=False)
        value = rng.choice(GIFT_CARD_VALUES)
        goods = [self._add_line(rng, order, p, qty, None, None)
                 for p, qty in (self._pick_lines(rng, False) if rng.random() < 0.3 else [])]
        card_line = {
            "line_id": self.line_seq(), "order_id": order["order_id"], "sku": GIFT_CARD_SKU,
            "title": "Gift Card", "category": "gift_card", "unit": "piece", "variant_title": f"£{value:.0f}",
            "quantity": 1, "price": value, "price_shop": value, "discount": ZERO, "discount_shop": ZERO,
            "added_at": None, "sold_at": created, "unit_cost_gbp": ZERO, "tax": ZERO, "tax_shop": ZERO,
            "taxes": [], "gift_card": True,
        }
        self.t["shopify_order_lines"].append(card_line)
        if goods:
            self._shipping(rng, order, sum((l["price"] * l["quantity"] - l["discount"] for l in goods), ZERO))
        else:  # nothing to ship: a gift card is sent by e-mail
            order.update(shipping_price_shop=ZERO, shipping_tax=ZERO, shipping_tax_shop=ZERO, shipping_taxes=[])
        self.t["shopify_orders"].append(order)
        paid_at = created + timedelta(seconds=rng.randint(2, 40))
        self._sale(order, self._payable(order, goods) + value, paid_at)
        order["fulfilled_at"] = created + (timedelta(hours=rng.uniform(18, 96)) if goods else timedelta(minutes=1))
        card = {
            "gift_card_id": GIFT_CARD_ID_BASE + order["order_number"] * 31, "order_id": order["order_id"],
            "line_id": card_line["line_id"], "customer_id": order["customer_id"], "currency": "GBP",
            "initial_value": value, "created_at": paid_at,
        }
        card["last_characters"] = gift_card_last_characters(card["gift_card_id"])
        self.t["shopify_gift_cards"].append(card)
        # spent later: once (~60 %), over two orders (~25 %), or never (~15 %: breakage, not recognised)
        roll = rng.random()
        uses = 1 if roll < 0.6 else 2 if roll < 0.85 else 0
        balance, at = value, paid_at
        for _ in range(uses):
            at = at + timedelta(days=rng.uniform(3, 120), seconds=rng.randint(0, 3600))
            balance -= self._gift_card_redemption(rng, at, card, balance, customers)
            if balance <= 0:
                break

    def _gift_card_redemption(self, rng: random.Random, created: datetime, card: dict, balance: Decimal,
                              customers: list[dict]) -> Decimal:
        """An ordinary retail order paid first by the gift card, the rest (if any) by card."""
        order = self._new_order(rng, created, rng.choice(customers), trade=False)
        lines = [self._add_line(rng, order, p, qty, None, None) for p, qty in self._pick_lines(rng, False)]
        self._shipping(rng, order, sum((l["price"] * l["quantity"] - l["discount"] for l in lines), ZERO))
        self.t["shopify_orders"].append(order)
        payable = self._payable(order, lines)
        used = min(balance, payable)
        at = created + timedelta(seconds=rng.randint(2, 40))
        self.t["shopify_transactions"].append({
            "txn_id": self.txn_seq(), "order_id": order["order_id"], "kind": "sale", "gateway": "gift_card",
            "status": "success", "amount": used, "amount_shop": used, "currency": order["currency"],
            "created_at": at, "refund_id": None, "parent_id": None, "gift_card_id": card["gift_card_id"],
        })
        if payable > used:
            self._sale(order, payable - used, at + timedelta(seconds=1))
        order["fulfilled_at"] = created + timedelta(hours=rng.uniform(18, 96))
        return used

    def _force_scenarios(self) -> None:
        """Make sure a small world still holds at least one won and one lost dispute.

        Only charges of days 40-200 are considered, so the choice does not change when the
        world is regenerated with a longer horizon."""
        lo, hi = WORLD_START + timedelta(days=40), WORLD_START + timedelta(days=200)
        window = {c["charge_id"] for c in self.t["stripe_charges"] if lo <= c["created"] < hi}
        have = {d["outcome"] for d in self.t["stripe_disputes"] if d["charge_id"] in window}
        disputed = {d["charge_id"] for d in self.t["stripe_disputes"]}
        refunded = {r["charge_id"] for r in self.t["stripe_refunds"]}
        candidates = [c for c in self.t["stripe_charges"]
                      if c["status"] == "succeeded" and c["charge_id"] in window
                      and c["charge_id"] not in disputed | refunded]
        rng = random.Random(self.seed * 31 + 5)
        for outcome in ("won", "lost"):
            if outcome not in have and candidates:
                self._stripe_dispute(rng, candidates.pop(len(candidates) // 3), outcome)

    # -- payouts --------------------------------------------------------------------------
    def _shopify_payouts(self) -> None:
        """Shopify Payments pays out daily what was processed two days earlier; a day with more
        refunds than sales gives a negative payout (a debit from the bank, scenario P5)."""
        by_day: dict[date, list[dict]] = {}
        for bt in self.t["shopify_balance_transactions"]:
            by_day.setdefault(bt["processed_at"].date() + timedelta(days=2), []).append(bt)
        for pay_day in sorted(by_day):
            bts = by_day[pay_day]
            payout_id = 81_200_000_000 + pay_day.toordinal() * 101
            for bt in bts:
                bt["payout_id"] = payout_id
            self.t["shopify_payouts"].append({
                "payout_id": payout_id, "payout_date": pay_day, "currency": "GBP",
                "amount": sum((bt["net"] for bt in bts), ZERO),
                "visible_at": day_start(pay_day) + timedelta(hours=6),
                "charges_gross": sum((bt["amount"] for bt in bts if bt["type"] == "charge"), ZERO),
                "refunds_gross": sum((bt["amount"] for bt in bts if bt["type"] == "refund"), ZERO),
                "fees": sum((bt["fee"] for bt in bts), ZERO),
            })

    def _stripe_payouts(self) -> None:
        """Daily automatic payouts of everything that became available; a non-positive balance is
        carried to the next day (Stripe does not pay out a negative balance)."""
        by_day: dict[datetime, list[dict]] = {}
        for bt in self.t["stripe_balance_transactions"]:
            by_day.setdefault(bt["available_on"], []).append(bt)
        carried: list[dict] = []
        for day in sorted(by_day):
            carried.extend(by_day[day])
            amount = sum(bt["net"] for bt in carried)
            if amount <= 0:
                continue
            n = 2_000_000_000 + day.toordinal() * 2  # stable when the world grows
            pid = stripe_id("po", self.seed, n)
            created = day + timedelta(minutes=5)
            payout_bt = self._stripe_bt("payout", "payout", pid, -amount, 0, created, None, "STRIPE PAYOUT", n + 1)
            payout_bt["available_on"] = created
            payout_bt["payout_id"] = pid
            for bt in carried:
                bt["payout_id"] = pid
            self.t["stripe_payouts"].append({
                "payout_id": pid, "seq": n, "amount": amount, "currency": "gbp", "created": created,
                "arrival_date": day + timedelta(days=1), "balance_transaction": payout_bt["bt_id"],
                "method": "standard", "type": "bank_account",
            })
            carried = []


GIFT_CARD_VALUES = (D("25.00"), D("50.00"), D("50.00"), D("75.00"), D("100.00"), D("150.00"))
GIFT_CARD_SKU = "GIFT-CARD"
GIFT_CARD_ID_BASE = 5_710_000_000_000  # + order number x 31


def gift_card_last_characters(gift_card_id: int) -> str:
    """The last four characters of a gift card's code (Shopify shows only these)."""
    digest = hashlib.blake2b(str(gift_card_id).encode(), digest_size=8).digest()
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:4])


SPIKE_DAY = date(2025, 12, 31)  # the volume spike: the last day before the default clock …
SPIKE_FACTOR = 4.0  # … with this many times a normal day's orders on top
STOPS_PAYING_FROM = WORLD_START + timedelta(days=HISTORY_DAYS - 100)  # one trade customer's last paid invoice
STRIPE_PAYMENT_TABLES = ("stripe_charges", "stripe_balance_transactions", "stripe_refunds", "stripe_disputes")


def anomalies_enabled() -> bool:
    """Business anomalies in the sandbox world (a volume spike, a customer who stops paying);
    `FINANCE_SANDBOX_ANOMALIES=off` builds the world without them (its own stored world).  The
    processor outage days stay: they are part of the payment scenarios."""
    import os

    return (os.environ.get("FINANCE_SANDBOX_ANOMALIES") or "on").strip().lower() not in ("off", "0", "false", "no")


OUTAGE_EVERY_DAYS = 61  # a card-processing outage day every two months (2025-03-01, …, 2025-12-31)


def is_outage_day(at: datetime) -> bool:
    """Days on which every card attempt fails with a processing error (sandbox anomaly)."""
    return (at.date() - WORLD_START.date()).days % OUTAGE_EVERY_DAYS == OUTAGE_EVERY_DAYS - 2


def invoice_number(order_name: str) -> str:
    """The trade invoice number for a Shopify order name: '#1042' -> 'INV-1042'."""
    return f"INV-{order_name.lstrip('#')}"


def build_world(spec: WorldSpec) -> dict[str, list[dict[str, Any]]]:
    return WorldBuilder(spec).build()


class ChannelWorld:
    """What a sales channel's world generator gets (docs/architecture.md, "Channel kit").

    It sees the shared reference data (catalogue, customers, FX, dated costs, tax rules) and gets
    its own random stream per day, so adding or changing a channel never changes what any other
    channel — or the core Shopify/Stripe world — generates.
    """

    def __init__(self, builder: WorldBuilder, name: str) -> None:
        self.builder = builder
        self.name = name
        self.seed = builder.seed
        self.spec = builder.spec
        self.through = builder.spec.through
        self.start = WORLD_START
        self.indexes: dict[str, list[str]] = builder.indexes
        self._salt = zlib.crc32(name.encode())

    # -- time and randomness ------------------------------------------------------------------
    def rng(self, *key: int) -> random.Random:
        """A random stream for this channel and `key` (e.g. a date ordinal), stable across runs."""
        mixed = self.seed * 1_000_003 ^ self._salt * 2_654_435_761
        for k in key:
            mixed = (mixed * 6_364_136_223_846_793_005 + k * 1_442_695_040_888_963_407) % (1 << 64)
        return random.Random(mixed)

    def days(self, share: float):
        """Yield (day, rng, expected orders) for every history day; `share` scales the core
        Shopify volume (0.10 = a tenth as many orders as Shopify on a typical day)."""
        d = WORLD_START.date()
        while d < self.through:
            yield d, self.rng(d.toordinal()), self.builder.daily_base(d) * share
            d += timedelta(days=1)

    @staticmethod
    def count(rng: random.Random, expected: float) -> int:
        """A day's order count around `expected` (normal approximation of a Poisson count)."""
        return max(0, int(round(expected + math.sqrt(max(expected, 0.0)) * rng.gauss(0, 1))))

    # -- reference data -----------------------------------------------------------------------
    def fx_rate(self, ccy: str, when: datetime) -> Decimal:
        """GBP per unit of `ccy` on the UTC date of `when` (the world's daily reference rate)."""
        return self.builder.fx_rate(ccy, when)

    def unit_cost(self, sku: str, at: datetime) -> Decimal:
        return self.builder.unit_cost(sku, at)

    def retail_customer(self, rng: random.Random, countries: tuple[str, ...] | None = None) -> dict:
        """A retail customer (row of the `customers` table), weighted by where customers live."""
        pool = [c for c in self.builder.retail_countries if countries is None or c in countries]
        weights = [len(self.builder.retail_customers[c]) for c in pool]
        return rng.choice(self.builder.retail_customers[rng.choices(pool, weights)[0]])

    @property
    def trade_customers(self) -> list[dict]:
        return self.builder.trade_customers

    def pick_lines(self, rng: random.Random, trade: bool = False) -> list[tuple[cat.Product, int]]:
        """Products and quantities of a believable basket (fabric by the 10 cm, rails, accessories)."""
        return self.builder._pick_lines(rng, trade)

    @staticmethod
    def tax_treatment(country: str, trade: bool = False) -> str:
        return WorldBuilder._tax_treatment({"country": country}, trade)

    def tax_rates(self, treatment: str, country: str, region: str | None) -> tuple[tuple[str, Decimal], ...]:
        """(title, rate) components owed by the seller for a sale with this treatment."""
        return self.builder._tax_components({"tax_treatment": treatment, "country": country, "region": region})

    def index(self, table: str, *columns: str) -> None:
        """Ask the world store to index `table` on `columns` (emulators filter on them)."""
        self.indexes.setdefault(table, []).extend(columns)
