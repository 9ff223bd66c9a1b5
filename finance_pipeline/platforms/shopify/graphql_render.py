"""Shopify GraphQL Admin API objects, derived from the REST renderer's orders.

The GraphQL emulator never reads the world on its own: a page of orders is rendered by
`render.render_orders` (the same rows, the same as-of-clock rules as the REST endpoints) and each
REST object is re-expressed here in the GraphQL schema's terms, so both APIs always describe the
same orders.  What changes between the two wire formats, as Shopify documents it:

- ids are GIDs (`gid://shopify/Order/450789469`); `legacyResourceId` carries the REST id (an
  `UnsignedInt64`, serialised as a string);
- money is a `MoneyBag` (`shopMoney` / `presentmentMoney`, each `MoneyV2 {amount currencyCode}`),
  the amount a `Decimal` scalar, i.e. a string without trailing zeros (`"10.0"`, `"24.5"`);
  transactions carry a MoneyBag too (REST: a presentment amount and its currency);
- `DateTime` is UTC with a `Z` (REST: the shop's time zone with its offset);
- enums are upper case (`PAID`, `CUSTOMER`, `RETURN`); `tags` is a list of strings;
- nested collections are either plain lists (`taxLines`, `refunds`,
  `fulfillments`, `discountAllocations`) or Relay connections (`lineItems`, `shippingLines`,
  `discountApplications`, a refund's `refundLineItems`, `transactions` and `orderAdjustments`,
  payment terms' `paymentSchedules`) — `Connection` marks the latter for the executor.

Every object carries its `__typename`; the executor uses it for `__typename`, inline fragments
and "Field 'x' doesn't exist on type 'T'" errors.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from finance_pipeline.ingest.arrow import parse_timestamp
from finance_pipeline.sandbox.world import q
from finance_pipeline.platforms.shopify.render import SHOP_CURRENCY


class Connection(list):
    """A Relay connection's nodes (the executor pages them and wraps them in edges/nodes)."""


def gid(kind: str, legacy_id: int | None) -> str | None:
    return None if legacy_id is None else f"gid://shopify/{kind}/{legacy_id}"


@lru_cache(maxsize=1 << 16)
def _decimal_text(value: str) -> str:
    return decimal_text(Decimal(value))


def decimal_text(value: Decimal | str) -> str:
    """GraphQL `Decimal`: the exact value without trailing zeros, at least one decimal place."""
    if isinstance(value, str):
        return _decimal_text(value)  # REST money strings repeat a lot: cached
    d = value
    if d == 0:
        return "0.0"
    text = format(d.normalize(), "f")
    return text if "." in text else text + ".0"


def money_v2(amount: Decimal | str, currency: str) -> dict:
    return {"__typename": "MoneyV2", "amount": decimal_text(amount), "currencyCode": currency}


def money_bag(rest_bag: dict | None) -> dict | None:
    if rest_bag is None:
        return None
    shop, pres = rest_bag["shop_money"], rest_bag["presentment_money"]
    return {"__typename": "MoneyBag", "shopMoney": money_v2(shop["amount"], shop["currency_code"]),
            "presentmentMoney": money_v2(pres["amount"], pres["currency_code"])}


def bag_from(shop: Decimal, pres: Decimal, currency: str) -> dict:
    return {"__typename": "MoneyBag", "shopMoney": money_v2(shop, SHOP_CURRENCY),
            "presentmentMoney": money_v2(pres, currency)}


def utc(value: Any) -> str | None:
    """GraphQL `DateTime`: UTC, second precision, `Z`."""
    parsed = parse_timestamp(value)
    return None if parsed is None else parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


def _address(a: dict | None, address_id: int | None = None) -> dict | None:
    if a is None:
        return None
    out = {
        "__typename": "MailingAddress", "id": gid("MailingAddress", address_id),
        "firstName": a.get("first_name"), "lastName": a.get("last_name"), "name": a.get("name"),
        "company": a.get("company"), "address1": a.get("address1"), "address2": a.get("address2"),
        "city": a.get("city"), "zip": a.get("zip"), "province": a.get("province"),
        "provinceCode": a.get("province_code"), "country": a.get("country"),
        "countryCodeV2": a.get("country_code"), "phone": a.get("phone"),
    }
    return out


def _tax_line(t: dict) -> dict:
    rate = t["rate"]
    return {"__typename": "TaxLine", "title": t["title"], "rate": float(rate),
            "ratePercentage": float(Decimal(str(rate)) * 100), "priceSet": money_bag(t["price_set"]),
            "channelLiable": t.get("channel_liable", False)}


FORMATTED_GATEWAYS = {"shopify_payments": "Shopify Payments", "gift_card": "Gift card"}


