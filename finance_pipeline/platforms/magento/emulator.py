"""Magento / Adobe Commerce REST (`V1`) emulator: the sandbox's UK store, rendered as of the clock.

Paths are Magento's own (`/rest/V1/orders`, `/rest/{store_code}/V1/creditmemos` …).  What it
reproduces:

- **Auth.**  An integration access token as `Authorization: Bearer …` (the store has "Allow OAuth
  Access Tokens to be used as standalone Bearer tokens" on, as connectors need since 2.4.4); a
  missing or wrong token is 401 with Magento's `{"message", "parameters"}` body.
- **searchCriteria.**  `filter_groups` (filters in a group OR, groups AND) with `eq`, `neq`, `gt`,
  `gteq`, `lt`, `lteq`, `in`, `nin`, `null`, `notnull`, `from`/`to`; `sortOrders`; `pageSize` /
  `currentPage` (a page past the end is empty, as in 2.4.x); the answer echoes `search_criteria`
  and gives `total_count`.  Lists are computed once per (criteria, clock) in DuckDB.
- **Money and dates.**  JSON numbers (never strings), `base_*` twins, the order-level
  `discount_amount` negative and item-level positive; dates UTC `YYYY-MM-DD HH:MM:SS`.
- **As-of-clock state.**  `pending_payment` until the payment settles, `processing` once paid and
  invoiced, `complete` once shipped, `closed` once credit memos reach the total, `canceled` when
  the payment failed; `updated_at` is the latest of those events, credit memos and edits.
- **Rate limit.**  Core Magento has none; the sandbox store sits behind Fastly with a per-client
  limit of `HOST_LIMIT` requests per rolling minute (scaled by `time_scale`): 429 with
  `Retry-After`.
"""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any, Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
STORE_URL = "https://curtains-uk.example"
HOST_LIMIT, HOST_WINDOW_S = 120, 60.0
CONDITIONS = {"eq": "=", "neq": "<>", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<=", "from": ">=", "to": "<="}
_KEY = re.compile(r"^searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type)\]$")
_SORT = re.compile(r"^searchCriteria\[sortOrders\]\[(\d+)\]\[(field|direction)\]$")

ORDER_STATE_SQL = """
    WITH m AS (
        SELECT order_id, max(created_at) AS last_memo, sum(grand_total) AS refunded
          FROM magento_creditmemos WHERE created_at <= $clock GROUP BY order_id)
    SELECT o.entity_id, o.increment_id, o.created_at,
           greatest(o.created_at,
                    CASE WHEN o.paid_at <= $clock THEN o.paid_at END,
                    CASE WHEN o.canceled_at <= $clock THEN o.canceled_at END,
                    CASE WHEN o.shipped_at <= $clock THEN o.shipped_at END,
                    CASE WHEN o.edited_at <= $clock THEN o.edited_at END,
                    m.last_memo) AS updated_at,
           CASE WHEN o.canceled_at <= $clock THEN 'canceled'
                WHEN o.paid_at IS NULL OR o.paid_at > $clock THEN 'pending_payment'
                WHEN coalesce(m.refunded, 0) >= o.grand_total THEN 'closed'
                WHEN o.shipped_at <= $clock THEN 'complete'
                ELSE 'processing' END AS state,
           coalesce(m.refunded, 0) AS refunded
      FROM magento_orders o LEFT JOIN m ON m.order_id = o.entity_id
     WHERE o.created_at <= $clock
"""
# credit memos are never edited once made: updated_at = created_at
MEMO_SQL = """SELECT c.*, c.created_at AS updated_at FROM magento_creditmemos c WHERE c.created_at <= $clock"""


class _Problem(Exception):
    def __init__(self, status: int, message: str, parameters: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.parameters = status, message, parameters

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return json_response(body, self.status)


def num(x: Decimal | int | None) -> Decimal | int:
    """A money amount as Magento writes it: a JSON number without trailing zeros (113.5, 20)."""
    if x is None:
        return 0
    x = Decimal(x).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize()
    return int(x) if x == x.to_integral_value() else x


def mdate(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else None


def _parse_value(field: str, value: str) -> Any:
    if field in ("created_at", "updated_at"):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("T", " "))
        except ValueError:
            raise _Problem(400, f'"{value}" is not a valid date for the "%fieldName" field.',
                           {"fieldName": field}) from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    if field in ("entity_id", "order_id", "customer_id"):
        try:
            return int(value)
        except ValueError:
            raise _Problem(400, "Invalid value of \"%value\" provided for the %fieldName field.",
                           {"value": value, "fieldName": field}) from None
    return value


def parse_criteria(query, allowed: dict[str, str]) -> dict:
    """searchCriteria query parameters -> {"groups": [[(column, op, value)]], "sort", "size", "page"}."""
    groups: dict[int, dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    sorts: dict[int, dict[str, str]] = defaultdict(dict)
    size = page = None
    for key, value in query.multi_items():
        if m := _KEY.match(key):
            groups[int(m[1])][int(m[2])][m[3]] = value
        elif m := _SORT.match(key):
            sorts[int(m[1])][m[2]] = value
        elif key == "searchCriteria[pageSize]":
            size = value
        elif key == "searchCriteria[currentPage]":
            page = value
        elif key.startswith("searchCriteria"):
            raise _Problem(400, "\"%fieldName\" is required. Enter and try again.", {"fieldName": key})
    out_groups = []
    for g in sorted(groups):
        filters = []
        for f in sorted(groups[g]):
            spec = groups[g][f]
            field = spec.get("field")
            if field not in allowed:
                raise _Problem(400, f'Invalid attribute name: {field}')
            cond = spec.get("condition_type", "eq")
            raw = spec.get("value", "")
            if cond in ("in", "nin"):
                value: Any = [_parse_value(field, v) for v in raw.split(",") if v.strip()]
            elif cond in ("null", "notnull"):
                value = None
            elif cond in CONDITIONS:
                value = _parse_value(field, raw)
            else:
                raise _Problem(400, f'Invalid condition type: {cond}')
            filters.append((allowed[field], cond, value.isoformat() if isinstance(value, datetime) else value,
                            field, raw))
        out_groups.append(filters)
    out_sorts = []
    for s in sorted(sorts):
        field = sorts[s].get("field")
        if field not in allowed:
            raise _Problem(400, f'Invalid attribute name: {field}')
        direction = sorts[s].get("direction", "DESC").upper()
        out_sorts.append((allowed[field], "ASC" if direction == "ASC" else "DESC", field))
    try:
        size_n = int(size) if size not in (None, "") else None
        page_n = max(1, int(page)) if page not in (None, "") else 1
    except ValueError:
        raise _Problem(400, "Invalid value for pageSize or currentPage.") from None
    return {"groups": out_groups, "sort": out_sorts, "size": size_n, "page": page_n}


def criteria_sql(criteria: dict, params: dict) -> tuple[str, str]:
    where = []
    n = 0
    for group in criteria["groups"]:
        ors = []
        for column, cond, value, _, _ in group:
            n += 1
            name = f"p{n}"
            if cond == "null":
                ors.append(f"{column} IS NULL")
                continue
            if cond == "notnull":
                ors.append(f"{column} IS NOT NULL")
                continue
            if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T", value):
                value = datetime.fromisoformat(value)
            params[name] = value
            if cond in ("in", "nin"):
                ors.append(f"{column} {'IN' if cond == 'in' else 'NOT IN'} (SELECT unnest(${name}))")
            else:
                ors.append(f"{column} {CONDITIONS[cond]} ${name}")
        if ors:
            where.append("(" + " OR ".join(ors) + ")")
    order = ", ".join(f"{c} {d}" for c, d, _ in criteria["sort"]) or "1"
    return " AND ".join(where) or "TRUE", order


def _search_criteria_echo(criteria: dict) -> dict:
    echo: dict[str, Any] = {"filter_groups": [
        {"filters": [{"field": field, "value": raw, "condition_type": cond} for _, cond, _, field, raw in g]}
        for g in criteria["groups"]]}
    if criteria["sort"]:
        echo["sort_orders"] = [{"field": f, "direction": d} for _, d, f in criteria["sort"]]
    if criteria["size"] is not None:
        echo["page_size"] = criteria["size"]
    echo["current_page"] = criteria["page"]
    return echo


ORDER_FIELDS = {"entity_id": "s.entity_id", "increment_id": "s.increment_id", "created_at": "s.created_at",
                "updated_at": "s.updated_at", "state": "s.state", "status": "s.state",
                "customer_email": "o.email"}
MEMO_FIELDS = {"entity_id": "c.entity_id", "order_id": "c.order_id", "created_at": "c.created_at",
               "updated_at": "c.updated_at", "increment_id": "c.increment_id"}


class MagentoEmulator(Emulator):
    """The sandbox store `curtains-uk.example` (Magento 2.4.8, GBP, Europe/London)."""

    name = "magento"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.window = SlidingWindow(HOST_LIMIT, HOST_WINDOW_S, self.config.time_scale)

    @cached_property
    def access_token(self) -> str:
        return self.seed_digest("magento-integration", 16)

    def credentials(self) -> dict[str, str]:
        return {"store_code": "default", "access_token": self.access_token}

    def rate_limit(self, request: Request) -> Response | None:
        return self.refuse_over(self.window, self._too_many)

    @staticmethod
    def _too_many(wait: float) -> Response:
        return Response("Too Many Requests", 429, headers={"Retry-After": f"{max(wait, 0.001):.3f}"},
                        media_type="text/plain")

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return self._too_many(1.0 / self.config.time_scale)
        if status == 503:
            return Response("<html><body><h1>Service Unavailable</h1></body></html>", 503, media_type="text/html")
        return json_response({"message": "Internal Error. Details are available in Magento log file. "
                                         "Report ID: webapi-6762b0f5a1c3e"}, status)

    def routes(self) -> list[Route]:
        out = []
        for prefix in ("/rest/V1", "/rest/{store_code}/V1"):
            out += [Route(f"{prefix}/orders", self._endpoint(self.list_orders)),
                    Route(f"{prefix}/orders/{{order_id:int}}", self._endpoint(self.get_order)),
                    Route(f"{prefix}/creditmemos", self._endpoint(self.list_creditmemos)),
                    Route(f"{prefix}/creditmemo/{{memo_id:int}}", self._endpoint(self.get_creditmemo))]
        return out

    def _endpoint(self, handler):
        async def endpoint(request: Request) -> Response:
            try:
                store = request.path_params.get("store_code", "default")
                if store not in ("default", "all"):
                    raise _Problem(400, "Requested store is not found")
                header = request.headers.get("authorization", "")
                if not header.lower().startswith("bearer ") or header[7:].strip() != self.access_token:
                    raise _Problem(401, "The consumer isn't authorized to access %resources.",
                                   {"resources": "Magento_Sales::actions_view"})
                limited = self.rate_limit(request)
                if limited is not None:
                    return limited
                return handler(request)
            except _Problem as problem:
                return problem.response()

        return endpoint

    # ------------------------------------------------------------------ lists
    def _list(self, request: Request, resource: str, allowed: dict, ids_sql: str, render) -> Response:
        criteria = parse_criteria(request.query_params, allowed)
        clock = self.sandbox.clock

        def compute() -> list:
            params: dict[str, Any] = {"clock": clock}
            where, order = criteria_sql(criteria, params)
            tiebreak = list(allowed.values())[0]
            return [r[0] for r in self.db.execute(f"{ids_sql} WHERE {where} ORDER BY {order}, {tiebreak} ASC",
                                                  params).fetchall()]

        key = (resource, orjson.dumps(criteria, option=orjson.OPT_SORT_KEYS, default=str), clock.isoformat())
        _, ids = self.pages.get(key, compute)
        size, page = criteria["size"], criteria["page"]
        chunk = list(ids) if size is None else list(ids[(page - 1) * size: page * size])
        if self.duplicate_page(request) and size and page > 1:
            # the fault: rows shifted while the client paged, so the previous page's last row shows again
            chunk = list(ids[(page - 1) * size - 1: page * size])
        return json_response({"items": render(chunk), "search_criteria": _search_criteria_echo(criteria),
                              "total_count": len(ids)})

    def list_orders(self, request: Request) -> Response:
        return self._list(request, "orders", ORDER_FIELDS,
                          f"SELECT s.entity_id FROM ({ORDER_STATE_SQL}) s JOIN magento_orders o USING (entity_id)",
                          self.render_orders)

    def get_order(self, request: Request) -> Response:
        orders = self.render_orders([request.path_params["order_id"]])
        if not orders:
            raise _Problem(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        return json_response(orders[0])

    def list_creditmemos(self, request: Request) -> Response:
        return self._list(request, "creditmemos", MEMO_FIELDS, f"SELECT c.entity_id FROM ({MEMO_SQL}) c",
                          self.render_creditmemos)

    def get_creditmemo(self, request: Request) -> Response:
        memos = self.render_creditmemos([request.path_params["memo_id"]])
        if not memos:
            raise _Problem(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        return json_response(memos[0])

    # ------------------------------------------------------------------ rendering
    def _rows(self, sql: str, params: dict) -> list[dict]:
        cur = self.db.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def render_orders(self, ids: Sequence[int], clock: datetime | None = None) -> list[dict]:
        if not ids:
            return []
        clock = clock or self.sandbox.clock
        params = {"clock": clock, "ids": list(ids)}
        orders = {r["entity_id"]: r for r in self._rows(
            f"SELECT o.*, s.updated_at AS updated, s.state, s.refunded FROM ({ORDER_STATE_SQL}) s "
            "JOIN magento_orders o USING (entity_id) WHERE o.entity_id IN (SELECT unnest($ids::BIGINT[]))", params)}
        items: dict[int, list[dict]] = defaultdict(list)
        for r in self._rows("SELECT * FROM magento_order_items WHERE order_id IN (SELECT unnest($ids::BIGINT[])) "
                            "ORDER BY item_id", {"ids": list(ids)}):
            items[r["order_id"]].append(r)
        refunded_items: dict[int, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
        for r in self._rows("SELECT ci.* FROM magento_creditmemo_items ci JOIN magento_creditmemos c "
                            "ON c.entity_id = ci.creditmemo_id WHERE c.created_at <= $clock "
                            "AND ci.order_id IN (SELECT unnest($ids::BIGINT[]))", params):
            qty, amount = refunded_items[r["order_item_id"]]
            refunded_items[r["order_item_id"]] = (qty + r["qty"], amount + r["row_total_incl_tax"] - r["discount_amount"])
        return [self._order_json(orders[i], items[i], refunded_items) for i in ids if i in orders]

    def _order_json(self, o: dict, items: list[dict], refunded_items: dict) -> dict:
        rate = o["tax_rate"]
        paid = o["state"] not in ("pending_payment", "canceled")
        shipped = o["state"] in ("complete", "closed") and o["shipped_at"] is not None
        subtotal_incl = sum((i["row_total_incl_tax"] for i in items), Decimal(0))
        subtotal = sum((i["row_total"] for i in items), Decimal(0))
        discount = sum((i["discount_amount"] for i in items), Decimal(0))
        item_tax = sum((i["tax_amount"] for i in items), Decimal(0))
        shipping_ex = o["shipping_incl_tax"] - o["shipping_tax"]
        tax = item_tax + o["shipping_tax"]
        grand = o["grand_total"]
        canceled = o["state"] == "canceled"
        item_json = []
        for i in items:
            rq, ramount = refunded_items[i["item_id"]]
            item_json.append({
                "item_id": i["item_id"], "order_id": o["entity_id"], "quote_item_id": i["item_id"] + 7_000,
                "store_id": 1, "created_at": mdate(o["created_at"]), "updated_at": mdate(o["updated"]),
                "product_id": i["product_id"], "product_type": "simple", "sku": i["sku"], "name": i["name"],
                "is_virtual": 0, "qty_ordered": i["qty"], "qty_invoiced": i["qty"] if paid else 0,
                "qty_shipped": i["qty"] if shipped else 0, "qty_refunded": rq,
                "qty_canceled": i["qty"] if canceled else 0,
                "price": num(i["row_total"] / i["qty"]), "base_price": num(i["row_total"] / i["qty"]),
                "original_price": num(i["price_incl_tax"]), "price_incl_tax": num(i["price_incl_tax"]),
                "base_price_incl_tax": num(i["price_incl_tax"]),
                "row_total": num(i["row_total"]), "base_row_total": num(i["row_total"]),
                "row_total_incl_tax": num(i["row_total_incl_tax"]), "base_row_total_incl_tax": num(i["row_total_incl_tax"]),
                "discount_amount": num(i["discount_amount"]), "base_discount_amount": num(i["discount_amount"]),
                "discount_percent": num((o["coupon_pct"] or 0) * 100),
                "tax_amount": num(i["tax_amount"]), "base_tax_amount": num(i["tax_amount"]),
                "tax_percent": num(rate * 100), "amount_refunded": num(ramount), "base_amount_refunded": num(ramount),
            })
        address = {"address_type": "billing", "firstname": o["firstname"], "lastname": o["lastname"],
                   "email": o["email"], "street": [f"{o['entity_id'] % 90 + 1} High Street"], "city": "Leeds",
                   "postcode": "LS1 4AP", "country_id": o["country"], "telephone": "0113 496 0000",
                   "entity_id": o["entity_id"] * 2, "parent_id": o["entity_id"]}
        edited = o["edited_at"] is not None and o["updated"] >= o["edited_at"]
        if edited:
            address["street"] = address["street"] + ["Flat 3 (corrected)"]
        histories = []
        if edited:
            histories.append({"entity_id": o["entity_id"] * 3, "parent_id": o["entity_id"], "created_at": mdate(o["edited_at"]),
                              "comment": "Delivery address corrected at the customer's request.",
                              "is_customer_notified": 0, "is_visible_on_front": 0, "status": o["state"],
                              "entity_name": "order"})
        refunded = o["refunded"] if paid else Decimal(0)
        body = {
            "entity_id": o["entity_id"], "increment_id": o["increment_id"], "state": o["state"], "status":
                {"pending_payment": "pending_payment"}.get(o["state"], o["state"]),
            "store_id": 1, "store_name": "Main Website\nMain Website Store\nDefault Store View",
            "created_at": mdate(o["created_at"]), "updated_at": mdate(o["updated"]),
            "customer_email": o["email"], "customer_firstname": o["firstname"], "customer_lastname": o["lastname"],
            "customer_is_guest": 0 if o["mage_customer_id"] else 1,
            **({"customer_id": o["mage_customer_id"]} if o["mage_customer_id"] else {}),
            "base_currency_code": "GBP", "global_currency_code": "GBP", "order_currency_code": o["currency"],
            "store_currency_code": "GBP", "base_to_global_rate": 1, "base_to_order_rate": 1,
            "store_to_base_rate": 0, "store_to_order_rate": 0,
            "subtotal": num(subtotal), "base_subtotal": num(subtotal), "subtotal_incl_tax": num(subtotal_incl),
            "base_subtotal_incl_tax": num(subtotal_incl),
            "discount_amount": num(-discount), "base_discount_amount": num(-discount),
            "shipping_amount": num(shipping_ex), "base_shipping_amount": num(shipping_ex),
            "shipping_incl_tax": num(o["shipping_incl_tax"]), "base_shipping_incl_tax": num(o["shipping_incl_tax"]),
            "shipping_tax_amount": num(o["shipping_tax"]), "base_shipping_tax_amount": num(o["shipping_tax"]),
            "tax_amount": num(tax), "base_tax_amount": num(tax),
            "grand_total": num(grand), "base_grand_total": num(grand),
            "total_paid": num(grand if paid else 0), "base_total_paid": num(grand if paid else 0),
            "total_invoiced": num(grand if paid else 0), "total_refunded": num(refunded),
            "base_total_refunded": num(refunded), "total_due": num(0 if paid or canceled else grand),
            "total_canceled": num(grand if canceled else 0),
            "total_qty_ordered": sum(i["qty"] for i in items), "total_item_count": len(items),
            **({"coupon_code": o["coupon_code"], "discount_description": o["coupon_code"]} if o["coupon_code"] else {}),
            "shipping_description": "Flat Rate - Fixed" if o["shipping_incl_tax"] else "Free Shipping - Free",
            "items": item_json, "billing_address": address,
            "payment": {
                "entity_id": o["entity_id"], "parent_id": o["entity_id"], "method": o["payment_method"],
                "amount_ordered": num(grand), "base_amount_ordered": num(grand),
                **({"amount_paid": num(grand), "base_amount_paid": num(grand), "last_trans_id": o["txn_id"],
                    "amount_refunded": num(refunded), "base_amount_refunded": num(refunded)} if paid else {}),
                **({"cc_type": "VI", "cc_last4": "1111"} if o["payment_method"] == "braintree" and paid else {}),
                "additional_information": [o["payment_method"] == "braintree" and "Credit Card" or "PayPal Express Checkout"],
            },
            "status_histories": histories,
            "extension_attributes": {
                "shipping_assignments": [{"shipping": {
                    "address": {**address, "address_type": "shipping"},
                    "method": "flatrate_flatrate" if o["shipping_incl_tax"] else "freeshipping_freeshipping",
                    "total": {"shipping_amount": num(shipping_ex), "shipping_incl_tax": num(o["shipping_incl_tax"]),
                              "shipping_tax_amount": num(o["shipping_tax"])}}, "items": []}],
                "applied_taxes": [{"code": "GB-VAT-20", "title": o["tax_title"], "percent": num(rate * 100),
                                   "amount": num(tax), "base_amount": num(tax)}],
                "item_applied_taxes": [{"type": "product", "applied_taxes": [
                    {"code": "GB-VAT-20", "title": o["tax_title"], "percent": num(rate * 100),
                     "amount": num(item_tax), "base_amount": num(item_tax)}]}] + ([{
                        "type": "shipping", "applied_taxes": [
                            {"code": "GB-VAT-20", "title": o["tax_title"], "percent": num(rate * 100),
                             "amount": num(o["shipping_tax"]), "base_amount": num(o["shipping_tax"])}]}]
                        if o["shipping_tax"] else []),
            },
        }
        return body

    def render_creditmemos(self, ids: Sequence[int], clock: datetime | None = None) -> list[dict]:
        if not ids:
            return []
        clock = clock or self.sandbox.clock
        params = {"clock": clock, "ids": list(ids)}
        memos = {r["entity_id"]: r for r in self._rows(
            f"SELECT c.*, o.tax_rate FROM ({MEMO_SQL}) c JOIN magento_orders o ON o.entity_id = c.order_id "
            "WHERE c.entity_id IN (SELECT unnest($ids::BIGINT[]))", params)}
        items: dict[int, list[dict]] = defaultdict(list)
        for r in self._rows("SELECT ci.*, i.name, i.product_id, i.price_incl_tax FROM magento_creditmemo_items ci "
                            "JOIN magento_order_items i ON i.item_id = ci.order_item_id "
                            "WHERE ci.creditmemo_id IN (SELECT unnest($ids::BIGINT[])) ORDER BY ci.entity_id",
                            {"ids": list(ids)}):
            items[r["creditmemo_id"]].append(r)
        out = []
        for mid in ids:
            c = memos.get(mid)
            if c is None:
                continue
            its = items[mid]
            rate = c["tax_rate"]
            subtotal_incl = sum((i["row_total_incl_tax"] for i in its), Decimal(0))
            discount = sum((i["discount_amount"] for i in its), Decimal(0))
            item_tax = sum((i["tax_amount"] for i in its), Decimal(0))
            subtotal = sum((i["row_total_incl_tax"] - (i["row_total_incl_tax"] * rate / (1 + rate)).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP) for i in its), Decimal(0))
            ship_ex = c["shipping_incl_tax"] - c["shipping_tax"]
            tax = item_tax + c["shipping_tax"]
            out.append({
                "entity_id": c["entity_id"], "increment_id": c["increment_id"], "order_id": c["order_id"],
                "store_id": 1, "state": 2, "creditmemo_status": None, "invoice_id": c["order_id"],
                "created_at": mdate(c["created_at"]), "updated_at": mdate(c["updated_at"]),
                "base_currency_code": "GBP", "order_currency_code": "GBP", "global_currency_code": "GBP",
                "store_currency_code": "GBP", "base_to_global_rate": 1, "base_to_order_rate": 1,
                "subtotal": num(subtotal), "base_subtotal": num(subtotal),
                "subtotal_incl_tax": num(subtotal_incl), "base_subtotal_incl_tax": num(subtotal_incl),
                "discount_amount": num(-discount), "base_discount_amount": num(-discount),
                "shipping_amount": num(ship_ex), "base_shipping_amount": num(ship_ex),
                "shipping_incl_tax": num(c["shipping_incl_tax"]), "base_shipping_incl_tax": num(c["shipping_incl_tax"]),
                "shipping_tax_amount": num(c["shipping_tax"]), "base_shipping_tax_amount": num(c["shipping_tax"]),
                "tax_amount": num(tax), "base_tax_amount": num(tax),
                "adjustment": 0, "adjustment_positive": 0, "adjustment_negative": 0,
                "base_adjustment": 0, "base_adjustment_positive": 0, "base_adjustment_negative": 0,
                "grand_total": num(c["grand_total"]), "base_grand_total": num(c["grand_total"]),
                "items": [{
                    "entity_id": i["entity_id"], "parent_id": mid, "order_item_id": i["order_item_id"],
                    "product_id": i["product_id"], "sku": i["sku"], "name": i["name"], "qty": i["qty"],
                    "price_incl_tax": num(i["price_incl_tax"]), "base_price_incl_tax": num(i["price_incl_tax"]),
                    "row_total_incl_tax": num(i["row_total_incl_tax"]),
                    "base_row_total_incl_tax": num(i["row_total_incl_tax"]),
                    "discount_amount": num(i["discount_amount"]), "base_discount_amount": num(i["discount_amount"]),
                    "tax_amount": num(i["tax_amount"]), "base_tax_amount": num(i["tax_amount"]),
                } for i in its],
                "comments": [],
            })
        return out
