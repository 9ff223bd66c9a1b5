"""Shopify REST orders from the world's truth tables, as of a clock.

`order_state_sql` decides in DuckDB which orders match a list query (`updated_at`, closed and
cancelled as of the clock); `render_orders` fetches one page's rows with seven queries restricted
to the page's ids (orders, customers, lines, tax lines, refunds, refund lines, transactions) and
assembles Shopify's JSON objects in Python.  (Building the objects inside DuckDB with `to_json`
was tried and was slower: the statement alone took ~40 ms to plan.)

State as of the clock: an order's refunds, edit-added lines and transactions exist once their
time has passed; `updated_at` is the latest event at or before the clock (placed, cancelled,
fulfilled, refunded, edited, paid), truncated to the second; an order is closed (archived) when
cancelled, or when fulfilled if it was paid at checkout — trade orders on payment terms are paid
outside Shopify, so they stay open, `pending` (`voided` when cancelled).  The SQL and the Python
here implement the same rules; the tests check that list filters and rendered fields agree.

Money (Shopify REST): plain money fields are shop money (GBP), each with a `*_set` MoneyBag of
shop and presentment amounts.  Component amounts (unit prices, line discounts, tax lines,
shipping, refund lines) are the world's own shop amounts; order totals are the presentment total
converted at the order's rate (Shopify converts each amount on its own), so a checkout's
`total_price` is exactly the GBP amount of its Shopify Payments charge.  Transactions are in the
presentment currency.  Timestamps: second precision, shop time zone, with the offset.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from finance_pipeline.sandbox.world import gift_card_last_characters, q
from finance_pipeline.settings import BUSINESS_TIMEZONE

SHOP_CURRENCY = "GBP"
SHOP_TZ = ZoneInfo(BUSINESS_TIMEZONE)
VENDOR = "Curtains Sandbox"
ZERO = Decimal("0.00")

COUNTRY_NAMES = {"GB": "United Kingdom", "IE": "Ireland", "FR": "France", "DE": "Germany", "NL": "Netherlands",
                 "US": "United States", "AU": "Australia"}
CITIES = {"GB": ("Leeds", "LS1 4AP"), "IE": ("Dublin", "D02 X285"), "FR": ("Lyon", "69002"),
          "DE": ("Hamburg", "20095"), "NL": ("Utrecht", "3511 LX"), "AU": ("Sydney", "2000")}
US_CITIES = {"NY": ("New York", "10001", "New York"), "CA": ("Los Angeles", "90012", "California"),
             "TX": ("Austin", "78701", "Texas"), "WA": ("Seattle", "98101", "Washington"),
             "NJ": ("Newark", "07102", "New Jersey"), "FL": ("Miami", "33130", "Florida"),
             "OR": ("Portland", "97204", "Oregon")}
AU_PROVINCE = ("NSW", "New South Wales")
EU = frozenset({"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
                "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})

# Ids for objects the world does not number itself, derived from world ids (stable as it grows).
SHIPPING_LINE_BASE = 4_400_000_000_000  # + order number
FULFILLMENT_BASE = 5_500_000_000_000  # + order number
TERMS_BASE = 3_300_000_000  # + order number
ADJUSTMENT_OFFSET = -1_000_000_000_000  # refund id -> its shipping-refund order adjustment id
SOURCE_OFFSET = 900_000_000_000  # order transaction id -> the Shopify Payments charge/refund id


# ---------------------------------------------------------------------------- which orders
def order_state_sql(where: str) -> str:
    """Orders visible at `$clock` and matching `where`, with `updated_at_asof`, `closed_at_asof`
    and `cancelled_asof` (see the module docstring), for filtering and sorting lists."""
    return f"""
        WITH o AS (SELECT * FROM shopify_orders WHERE created_at <= $clock AND {where}),
        ev AS (
            SELECT order_id, created_at AS t FROM shopify_refunds
             WHERE created_at <= $clock AND order_id IN (SELECT order_id FROM o)
            UNION ALL
            SELECT order_id, added_at FROM shopify_order_lines
             WHERE added_at <= $clock AND order_id IN (SELECT order_id FROM o)
            UNION ALL
            SELECT order_id, created_at FROM shopify_transactions
             WHERE created_at <= $clock AND order_id IN (SELECT order_id FROM o)
        ),
        last_event AS (SELECT order_id, max(t) AS t FROM ev GROUP BY order_id)
        SELECT o.*,
               date_trunc('second', greatest(o.created_at,
                   CASE WHEN o.cancelled_at <= $clock THEN o.cancelled_at END,
                   CASE WHEN o.fulfilled_at <= $clock THEN o.fulfilled_at END,
                   e.t)) AS updated_at_asof,
               CASE WHEN o.cancelled_at <= $clock THEN o.cancelled_at
                    WHEN o.kind = 'retail' AND o.fulfilled_at <= $clock THEN o.fulfilled_at
               END AS closed_at_asof,
               coalesce(o.cancelled_at <= $clock, false) AS cancelled_asof
          FROM o LEFT JOIN last_event e USING (order_id)
    """


# ---------------------------------------------------------------------------- the page's rows
IN_PAGE = "order_id BETWEEN $lo AND $hi AND order_id IN (SELECT unnest($ids::BIGINT[]))"
# `BETWEEN` lets DuckDB skip row groups by their zone maps: world tables are in order-id order.
PAGE_QUERIES = {
    "orders": f"""
        SELECT order_id, name, order_number, kind, currency, country, region, email, fx_rate, taxes_included,
               created_at, cancelled_at, cancel_reason, fulfilled_at, discount_code, discount_pct,
               shipping_title, shipping_price, shipping_price_shop, shipping_tax, shipping_tax_shop,
               terms_days, due_on, source_name, shopify_customer_id
          FROM shopify_orders WHERE {IN_PAGE} AND created_at <= $clock""",
    "lines": f"""
        SELECT order_id, line_id, sku, title, variant_title, quantity, price, price_shop, discount,
               discount_shop, added_at, coalesce(gift_card, false) AS gift_card
          FROM shopify_order_lines WHERE {IN_PAGE} AND (added_at IS NULL OR added_at <= $clock)
         ORDER BY line_id""",
    "taxes": f"""
        SELECT order_id, owner, owner_id, title, rate, amount, amount_shop
          FROM shopify_tax_lines WHERE {IN_PAGE} ORDER BY owner_id, position""",
    "refunds": f"""
        SELECT order_id, refund_id, created_at, note, restock, shipping_amount, shipping_tax,
               shipping_amount_shop, shipping_tax_shop, amount
          FROM shopify_refunds WHERE {IN_PAGE} AND created_at <= $clock ORDER BY created_at, refund_id""",
    "refund_lines": f"""
        SELECT order_id, refund_id, refund_line_id, line_id, quantity, subtotal, total_tax, subtotal_shop,
               total_tax_shop, restock_type
          FROM shopify_refund_lines
         WHERE {IN_PAGE} AND refund_id IN (SELECT refund_id FROM shopify_refunds
                                           WHERE {IN_PAGE} AND created_at <= $clock)
         ORDER BY refund_line_id""",
    "txns": f"""
        SELECT order_id, txn_id, kind, gateway, status, amount, currency, created_at, refund_id, gift_card_id
          FROM shopify_transactions WHERE {IN_PAGE} AND created_at <= $clock ORDER BY created_at, txn_id""",
}
CUSTOMERS_SQL = """
    SELECT shopify_customer_id, first_name, last_name, company, created_at, vat_number, resale_certificate
      FROM customers WHERE shopify_customer_id IN (SELECT unnest($ids::BIGINT[]))"""


def render_orders(db: Any, ids: Sequence[int], clock: datetime) -> list[dict]:
    """The REST objects of the orders `ids` visible at `clock`, in the order of `ids`."""
    if not ids:
        return []
    params = {"lo": min(ids), "hi": max(ids), "ids": list(ids), "clock": clock}
    heads = db.execute(PAGE_QUERIES["orders"], params).fetchall()
    if not heads:
        return []
    rows: dict[str, dict[int, list]] = {}
    for name in ("lines", "taxes", "refunds", "refund_lines", "txns"):
        sql = PAGE_QUERIES[name]
        grouped: dict[int, list] = defaultdict(list)
        for row in db.execute(sql, params if "$clock" in sql else {k: params[k] for k in ("lo", "hi", "ids")}).fetchall():
            grouped[row[0]].append(row)
        rows[name] = grouped
    customers = {r[0]: r for r in db.execute(CUSTOMERS_SQL, {"ids": list({h[-1] for h in heads})}).fetchall()}
    out = {}
    for h in heads:
        oid = h[0]
        out[oid] = _order(h, customers[h[-1]], rows["lines"].get(oid, ()), rows["taxes"].get(oid, ()),
                          rows["refunds"].get(oid, ()), rows["refund_lines"].get(oid, ()),
                          rows["txns"].get(oid, ()), clock)
    return [out[i] for i in ids if i in out]


def render_transactions(db: Any, order_id: int, clock: datetime) -> list[dict]:
    return transactions_by_order(db, [order_id], clock).get(order_id, [])


def transactions_by_order(db: Any, ids: Sequence[int], clock: datetime) -> dict[int, list[dict]]:
    """The REST transactions of the orders `ids` made by `clock` (`orders/{id}/transactions.json`;
    the GraphQL Order lists the same under `transactions`)."""
    if not ids:
        return {}
    grouped: dict[int, list] = defaultdict(list)
    for t in db.execute(PAGE_QUERIES["txns"], {"lo": min(ids), "hi": max(ids), "ids": list(ids), "clock": clock}).fetchall():
        grouped[t[0]].append(t)
    out = {}
    for order_id, txns in grouped.items():
        first_sale = next((t[1] for t in txns if t[2] == "sale" and t[3] != "gift_card"), None)
        out[order_id] = [_transaction(t, first_sale) for t in txns]
    return out


# ---------------------------------------------------------------------------- objects
def money(x: Decimal) -> str:
    """Shopify money string: two decimals, never '-0.00'."""
    return f"{x:.2f}" if x else "0.00"


def bag(shop: Decimal, pres: Decimal, currency: str) -> dict:
    return {"shop_money": {"amount": money(shop), "currency_code": SHOP_CURRENCY},
            "presentment_money": {"amount": money(pres), "currency_code": currency}}


def ts(value: datetime | None) -> str | None:
    """REST timestamps: second precision, in the shop's time zone with its offset."""
    if value is None:
        return None
    return value.astimezone(SHOP_TZ).replace(microsecond=0).isoformat()


