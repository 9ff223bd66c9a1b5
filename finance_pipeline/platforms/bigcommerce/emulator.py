"""BigCommerce Management API emulator (Orders V2, Orders V3 transactions and refunds): the US
storefront of the sandbox world, rendered as of the sandbox clock.

Paths are BigCommerce's own under `/stores/{store_hash}/`, so any BigCommerce client works with
the API host swapped.  What it reproduces:

- **Auth.**  `X-Auth-Token` (store-level API account token; `X-Auth-Client` is accepted and
  ignored, as BigCommerce does now); a missing or wrong token → 401, another store hash → 404.
  V2 errors are a JSON array `[{"status", "message"}]`, V3 errors `{"status", "title", "type"}`.
- **Orders V2.**  `GET /v2/orders` with `page` / `limit` (default 50, max 250), `min_/max_id`,
  `min_/max_date_created`, `min_/max_date_modified` (RFC 2822 or ISO 8601; both bounds inclusive),
  `status_id`, `sort` (`id|date_created|date_modified|status_id` + `:asc|:desc`, default id asc);
  no paging metadata; an empty page (also past the end) is **204 with no body**.
  `GET /v2/orders/count`, `GET /v2/orders/{id}`, `GET /v2/orders/{id}/products` (paged the same
  way).  Money as decimal strings with 4 places (`"12.0000"`); dates RFC 2822 in UTC.
  Status as of the clock: Awaiting Payment (7) until the card settles, then Declined (6) or
  Awaiting Fulfillment (11) → Shipped (2); Partially Refunded (14) / Refunded (4); Cancelled (5).
- **V3.**  `GET /v3/orders/{id}/transactions` (`{"data", "meta": {"pagination"}}`, 204 when
  none), `GET /v3/orders/payment_actions/refunds` (`created:min` / `created:max` RFC 3339
  inclusive, `order_id:in`, `id:in`, `page` / `limit`, ordered by id) and
  `GET /v3/orders/{id}/payment_actions/refunds`.  Money as JSON numbers; dates RFC 3339.
- **Rate limit.**  `QUOTA` requests per `WINDOW_S` per store (Standard plan: 150 / 30 s,
  compressed by `time_scale`); every answer carries `X-Rate-Limit-Requests-Left`,
  `X-Rate-Limit-Requests-Quota`, `X-Rate-Limit-Time-Reset-Ms`, `X-Rate-Limit-Time-Window-Ms`;
  over quota → 429 with those headers and no `Retry-After`.
- **Faults** from the base class; a `duplicate_page` fault repeats the previous page's last row.
"""
from __future__ import annotations

import email.utils
import time
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any, Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.bigcommerce.world import STORE_HASH
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
QUOTA, WINDOW_S = 150, 30.0
DEFAULT_LIMIT, MAX_LIMIT = 50, 250
STATUS = {0: "Incomplete", 2: "Shipped", 4: "Refunded", 5: "Cancelled", 6: "Declined", 7: "Awaiting Payment",
          11: "Awaiting Fulfillment", 14: "Partially Refunded"}
SORTABLE = {"id": "order_id", "date_created": "created_at", "date_modified": "modified_at", "status_id": "status_id"}
STATE_NAMES = {"NY": "New York", "CA": "California", "TX": "Texas", "WA": "Washington", "NJ": "New Jersey",
               "FL": "Florida", "OR": "Oregon"}