def _transaction(t: dict, fx: Decimal) -> dict:
    amount = Decimal(t["amount"])
    return {
        "__typename": "OrderTransaction", "id": gid("OrderTransaction", t["id"]),
        "kind": _upper(t["kind"]), "gateway": t["gateway"], "status": _upper(t["status"]),
        "amountSet": bag_from(q(amount * fx), amount, t["currency"]),
        "createdAt": utc(t["created_at"]), "processedAt": utc(t["processed_at"]), "test": t["test"],
        "authorizationCode": t.get("authorization"), "errorCode": t.get("error_code"),
        "paymentId": t.get("payment_id"), "formattedGateway": FORMATTED_GATEWAYS.get(t["gateway"], t["gateway"]),
        # the gateway's receipt as JSON text; a gift card tender's names the card (gift_card_id,
        # gift_card_last_characters). Shopify discourages relying on it (2026-01) but still serves it.
        "receiptJson": json.dumps(t.get("receipt") or {}),
        "parentTransaction": ({"__typename": "OrderTransaction", "id": gid("OrderTransaction", t["parent_id"])}
                              if t.get("parent_id") else None),
    }


def _line_item(li: dict) -> dict:
    return {
        "__typename": "LineItem", "id": gid("LineItem", li["id"]), "name": li["name"], "title": li["title"],
        "variantTitle": li["variant_title"], "sku": li["sku"], "vendor": li["vendor"],
        "quantity": li["quantity"], "currentQuantity": li["current_quantity"],
        "unfulfilledQuantity": li["fulfillable_quantity"],
        "originalUnitPriceSet": money_bag(li["price_set"]), "totalDiscountSet": money_bag(li["total_discount_set"]),
        "discountAllocations": [{"__typename": "DiscountAllocation", "allocatedAmountSet": money_bag(d["amount_set"])}
                                for d in li["discount_allocations"]],
        "taxLines": [_tax_line(t) for t in li["tax_lines"]], "taxable": li["taxable"],
        "isGiftCard": li["gift_card"], "requiresShipping": li["requires_shipping"],
    }


def _refund(r: dict, fx: Decimal) -> dict:
    return {
        "__typename": "Refund", "id": gid("Refund", r["id"]), "legacyResourceId": str(r["id"]),
        "createdAt": utc(r["created_at"]), "updatedAt": utc(r["processed_at"]), "note": r["note"],
        "refundLineItems": Connection({
            "__typename": "RefundLineItem", "id": gid("RefundLineItem", rl["id"]),
            "lineItem": {"__typename": "LineItem", "id": gid("LineItem", rl["line_item_id"])},
            "quantity": rl["quantity"], "restockType": _upper(rl["restock_type"]),
            "subtotalSet": money_bag(rl["subtotal_set"]), "totalTaxSet": money_bag(rl["total_tax_set"]),
        } for rl in r["refund_line_items"]),
        "transactions": Connection(_transaction(t, fx) for t in r["transactions"]),
        "orderAdjustments": Connection({
            "__typename": "OrderAdjustment", "id": gid("OrderAdjustment", a["id"]), "reason": _upper(a["kind"]),
            "amountSet": money_bag(a["amount_set"]), "taxAmountSet": money_bag(a["tax_amount_set"]),
        } for a in r["order_adjustments"]),
    }


def _payment_terms(pt: dict | None, currency: str) -> dict | None:
    if pt is None:
        return None
    return {
        "__typename": "PaymentTerms", "id": gid("PaymentTerms", pt["id"]), "paymentTermsName": pt["payment_terms_name"],
        "paymentTermsType": _upper(pt["payment_terms_type"]), "dueInDays": pt["due_in_days"],
        "paymentSchedules": Connection({
            "__typename": "PaymentSchedule", "id": gid("PaymentSchedule", s["id"]), "issuedAt": utc(s["issued_at"]),
            "dueAt": utc(s["due_at"]), "completedAt": utc(s["completed_at"]),
            "amount": money_v2(s["amount"], s["currency"]),
        } for s in pt["payment_schedules"]),
    }