def _transaction(t: tuple, first_sale: int | None) -> dict:
    """A REST order transaction.  A gift card tender is a `sale` through the `gift_card` gateway
    with no authorization, whose receipt names the card (`gift_card_id`, the last characters of
    its code), as Shopify records it."""
    order_id, txn_id, kind, gateway, status, amount, currency, created_at, _refund_id, gift_card_id = t
    at = ts(created_at)
    card = gateway == "gift_card"
    return {
        "id": txn_id, "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{txn_id}", "order_id": order_id,
        "kind": kind, "gateway": gateway, "status": status,
        "message": None if card else "Transaction approved" if kind == "sale" else "Refund processed",
        "created_at": at, "processed_at": at, "test": False,
        "authorization": f"ch_{txn_id}" if kind == "sale" and not card else None,
        "parent_id": first_sale if kind == "refund" else None, "location_id": None, "user_id": None,
        "device_id": None, "error_code": None, "source_name": "web",
        "receipt": ({"gift_card_id": gift_card_id, "gift_card_last_characters": gift_card_last_characters(gift_card_id)}
                    if card and gift_card_id is not None else {}),
        "amount": money(amount), "currency": currency, "payment_id": f"c{order_id}.{txn_id}",
    }


def _address(first: str, last: str, company: str | None, country: str, region: str | None) -> dict:
    province = province_code = None
    if country == "US":
        city, zip_, province = US_CITIES.get(region or "", ("Springfield", "00000", region))
        province_code = region
    elif country == "AU":
        (city, zip_), (province_code, province) = CITIES["AU"], AU_PROVINCE
    else:
        city, zip_ = CITIES.get(country, ("", ""))
    return {
        "first_name": first, "last_name": last, "name": f"{first} {last}", "company": company,
        "address1": "12 Mill Lane", "address2": None, "city": city, "zip": zip_,
        "province": province, "province_code": province_code,
        "country": COUNTRY_NAMES.get(country, country), "country_code": country, "phone": None,
    }