class _Problem(Exception):
    def __init__(self, status: int, message: str, v3: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.v3 = status, message, v3

    def response(self) -> Response:
        if self.v3:
            return json_response({"status": self.status, "title": self.message,
                                  "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes",
                                  "errors": {}}, self.status)
        return json_response([{"status": self.status, "message": self.message}], self.status)


def money4(x: Decimal | None) -> str:
    """V2 money: a decimal string with 4 places."""
    return f"{(x or Decimal(0)).quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):.4f}"


def rfc2822(at: datetime | None) -> str | None:
    return email.utils.format_datetime(at.astimezone(UTC)).replace("-0000", "+0000") if at else None


def rfc3339(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00") if at else None


def parse_date(name: str, value: str, v3: bool = False) -> datetime:
    """RFC 2822 or ISO 8601 / RFC 3339 (a `+` decoded to a space is put back)."""
    text = value.strip()
    try:
        if text[:4].isdigit():  # ISO 8601 / RFC 3339
            text = text.replace(" ", "+")
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        else:
            parsed = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        raise _Problem(400, f"The field '{name}' is invalid.", v3) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _int(name: str, value: str | None, default: int, lo: int = 1, hi: int | None = None, v3: bool = False) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise _Problem(400, f"The field '{name}' is invalid.", v3) from None
    if n < lo or (hi is not None and n > hi):
        raise _Problem(400, f"The field '{name}' is invalid.", v3)
    return n


# Each order's state as of $clock (one row per visible order).
ORDER_STATE_SQL = """
    WITH r AS (
        SELECT order_id, max(created_at) AS last_refund, sum(total_amount) AS refunded
          FROM bigcommerce_refunds WHERE created_at <= $clock GROUP BY order_id)
    SELECT o.order_id, o.created_at,
           greatest(o.created_at,
                    CASE WHEN o.paid_at <= $clock THEN o.paid_at END,
                    CASE WHEN o.declined_at <= $clock THEN o.declined_at END,
                    CASE WHEN o.shipped_at <= $clock THEN o.shipped_at END,
                    CASE WHEN o.cancelled_at <= $clock THEN o.cancelled_at END,
                    CASE WHEN o.edited_at <= $clock THEN o.edited_at END,
                    r.last_refund) AS modified_at,
           CASE WHEN o.declined_at <= $clock THEN 6
                WHEN o.paid_at IS NULL OR o.paid_at > $clock THEN 7
                WHEN o.cancelled_at <= $clock THEN 5
                WHEN coalesce(r.refunded, 0) >= o.total_inc_tax THEN 4
                WHEN coalesce(r.refunded, 0) > 0 THEN 14
                WHEN o.shipped_at <= $clock THEN 2
                ELSE 11 END AS status_id,
           coalesce(r.refunded, 0) AS refunded
      FROM bigcommerce_orders o LEFT JOIN r USING (order_id)
     WHERE o.created_at <= $clock
"""


class BigCommerceEmulator(Emulator):
    """The sandbox store `sbx1234567` (USD storefront, default currency GBP, America/New_York)."""

    name = "bigcommerce"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.window = SlidingWindow(QUOTA, WINDOW_S, self.config.time_scale)

    # ------------------------------------------------------------------ base class hooks
    @cached_property
    def keys(self) -> dict[str, str]:
        digest = self.seed_digest("bigcommerce-keys", 40)
        return {"store_hash": STORE_HASH, "access_token": digest[:31], "client_id": digest[31:62],
                "client_secret": digest[40:80]}

    def credentials(self) -> dict[str, str]:
        return dict(self.keys)

    def _limit_headers(self) -> dict[str, str]:
        window_ms = int(self.window.window_s * 1000)
        left = max(self.window.remaining(), 0)
        oldest = self.window._calls[0] if self.window._calls else None  # noqa: SLF001 - the same window
        reset = window_ms if oldest is None else max(0, int((self.window.window_s - (time.monotonic() - oldest)) * 1000))
        return {"X-Rate-Limit-Time-Window-Ms": str(window_ms), "X-Rate-Limit-Time-Reset-Ms": str(reset),
                "X-Rate-Limit-Requests-Quota": str(QUOTA), "X-Rate-Limit-Requests-Left": str(left)}

    def rate_limit(self, request: Request) -> Response | None:
        return self.refuse_over(self.window, self._too_many)

    def _too_many(self, wait: float) -> Response:
        headers = self._limit_headers()
        headers["X-Rate-Limit-Time-Reset-Ms"] = str(max(1, int(wait * 1000)))
        headers["X-Rate-Limit-Requests-Left"] = "0"
        return json_response([{"status": 429, "message": "Too many requests."}], 429, headers=headers)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return self._too_many(1.0 / self.config.time_scale)
        if status == 503:
            return Response("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", 503,
                            media_type="text/html")
        return json_response([{"status": status, "message": "Internal Server Error"}], status)

    def routes(self) -> list[Route]:
        base = "/stores/{store_hash}"
        return [
            Route(f"{base}/v2/orders", self._endpoint(self.list_orders)),
            Route(f"{base}/v2/orders/count", self._endpoint(self.count_orders)),
            Route(f"{base}/v2/orders/{{order_id:int}}", self._endpoint(self.get_order)),
            Route(f"{base}/v2/orders/{{order_id:int}}/products", self._endpoint(self.list_products)),
            Route(f"{base}/v3/orders/{{order_id:int}}/transactions", self._endpoint(self.list_transactions, v3=True)),
            Route(f"{base}/v3/orders/payment_actions/refunds", self._endpoint(self.list_refunds, v3=True)),
            Route(f"{base}/v3/orders/{{order_id:int}}/payment_actions/refunds",
                  self._endpoint(self.list_order_refunds, v3=True)),
        ]

    def _endpoint(self, handler, v3: bool = False):
        async def endpoint(request: Request) -> Response:
            try:
                if request.path_params["store_hash"] != self.keys["store_hash"]:
                    raise _Problem(404, "Store not found.", v3)
                if request.headers.get("x-auth-token") != self.keys["access_token"]:
                    raise _Problem(401, "You have not been authorized to make this request.", v3)
                limited = self.rate_limit(request)
                if limited is not None:
                    return limited
                response = handler(request)
            except _Problem as problem:
                response = problem.response()
            response.headers.update(self._limit_headers())
            return response

        return endpoint

    # ------------------------------------------------------------------ helpers
    def _rows(self, sql: str, params: dict) -> list[dict]:
        cur = self.db.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _paged(self, request: Request, ids: Sequence[Any], v3: bool = False) -> tuple[list, int, int]:
        query = request.query_params
        limit = _int("limit", query.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT, v3)
        page = _int("page", query.get("page"), 1, 1, None, v3)
        offset = (page - 1) * limit
        start = offset - 1 if self.duplicate_page(request) and offset > 0 else offset
        return list(ids[start:offset + limit]), page, limit

    @staticmethod
    def _no_content() -> Response:
        return Response(status_code=204)

    # ------------------------------------------------------------------ orders (V2)
    def _order_filters(self, query) -> dict:
        out: dict[str, Any] = {}
        for name in ("min_date_created", "max_date_created", "min_date_modified", "max_date_modified"):
            if query.get(name):
                out[name] = parse_date(name, query[name]).isoformat()
        for name in ("min_id", "max_id", "status_id"):
            if query.get(name):
                out[name] = _int(name, query[name], 0, 0)
        field, _, direction = (query.get("sort") or "id:asc").partition(":")
        if field not in SORTABLE or (direction or "asc").lower() not in ("asc", "desc"):
            raise _Problem(400, "The field 'sort' is invalid.")
        out["sort"], out["direction"] = field, (direction or "asc").lower()
        return out

    def _order_ids(self, filters: dict, clock: datetime) -> list[int]:
        where, params = ["TRUE"], {"clock": clock}
        for name, column, op in (("min_date_created", "created_at", ">="), ("max_date_created", "created_at", "<="),
                                 ("min_date_modified", "modified_at", ">="),
                                 ("max_date_modified", "modified_at", "<="),
                                 ("min_id", "order_id", ">="), ("max_id", "order_id", "<="),
                                 ("status_id", "status_id", "=")):
            if name in filters:
                where.append(f"s.{column} {op} ${name}")
                value = filters[name]
                params[name] = datetime.fromisoformat(value) if isinstance(value, str) else value
        column = SORTABLE[filters["sort"]]
        direction = "DESC" if filters["direction"] == "desc" else "ASC"
        rows = self.db.execute(f"SELECT s.order_id FROM ({ORDER_STATE_SQL}) s WHERE {' AND '.join(where)} "
                               f"ORDER BY s.{column} {direction}, s.order_id {direction}", params).fetchall()
        return [r[0] for r in rows]

    def list_orders(self, request: Request) -> Response:
        filters = self._order_filters(request.query_params)
        clock = self.sandbox.clock
        _, ids = self.pages.get(("orders", orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), clock.isoformat()),
                                lambda: self._order_ids(filters, clock))
        chunk, _, _ = self._paged(request, ids)
        if not chunk:
            return self._no_content()
        return json_response(self.render_orders(chunk))

    def count_orders(self, request: Request) -> Response:
        filters = self._order_filters(request.query_params)
        ids = self._order_ids(filters, self.sandbox.clock)
        states = self._rows(f"SELECT status_id, count(*) AS n FROM ({ORDER_STATE_SQL}) s "
                            f"WHERE order_id IN (SELECT unnest($ids::BIGINT[])) GROUP BY ALL ORDER BY 1",
                            {"clock": self.sandbox.clock, "ids": ids or [-1]})
        return json_response({"statuses": [{"id": s["status_id"], "name": STATUS[s["status_id"]], "count": s["n"],
                                            "system_label": STATUS[s["status_id"]], "custom_label": STATUS[s["status_id"]],
                                            "system_description": "", "sort_order": s["status_id"]} for s in states],
                              "count": len(ids)})

    def get_order(self, request: Request) -> Response:
        orders = self.render_orders([request.path_params["order_id"]])
        if not orders:
            raise _Problem(404, "The requested resource was not found.")
        return json_response(orders[0])

    def render_orders(self, ids: Sequence[int]) -> list[dict]:
        rows = self._rows(f"SELECT o.*, s.modified_at, s.status_id, s.refunded FROM bigcommerce_orders o "
                          f"JOIN ({ORDER_STATE_SQL}) s USING (order_id) "
                          f"WHERE o.order_id IN (SELECT unnest($ids::BIGINT[]))",
                          {"clock": self.sandbox.clock, "ids": list(ids) or [-1]})
        counts = {r["order_id"]: r["n"] for r in self._rows(
            "SELECT order_id, sum(quantity) AS n FROM bigcommerce_order_products "
            "WHERE order_id IN (SELECT unnest($ids::BIGINT[])) GROUP BY ALL", {"ids": list(ids) or [-1]})}
        by_id = {r["order_id"]: r for r in rows}
        return [self._order_json(by_id[i], int(counts.get(i, 0))) for i in ids if i in by_id]

    def _order_json(self, o: dict, items: int) -> dict:
        clock = self.sandbox.clock
        status_id = o["status_id"]
        shipped = o["shipped_at"] is not None and o["shipped_at"] <= clock and status_id not in (5, 6, 7)
        edited = o["edited_at"] is not None and o["edited_at"] <= clock
        payment_status = {6: "declined", 7: "pending", 4: "refunded", 14: "partially refunded"}.get(status_id, "captured")
        if status_id == 5:
            payment_status = "refunded"
        subtotal_inc = o["subtotal_ex_tax"] + o["subtotal_tax"]
        base = f"https://api.bigcommerce.com/stores/{STORE_HASH}/v2/orders/{o['order_id']}"
        address = {
            "first_name": o["first_name"], "last_name": o["last_name"], "company": "",
            "street_1": f"{o['order_id'] % 900 + 100} Main Street", "street_2": "Apt 2" if edited else "",
            "city": "Springfield", "state": STATE_NAMES.get(o["region"], o["region"]),
            "zip": f"{o['order_id'] % 90000 + 10000:05d}", "country": "United States", "country_iso2": o["country"],
            "phone": "", "email": o["email"], "form_fields": [],
        }
        rate = o["exchange_rate"]
        return {
            "id": o["order_id"], "customer_id": o["bc_customer_id"],
            "date_created": rfc2822(o["created_at"]), "date_modified": rfc2822(o["modified_at"]),
            "date_shipped": rfc2822(o["shipped_at"]) if shipped else "",
            "status_id": status_id, "status": STATUS[status_id], "custom_status": STATUS[status_id],
            "subtotal_ex_tax": money4(o["subtotal_ex_tax"]), "subtotal_inc_tax": money4(subtotal_inc),
            "subtotal_tax": money4(o["subtotal_tax"]),
            "base_shipping_cost": money4(o["shipping_ex_tax"]), "shipping_cost_ex_tax": money4(o["shipping_ex_tax"]),
            "shipping_cost_inc_tax": money4(o["shipping_ex_tax"] + o["shipping_tax"]),
            "shipping_cost_tax": money4(o["shipping_tax"]), "shipping_cost_tax_class_id": 2,
            "base_handling_cost": money4(None), "handling_cost_ex_tax": money4(None),
            "handling_cost_inc_tax": money4(None), "handling_cost_tax": money4(None), "handling_cost_tax_class_id": 2,
            "base_wrapping_cost": money4(None), "wrapping_cost_ex_tax": money4(None),
            "wrapping_cost_inc_tax": money4(None), "wrapping_cost_tax": money4(None), "wrapping_cost_tax_class_id": 3,
            "total_ex_tax": money4(o["total_ex_tax"]), "total_inc_tax": money4(o["total_inc_tax"]),
            "total_tax": money4(o["total_tax"]), "items_total": items, "items_shipped": items if shipped else 0,
            "payment_method": o["payment_method"], "payment_provider_id": None, "payment_status": payment_status,
            "refunded_amount": money4(o["refunded"]), "order_is_digital": False,
            "store_credit_amount": money4(None), "gift_certificate_amount": money4(None),
            "ip_address": "", "ip_address_v6": "", "geoip_country": "United States", "geoip_country_iso2": "US",
            "currency_id": 2, "currency_code": o["currency"], "currency_exchange_rate": f"{rate:.10f}",
            "default_currency_id": 2, "default_currency_code": o["currency"],
            "store_default_currency_code": "GBP", "store_default_to_transactional_exchange_rate": f"{rate:.10f}",
            "staff_notes": (o["staff_notes"] or "") if edited else "", "customer_message": "",
            "discount_amount": money4(o["discount_amount"]),
            "coupon_discount": money4(o["discount_amount"] if o["coupon_code"] else None),
            "shipping_address_count": 1, "is_deleted": False, "ebay_order_id": "0", "cart_id": "",
            "billing_address": address, "is_email_opt_in": False, "credit_card_type": o["card_type"],
            "order_source": "www", "channel_id": 1, "external_source": None,
            "products": {"url": f"{base}/products", "resource": f"/orders/{o['order_id']}/products"},
            "shipping_addresses": {"url": f"{base}/shipping_addresses",
                                   "resource": f"/orders/{o['order_id']}/shipping_addresses"},
            "coupons": {"url": f"{base}/coupons", "resource": f"/orders/{o['order_id']}/coupons"},
            "external_id": None, "external_merchant_id": None, "tax_provider_id": "BasicTaxProvider",
            "customer_locale": "en-US", "external_order_id": "",
        }

    def list_products(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        rows = self._rows("SELECT p.*, o.coupon_code, o.coupon_pct FROM bigcommerce_order_products p "
                          "JOIN bigcommerce_orders o USING (order_id) WHERE p.order_id = $oid AND o.created_at <= $clock "
                          "ORDER BY p.product_row_id", {"oid": order_id, "clock": self.sandbox.clock})
        if not rows and not self._order_exists(order_id):
            raise _Problem(404, "The requested resource was not found.")
        chunk, _, _ = self._paged(request, rows)
        if not chunk:
            return self._no_content()
        out = []
        for p in chunk:
            qty = p["quantity"]
            unit_tax = p["total_tax"] / qty
            out.append({
                "id": p["product_row_id"], "order_id": order_id, "product_id": p["product_id"], "variant_id": p["product_id"] * 10,
                "order_address_id": order_id + 1000, "name": p["name"], "name_customer": p["name"],
                "name_merchant": p["name"], "sku": p["sku"], "upc": "", "type": "physical",
                "base_price": money4(p["price_ex_tax"]), "price_ex_tax": money4(p["price_ex_tax"]),
                "price_inc_tax": money4(p["price_ex_tax"] + unit_tax), "price_tax": money4(unit_tax),
                "base_total": money4(p["total_ex_tax"]), "total_ex_tax": money4(p["total_ex_tax"]),
                "total_inc_tax": money4(p["total_ex_tax"] + p["total_tax"]), "total_tax": money4(p["total_tax"]),
                "quantity": qty, "base_cost_price": money4(None), "cost_price_inc_tax": money4(None),
                "cost_price_ex_tax": money4(None), "cost_price_tax": money4(None), "weight": "1.0000",
                "is_refunded": False, "quantity_refunded": 0, "refund_amount": money4(None), "return_id": 0,
                "fixed_shipping_cost": money4(None), "is_bundled_product": False, "parent_order_product_id": None,
                "applied_discounts": ([{"id": "coupon", "amount": money4(p["discount"]), "name": p["coupon_code"],
                                        "code": p["coupon_code"], "target": "order"}] if p["discount"] else []),
                "product_options": [], "configurable_fields": [], "gift_certificate_id": None,
            })
        return json_response(out)

    def _order_exists(self, order_id: int) -> bool:
        return bool(self.db.execute("SELECT count(*) FROM bigcommerce_orders WHERE order_id = ? AND created_at <= ?",
                                    [order_id, self.sandbox.clock]).fetchone()[0])

    # ------------------------------------------------------------------ V3
    @staticmethod
    def _v3(data: list, page: int, limit: int, total: int | None = None) -> dict:
        total = len(data) if total is None else total
        pages = max(1, -(-total // limit))
        return {"data": data, "meta": {"pagination": {
            "total": total, "count": len(data), "per_page": limit, "current_page": page, "total_pages": pages,
            "links": {"current": f"?page={page}&limit={limit}",
                      **({"next": f"?page={page + 1}&limit={limit}"} if page < pages else {}),
                      **({"previous": f"?page={page - 1}&limit={limit}"} if page > 1 else {})}}}}

    def list_transactions(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if not self._order_exists(order_id):
            raise _Problem(404, "The requested resource was not found.", v3=True)
        rows = self._rows("SELECT * FROM bigcommerce_transactions WHERE order_id = $oid AND created_at <= $clock "
                          "ORDER BY transaction_id", {"oid": order_id, "clock": self.sandbox.clock})
        chunk, page, limit = self._paged(request, rows, v3=True)
        if not chunk:
            return self._no_content()
        data = [{
            "id": t["transaction_id"], "order_id": str(t["order_id"]), "event": t["event"],
            "method": "credit_card" if t["card_type"] else "paypal", "amount": t["amount"], "currency": t["currency"],
            "gateway": t["gateway"], "gateway_transaction_id": t["gateway_transaction_id"],
            "payment_method_id": t["payment_method_id"], "date_created": rfc3339(t["created_at"]), "test": False,
            "status": t["status"], "fraud_review": False, "reference_transaction_id": None, "offline": None,
            "custom": None, "payment_instrument_token": None,
            "avs_result": {"code": t["avs_result"], "message": "Street address and postal code match."
                           if t["avs_result"] == "Y" else "No match.", "street_match": "", "postal_match": ""},
            "cvv_result": {"code": "M" if t["status"] == "ok" else "N", "message": ""},
            "credit_card": ({"card_type": t["card_type"], "card_iin": "411111", "card_last4": t["card_last4"],
                             "card_expiry_month": 12, "card_expiry_year": 2029} if t["card_type"] else None),
            "gift_certificate": None, "store_credit": None,
        } for t in chunk]
        return json_response(self._v3(data, page, limit, len(rows)))

    def _refund_rows(self, where: str, params: dict) -> list[dict]:
        refunds = self._rows(f"SELECT r.*, o.gateway FROM bigcommerce_refunds r JOIN bigcommerce_orders o USING (order_id) "
                             f"WHERE r.created_at <= $clock AND {where} ORDER BY r.refund_id",
                             {"clock": self.sandbox.clock, **params})
        items: dict[int, list[dict]] = {}
        if refunds:
            for it in self._rows("SELECT * FROM bigcommerce_refund_items WHERE refund_id IN "
                                 "(SELECT unnest($rids::BIGINT[])) ORDER BY item_type, item_id",
                                 {"rids": [r["refund_id"] for r in refunds]}):
                items.setdefault(it["refund_id"], []).append(it)
        for r in refunds:
            r["items"] = items.get(r["refund_id"], [])
        return refunds

    @staticmethod
    def _refund_json(r: dict) -> dict:
        return {
            "id": r["refund_id"], "order_id": r["order_id"], "user_id": 0, "created": rfc3339(r["created_at"]),
            "reason": r["reason"], "total_amount": r["total_amount"], "total_tax": r["tax_amount"],
            "uses_merchant_override_values": False,
            "payments": [{"id": r["refund_id"] * 10 + 1, "provider_id": r["gateway"], "amount": r["total_amount"],
                          "offline": False, "is_declined": False, "declined_message": ""}],
            # PRODUCT items by quantity; SHIPPING by amount (ex tax, as the refund quote takes it)
            "items": [{"item_type": it["item_type"], "item_id": it["item_id"], "quantity": it["quantity"],
                       "requested_amount": it["amount"] if it["item_type"] == "SHIPPING" else None, "reason": None}
                      for it in r["items"]],
        }

    def list_refunds(self, request: Request) -> Response:
        query = request.query_params
        where, params = ["TRUE"], {}
        for name, op in (("created:min", ">="), ("created:max", "<=")):
            if query.get(name):
                key = name.replace(":", "_")
                where.append(f"r.created_at {op} ${key}")
                params[key] = parse_date(name, query[name], v3=True)
        for name, column in (("order_id:in", "r.order_id"), ("id:in", "r.refund_id")):
            if query.get(name):
                try:
                    values = [int(x) for x in query[name].split(",") if x.strip()]
                except ValueError:
                    raise _Problem(400, f"The field '{name}' is invalid.", v3=True) from None
                key = name.replace(":", "_")
                where.append(f"{column} IN (SELECT unnest(${key}::BIGINT[]))")
                params[key] = values
        clock = self.sandbox.clock
        key = orjson.dumps({k: str(v) for k, v in params.items()}, option=orjson.OPT_SORT_KEYS)
        _, rows = self.pages.get(("refunds", key, clock.isoformat()),
                                 lambda: self._refund_rows(" AND ".join(where), params))
        chunk, page, limit = self._paged(request, rows, v3=True)
        if not chunk:
            return self._no_content()
        return json_response(self._v3([self._refund_json(r) for r in chunk], page, limit, len(rows)))

    def list_order_refunds(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if not self._order_exists(order_id):
            raise _Problem(404, "The requested resource was not found.", v3=True)
        rows = self._refund_rows("r.order_id = $oid", {"oid": order_id})
        return json_response({"data": [self._refund_json(r) for r in rows], "meta": {}})


__all__ = ["BigCommerceEmulator", "QUOTA", "WINDOW_S", "MAX_LIMIT", "STATE_NAMES"]