def order_node(o: dict, fx: Decimal, transactions: list[dict] = ()) -> dict:
    """The GraphQL `Order` of one REST order object (`fx`: the order's presentment -> shop rate)
    with its REST `transactions` (`Order.transactions`, a plain list in GraphQL)."""
    ccy = o["presentment_currency"]
    outstanding = Decimal(o["total_outstanding"])
    customer = o.get("customer")
    node: dict[str, Any] = {
        "__typename": "Order", "id": o["admin_graphql_api_id"], "legacyResourceId": str(o["id"]),
        "name": o["name"], "number": o["order_number"], "email": o["email"], "phone": o.get("phone"),
        "createdAt": utc(o["created_at"]), "processedAt": utc(o["processed_at"]), "updatedAt": utc(o["updated_at"]),
        "cancelledAt": utc(o["cancelled_at"]), "cancelReason": _upper(o["cancel_reason"]),
        "closedAt": utc(o["closed_at"]), "closed": o["closed_at"] is not None, "confirmed": o["confirmed"],
        "displayFinancialStatus": _upper(o["financial_status"]),
        "displayFulfillmentStatus": "FULFILLED" if o["fulfillment_status"] == "fulfilled" else "UNFULFILLED",
        "currencyCode": o["currency"], "presentmentCurrencyCode": ccy, "taxesIncluded": o["taxes_included"],
        "taxExempt": o["tax_exempt"], "test": o["test"], "sourceName": o["source_name"],
        "tags": [t.strip() for t in o["tags"].split(",") if t.strip()], "note": o["note"],
        "paymentGatewayNames": list(o["payment_gateway_names"]),
        "subtotalPriceSet": money_bag(o["subtotal_price_set"]), "totalPriceSet": money_bag(o["total_price_set"]),
        "totalTaxSet": money_bag(o["total_tax_set"]), "totalDiscountsSet": money_bag(o["total_discounts_set"]),
        "totalShippingPriceSet": money_bag(o["total_shipping_price_set"]),
        "currentSubtotalPriceSet": money_bag(o["current_subtotal_price_set"]),
        "currentTotalPriceSet": money_bag(o["current_total_price_set"]),
        "currentTotalTaxSet": money_bag(o["current_total_tax_set"]),
        "currentTotalDiscountsSet": money_bag(o["current_total_discounts_set"]),
        "totalOutstandingSet": bag_from(q(outstanding * fx), outstanding, ccy),
        "taxLines": [_tax_line(t) for t in o["tax_lines"]],
        "discountCodes": [d["code"] for d in o["discount_codes"]],
        "discountApplications": Connection({
            "__typename": "DiscountCodeApplication", "code": d["code"], "allocationMethod": _upper(d["allocation_method"]),
            "targetSelection": _upper(d["target_selection"]), "targetType": _upper(d["target_type"]),
            "value": {"__typename": "PricingPercentageValue", "percentage": float(d["value"])},
        } for d in o["discount_applications"]),
        "lineItems": Connection(_line_item(li) for li in o["line_items"]),
        "shippingLines": Connection({
            "__typename": "ShippingLine", "id": gid("ShippingLine", s["id"]), "title": s["title"], "code": s["code"],
            "source": s["source"], "originalPriceSet": money_bag(s["price_set"]),
            "discountedPriceSet": money_bag(s["discounted_price_set"]),
            "taxLines": [_tax_line(t) for t in s["tax_lines"]],
        } for s in o["shipping_lines"]),
        "fulfillments": [{"__typename": "Fulfillment", "id": gid("Fulfillment", f["id"]), "status": _upper(f["status"]),
                          "createdAt": utc(f["created_at"]), "updatedAt": utc(f["updated_at"])}
                         for f in o["fulfillments"]],
        "refunds": [_refund(r, fx) for r in o["refunds"]],
        "transactions": [_transaction(t, fx) for t in transactions],
        "customer": None if customer is None else {
            "__typename": "Customer", "id": customer["admin_graphql_api_id"],
            "legacyResourceId": str(customer["id"]), "email": customer["email"],
            "firstName": customer["first_name"], "lastName": customer["last_name"],
            "createdAt": utc(customer["created_at"]), "updatedAt": utc(customer["updated_at"]),
            "state": _upper(customer["state"]), "verifiedEmail": customer["verified_email"],
            "tags": [t.strip() for t in customer["tags"].split(",") if t.strip()],
            "taxExempt": customer["tax_exempt"], "taxExemptions": list(customer["tax_exemptions"]),
            "note": customer["note"],
            "defaultAddress": _address(customer.get("default_address"), (customer.get("default_address") or {}).get("id")),
        },
        "billingAddress": _address(o.get("billing_address")),
        "shippingAddress": _address(o.get("shipping_address")),
        "paymentTerms": _payment_terms(o.get("payment_terms"), ccy),
    }
    return node


def shop_node(name: str, domain: str, currency: str, timezone_name: str, plan: str) -> dict:
    return {"__typename": "Shop", "name": name, "myshopifyDomain": domain, "currencyCode": currency,
            "ianaTimezone": timezone_name, "plan": {"__typename": "ShopPlan", "displayName": plan}}


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