def _exemptions(trade: bool, country: str, region: str | None) -> list[str]:
    if not trade or country == "GB":
        return []
    if country == "US":
        return [f"US_{region}_RESELLER_EXEMPTION"]
    return ["EU_REVERSE_CHARGE_EXEMPTION_RULE"] if country in EU else []


def _refund(r: tuple, lines: list, txns: list, first_sale: int | None, ccy: str) -> dict:
    order_id, refund_id, created_at, note, restock, ship, ship_tax, ship_shop, ship_tax_shop, _amount = r
    adjustments = []
    if ship or ship_tax:  # Shopify reports refunded shipping as a negative adjustment, ex tax, tax apart
        adjustments.append({
            "id": refund_id + ADJUSTMENT_OFFSET, "order_id": order_id, "refund_id": refund_id,
            "kind": "shipping_refund", "reason": "Shipping refund",
            "amount": money(-ship_shop), "amount_set": bag(-ship_shop, -ship, ccy),
            "tax_amount": money(-ship_tax_shop), "tax_amount_set": bag(-ship_tax_shop, -ship_tax, ccy),
        })
    at = ts(created_at)
    return {
        "id": refund_id, "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}", "order_id": order_id,
        "created_at": at, "processed_at": at, "note": note, "restock": restock, "user_id": None,
        "refund_line_items": [{
            "id": rl[2], "line_item_id": rl[3], "quantity": rl[4], "restock_type": rl[9], "location_id": None,
            "subtotal": money(rl[7]), "subtotal_set": bag(rl[7], rl[5], ccy),
            "total_tax": money(rl[8]), "total_tax_set": bag(rl[8], rl[6], ccy),
        } for rl in lines],
        "transactions": [_transaction(t, first_sale) for t in txns],
        "order_adjustments": adjustments, "duties": [],
    }


def _order(h: tuple, customer: tuple, lines: Sequence, taxes: Sequence, refunds: Sequence, refund_lines: Sequence,
           txns: Sequence, clock: datetime) -> dict:
    (oid, name, order_number, kind, ccy, country, region, email, fx, taxes_included, created_at, cancelled_at,
     cancel_reason, fulfilled_at, discount_code, discount_pct, shipping_title, shipping_price, shipping_price_shop,
     shipping_tax, shipping_tax_shop, terms_days, due_on, source_name, customer_id) = h
    _, first_name, last_name, company, customer_created_at, vat_number, resale_certificate = customer
    trade = kind == "trade"
    cancelled = cancelled_at is not None and cancelled_at <= clock
    fulfilled = fulfilled_at is not None and fulfilled_at <= clock

    # tax lines by owner: ("line", line_id), ("shipping", 0) or ("order", 0); order-level sums per (title, rate)
    tax_by_owner: dict[tuple[str, int], list] = defaultdict(list)
    for t in taxes:
        tax_by_owner[(t[1], t[2])].append(t)
    order_tax: dict[tuple[str, Decimal], list[Decimal]] = {}

    def tax_lines(owner: tuple[str, int]) -> list[dict]:
        out = []
        for _, _, _, title, rate, amount, amount_shop in tax_by_owner.get(owner, ()):
            acc = order_tax.setdefault((title, rate), [ZERO, ZERO])
            acc[0] += amount
            acc[1] += amount_shop
            out.append({"title": title, "rate": rate.normalize(), "price": money(amount_shop),
                        "price_set": bag(amount_shop, amount, ccy), "channel_liable": False})
        return out

    refunded_qty: dict[int, int] = defaultdict(int)
    for rl in refund_lines:
        refunded_qty[rl[3]] += rl[4]

    line_items = []
    items_price = discounts = line_tax = refunded_discount = ZERO
    last_event = created_at
    for (_, line_id, sku, title, variant_title, qty, price, price_shop, discount, discount_shop, added_at,
         gift_card) in lines:
        if added_at is not None and added_at > last_event:
            last_event = added_at
        items_price += price * qty
        discounts += discount
        its_taxes = tax_lines(("line", line_id))
        line_tax += sum((t[5] for t in tax_by_owner.get(("line", line_id), ())), ZERO)
        back = refunded_qty.get(line_id, 0)
        if back:
            refunded_discount += q(discount * back / qty)
        line_items.append({
            "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
            "name": f"{title} - {variant_title}" if variant_title else title,
            "title": title, "variant_title": variant_title, "sku": sku, "vendor": VENDOR,
            "quantity": qty, "current_quantity": qty - back,
            "fulfillable_quantity": 0 if fulfilled or cancelled else qty - back,
            "fulfillment_status": "fulfilled" if fulfilled else None,
            "price": money(price_shop), "price_set": bag(price_shop, price, ccy),
            "total_discount": money(discount_shop), "total_discount_set": bag(discount_shop, discount, ccy),
            "discount_allocations": ([{"amount": money(discount_shop), "amount_set": bag(discount_shop, discount, ccy),
                                       "discount_application_index": 0}] if discount else []),
            "tax_lines": its_taxes, "taxable": bool(its_taxes),
            "gift_card": gift_card, "requires_shipping": not gift_card, "product_exists": True, "duties": [],
        })
    shipping_tax_lines = tax_lines(("shipping", 0))
    total_tax = line_tax + shipping_tax
    # S13: an order whose tax Shopify rounded once for the whole order carries its own order-level
    # rows; its `tax_lines` and `total_tax` are those, a cent or two off the sum of the line taxes
    if tax_by_owner.get(("order", 0)):
        order_tax = {(t[3], t[4]): [t[5], t[6]] for t in tax_by_owner[("order", 0)]}
        total_tax = sum((t[5] for t in tax_by_owner[("order", 0)]), ZERO)
    subtotal = items_price - discounts
    total = subtotal + shipping_price + (ZERO if taxes_included else total_tax)

    # payments and refunds made by the clock
    paid = refunded = ZERO
    first_sale = None
    gateways: list[str] = []  # payment_gateway_names: every gateway the checkout charged, in order
    txn_by_refund: dict[int, list] = defaultdict(list)
    for t in txns:
        if t[7] > last_event:
            last_event = t[7]
        if t[2] == "sale":
            if t[3] not in gateways:
                gateways.append(t[3])
            if t[3] != "gift_card":  # a refund goes back to the card payment, never to a gift card here
                first_sale = first_sale or t[1]
            paid += t[5] if t[4] == "success" else ZERO
        elif t[2] == "refund":
            refunded += t[5] if t[4] == "success" else ZERO
        if t[8] is not None:
            txn_by_refund[t[8]].append(t)
    lines_by_refund: dict[int, list] = defaultdict(list)
    for rl in refund_lines:
        lines_by_refund[rl[1]].append(rl)
    refund_total = refunded_tax = ZERO
    for r in refunds:
        last_event = max(last_event, r[2])
        refund_total += r[9]
        refunded_tax += r[6]
    refunded_subtotal = sum((rl[5] for rl in refund_lines), ZERO)
    refunded_tax += sum((rl[6] for rl in refund_lines), ZERO)

    if trade or paid == 0:
        financial_status = "voided" if cancelled else "pending"
    elif refunded >= paid:
        financial_status = "refunded"
    elif refunded > 0:
        financial_status = "partially_refunded"
    elif paid < total:
        financial_status = "partially_paid"  # an edit added a line; its charge is not taken yet
    else:
        financial_status = "paid"
    if financial_status == "voided":
        cur_subtotal = cur_tax = cur_total = cur_discounts = ZERO
    else:
        cur_subtotal = subtotal - refunded_subtotal
        cur_tax = total_tax - refunded_tax
        cur_total = total - refund_total
        cur_discounts = discounts - refunded_discount
    if cancelled:
        last_event = max(last_event, cancelled_at)
    if fulfilled:
        last_event = max(last_event, fulfilled_at)
    closed_at = cancelled_at if cancelled else fulfilled_at if fulfilled and not trade else None

    def amounts(field: str, pres: Decimal) -> dict:
        shop = q(pres * fx)
        return {field: money(shop), f"{field}_set": bag(shop, pres, ccy)}

    address = _address(first_name, last_name, company, country, region)
    created = ts(created_at)
    tax_exempt = trade and country != "GB"
    order = {
        "id": oid, "admin_graphql_api_id": f"gid://shopify/Order/{oid}", "name": name, "order_number": order_number,
        "number": order_number - 1000, "email": email, "contact_email": email, "phone": None,
        "created_at": created, "processed_at": created, "updated_at": ts(last_event),
        "cancelled_at": ts(cancelled_at) if cancelled else None, "cancel_reason": cancel_reason if cancelled else None,
        "closed_at": ts(closed_at), "confirmed": True, "test": False,
        "financial_status": financial_status, "fulfillment_status": "fulfilled" if fulfilled else None,
        "currency": SHOP_CURRENCY, "presentment_currency": ccy, "taxes_included": taxes_included,
        "tax_exempt": tax_exempt, "estimated_taxes": False, "source_name": source_name,
        "tags": "trade" if trade else "", "note": None, "note_attributes": [], "buyer_accepts_marketing": False,
        "payment_gateway_names": [] if trade else gateways or ["shopify_payments"],
        **amounts("total_line_items_price", items_price),
        **amounts("total_discounts", discounts),
        **amounts("subtotal_price", subtotal),
        **amounts("total_tax", total_tax),
        "total_shipping_price_set": bag(shipping_price_shop, shipping_price, ccy),
        **amounts("total_price", total),
        **amounts("current_subtotal_price", cur_subtotal),
        **amounts("current_total_tax", cur_tax),
        **amounts("current_total_discounts", cur_discounts),
        **amounts("current_total_price", cur_total),
        "total_outstanding": money(max(ZERO, cur_total - (paid - refunded))), "total_tip_received": "0.00",
        "tax_lines": [{"title": title, "rate": rate.normalize(), "price": money(acc[1]), "price_set": bag(acc[1], acc[0], ccy),
                       "channel_liable": False} for (title, rate), acc in order_tax.items()],
        "discount_codes": ([{"code": discount_code, "amount": money(q(discounts * fx)), "type": "percentage"}]
                           if discount_code else []),
        "discount_applications": ([{"type": "discount_code", "code": discount_code,
                                    "value": f"{discount_pct * 100:.1f}", "value_type": "percentage",
                                    "allocation_method": "across", "target_selection": "all",
                                    "target_type": "line_item"}] if discount_code else []),
        "line_items": line_items,
        "shipping_lines": [] if shipping_title is None else [{
            "id": SHIPPING_LINE_BASE + order_number, "title": shipping_title, "code": shipping_title,
            "source": "shopify", "price": money(shipping_price_shop),
            "price_set": bag(shipping_price_shop, shipping_price, ccy),
            "discounted_price": money(shipping_price_shop),
            "discounted_price_set": bag(shipping_price_shop, shipping_price, ccy),
            "discount_allocations": [], "tax_lines": shipping_tax_lines,
        }],
        "fulfillments": ([{"id": FULFILLMENT_BASE + order_number, "order_id": oid, "status": "success",
                           "created_at": ts(fulfilled_at), "updated_at": ts(fulfilled_at)}] if fulfilled else []),
        "refunds": [_refund(r, lines_by_refund[r[1]], txn_by_refund[r[1]], first_sale, ccy) for r in refunds],
        "customer": {
            "id": customer_id, "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}", "email": email,
            "first_name": first_name, "last_name": last_name, "created_at": ts(customer_created_at),
            "updated_at": ts(customer_created_at), "state": "enabled", "verified_email": True, "currency": ccy,
            "tags": "trade" if trade else "", "tax_exempt": tax_exempt,
            "tax_exemptions": _exemptions(trade, country, region),
            "note": (f"VAT {vat_number}" if vat_number else f"Resale certificate {resale_certificate}"
                     if resale_certificate else None),
            "default_address": {**address, "id": customer_id + 1, "customer_id": customer_id, "default": True},
        },
        "billing_address": address, "shipping_address": address,
        "payment_terms": None,
    }
    if trade:  # B2B terms: due on the due date, at the time of day the order was placed (shop time)
        due_at = datetime.combine(due_on, created_at.astimezone(SHOP_TZ).time(), tzinfo=SHOP_TZ)
        terms_id = TERMS_BASE + order_number
        order["payment_terms"] = {
            "id": terms_id, "payment_terms_name": f"Net {terms_days}", "payment_terms_type": "net",
            "due_in_days": terms_days, "created_at": created, "updated_at": created,
            "payment_schedules": [{
                "id": terms_id * 10 + 1, "created_at": created, "updated_at": created, "issued_at": created,
                "due_at": ts(due_at), "completed_at": None, "amount": money(cur_total), "currency": ccy,
            }],
        }
    return order
