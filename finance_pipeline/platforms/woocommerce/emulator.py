"""WooCommerce REST API (`wc/v3`) emulator: the sandbox's EU store, rendered as of the sandbox clock.

Paths are WooCommerce's own (`/wp-json/wc/v3/orders`, `/orders/{id}/refunds`, `/refunds`), so any
WooCommerce client works against it with the store URL swapped.  What it reproduces:

- **Auth.**  REST API keys (`ck_…` / `cs_…`) as HTTP Basic auth, or as the `consumer_key` /
  `consumer_secret` query parameters (for servers that strip `Authorization`); errors are
  WordPress REST errors (`{"code", "message", "data": {"status"}}`) with 401.
- **As-of-clock rendering.**  An order exists once placed; it is `pending` until its payment
  settles, then `processing` (or `failed`), `completed` once shipped, `refunded` once refunds
  reach its total.  Refunds appear at their own time; `date_modified` is the latest event.
- **Money.**  Decimal strings with 2 decimals (`dp` changes that), line-item `taxes[]` unrounded,
  line `price` a JSON number; refund line items negative, the refund's `amount` positive.
- **Dates.**  `date_*` in the store's time zone (Europe/Dublin) and `date_*_gmt` in UTC, both
  without an offset.  `after` / `before` / `modified_after` / `modified_before` are exclusive,
  read as store-local time unless `dates_are_gmt=true`.
- **Pagination.**  `page` / `per_page` (default 10, max 100) or `offset`; `X-WP-Total`,
  `X-WP-TotalPages` and a `Link` header with `rel="prev"` / `rel="next"`.  Each walk pages a list
  computed once per (filters, clock) in DuckDB (`PageCache`).
- **Rate limit.**  Core WooCommerce has none; the sandbox store sits behind a host limit of
  `HOST_LIMIT` requests per rolling minute per key (compressed by `time_scale`), answered as the
  host's WAF does: 429 with `Retry-After` and `RateLimit-Limit/Remaining/Reset` headers.
- **Webhooks.**  `webhook_delivery(order_id, topic)` builds a delivery exactly as WooCommerce
  sends it (order JSON body, `X-WC-Webhook-*` headers, Base64 HMAC-SHA256 signature).
"""
from __future__ import annotations

import base64
import hashlib
import math
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any, Sequence
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.woocommerce import webhooks
from finance_pipeline.platforms.woocommerce.world import STORE_TIMEZONE
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
STORE_TZ = ZoneInfo(STORE_TIMEZONE)
STORE_URL = "https://curtains-eu.example"
WC_VERSION = "9.8.5"
API = "/wp-json/wc/v3"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 10, 100
HOST_LIMIT, HOST_WINDOW_S = 120, 60.0
STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
            "checkout-draft")


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str, params: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.params = status, code, message, params

    def response(self) -> Response:
        data: dict[str, Any] = {"status": self.status}
        if self.params:
            data["params"] = self.params
        return json_response({"code": self.code, "message": self.message, "data": data}, self.status)


def _invalid(name: str, why: str) -> _Problem:
    return _Problem(400, "rest_invalid_param", f"Invalid parameter(s): {name}", {name: why})


def money(x: Decimal | None, dp: int = 2) -> str:
    x = x if x is not None else Decimal(0)
    return f"{x.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP):.{dp}f}"


def neg(x: Decimal, dp: int = 2) -> str:
    return money(-x, dp) if x else money(x, dp)


def raw(x: Decimal) -> str:
    """WooCommerce's unrounded tax amounts: as many digits as the division gives (max 6 here)."""
    return format(x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP).normalize(), "f")


def local(at: datetime | None) -> str | None:
    return at.astimezone(STORE_TZ).strftime("%Y-%m-%dT%H:%M:%S") if at else None


def gmt(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if at else None


def parse_date(name: str, value: str, gmt_dates: bool) -> datetime:
    """An ISO 8601 date-time filter; without an offset it is store-local unless dates_are_gmt."""
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(name, "Invalid date.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC if gmt_dates else STORE_TZ)
    return parsed.astimezone(UTC)


def _int(name: str, value: str, lo: int = 0, hi: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        raise _invalid(name, f"{name} is not of type integer.") from None
    if n < lo or (hi is not None and n > hi):
        raise _invalid(name, f"{name} must be between {lo} (inclusive) and {hi} (inclusive)"
                       if hi else f"{name} must be greater than or equal to {lo}")
    return n


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


# The order's state as of $clock: status and date_modified (one row per visible order).
ORDER_STATE_SQL = """
    WITH r AS (
        SELECT order_id, max(created_at) AS last_refund, sum(amount) AS refunded
          FROM woocommerce_refunds WHERE created_at <= $clock GROUP BY order_id)
    SELECT o.order_id, o.created_at,
           greatest(o.created_at,
                    CASE WHEN o.paid_at <= $clock THEN o.paid_at END,
                    CASE WHEN o.failed_at <= $clock THEN o.failed_at END,
                    CASE WHEN o.completed_at <= $clock THEN o.completed_at END,
                    CASE WHEN o.edited_at <= $clock THEN o.edited_at END,
                    r.last_refund) AS modified_at,
           CASE WHEN o.failed_at <= $clock THEN 'failed'
                WHEN o.paid_at IS NULL OR o.paid_at > $clock THEN 'pending'
                WHEN coalesce(r.refunded, 0) >= o.total THEN 'refunded'
                WHEN o.completed_at <= $clock THEN 'completed'
                ELSE 'processing' END AS status
      FROM woocommerce_orders o LEFT JOIN r USING (order_id)
     WHERE o.created_at <= $clock
"""


class WooCommerceEmulator(Emulator):
    """The sandbox store `curtains-eu.example` (WooCommerce 9.8, EUR, Europe/Dublin)."""

    name = "woocommerce"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.window = SlidingWindow(HOST_LIMIT, HOST_WINDOW_S, self.config.time_scale)

    # ------------------------------------------------------------------ base class hooks
    @cached_property
    def keys(self) -> dict[str, str]:
        digest = self.seed_digest("woocommerce-keys", 40)
        return {"consumer_key": f"ck_{digest[:40]}", "consumer_secret": f"cs_{digest[40:80]}",
                "webhook_secret": f"wcwh_{digest[:16]}{digest[64:80]}"}

    def credentials(self) -> dict[str, str]:
        return {"store_url": STORE_URL, **self.keys}

    def rate_limit(self, request: Request) -> Response | None:
        return self.refuse_over(self.window, self._too_many)

    def _too_many(self, wait: float) -> Response:
        reset = max(wait, 0.001)
        return json_response(
            {"code": "rest_too_many_requests", "message": "Too many requests. Please try again later.",
             "data": {"status": 429}}, 429,
            headers={"Retry-After": f"{reset:.3f}", "RateLimit-Limit": str(HOST_LIMIT), "RateLimit-Remaining": "0",
                     "RateLimit-Reset": f"{reset:.3f}"})

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return self._too_many(1.0 / self.config.time_scale)
        if status == 503:
            return Response("<html><body><h1>503 Service Unavailable</h1></body></html>", 503,
                            media_type="text/html")
        return json_response({"code": "internal_server_error",
                              "message": "<p>There has been a critical error on this website.</p>",
                              "data": {"status": 500}}, status)

    def routes(self) -> list[Route]:
        return [
            Route(f"{API}/orders", self._endpoint(self.list_orders)),
            Route(f"{API}/orders/{{order_id:int}}", self._endpoint(self.get_order)),
            Route(f"{API}/orders/{{order_id:int}}/refunds", self._endpoint(self.list_order_refunds)),
            Route(f"{API}/orders/{{order_id:int}}/refunds/{{refund_id:int}}", self._endpoint(self.get_refund)),
            Route(f"{API}/refunds", self._endpoint(self.list_refunds)),
        ]

    def _endpoint(self, handler):
        async def endpoint(request: Request) -> Response:
            try:
                self._authenticate(request)
                limited = self.rate_limit(request)
                if limited is not None:
                    return limited
                return handler(request)
            except _Problem as problem:
                return problem.response()

        return endpoint

    def _authenticate(self, request: Request) -> None:
        key = secret = None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                key = secret = None
        if not key:
            key = request.query_params.get("consumer_key")
            secret = request.query_params.get("consumer_secret")
        if not key:
            raise _Problem(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if key != self.keys["consumer_key"]:
            raise _Problem(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.keys["consumer_secret"]:
            raise _Problem(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")

    # ------------------------------------------------------------------ paging
    def _page(self, request: Request, resource: str, filters: dict, compute) -> tuple[list[int], dict[str, str]]:
        query = request.query_params
        per_page = _int("per_page", query["per_page"], 1, MAX_PER_PAGE) if query.get("per_page") else DEFAULT_PER_PAGE
        page = _int("page", query["page"], 1) if query.get("page") else 1
        offset = _int("offset", query["offset"], 0) if query.get("offset") else (page - 1) * per_page
        clock = self.sandbox.clock
        _, ids = self.pages.get((resource, orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), clock.isoformat()),
                                lambda: compute(filters, clock))
        total = len(ids)
        pages = math.ceil(total / per_page) if total else 0
        if page > max(pages, 1) and "offset" not in query:
            raise _Problem(400, "woocommerce_rest_invalid_page_number",
                           "The page number requested is larger than the number of pages available.")
        chunk = list(ids[offset:offset + per_page])
        if self.duplicate_page(request) and offset > 0:
            # the fault: rows shifted while the client paged, so the previous page's last row shows again
            chunk = list(ids[offset - 1:offset + per_page])
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        args = [(k, v) for k, v in query.multi_items() if k not in ("page", "consumer_key", "consumer_secret")]
        url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        if page > 1 and "offset" not in query:
            links.append(f'<{url}?{urlencode(args + [("page", page - 1)])}>; rel="prev"')
        if "offset" not in query:
            nxt = page if self.duplicate_page(request) else page + 1  # the fault: this page once more
            if nxt <= pages:
                links.append(f'<{url}?{urlencode(args + [("page", nxt)])}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return chunk, headers

    # ------------------------------------------------------------------ orders
    def _order_filters(self, query) -> dict:
        gmt_dates = _truthy(query.get("dates_are_gmt"))
        out: dict[str, Any] = {}
        for name in ("after", "before", "modified_after", "modified_before"):
            if query.get(name):
                out[name] = parse_date(name, query[name], gmt_dates).isoformat()
        raw_status = query.getlist("status[]") or query.getlist("status") or ["any"]
        statuses = [s.strip() for v in raw_status for s in v.split(",") if s.strip()]
        for s in statuses:
            if s != "any" and s not in STATUSES:
                raise _invalid("status", f"status[0] is not one of any, {', '.join(STATUSES)}.")
        out["status"] = sorted(set(statuses))
        orderby = query.get("orderby", "date")
        if orderby not in ("date", "id", "include", "title", "slug", "modified"):
            raise _invalid("orderby", "orderby is not one of date, id, include, title, slug, modified.")
        order = query.get("order", "desc").lower()
        if order not in ("asc", "desc"):
            raise _invalid("order", "order is not one of asc and desc.")
        out["orderby"], out["order"] = orderby, order
        for name in ("include", "exclude"):
            if query.get(name):
                out[name] = [_int(name, x) for x in query[name].split(",") if x.strip()]
        if query.get("customer"):
            out["customer"] = _int("customer", query["customer"])
        return out

    def _order_ids(self, filters: dict, clock: datetime) -> Sequence[int]:
        where, params = ["TRUE"], {"clock": clock}
        for name, column, op in (("after", "created_at", ">"), ("before", "created_at", "<"),
                                 ("modified_after", "modified_at", ">"), ("modified_before", "modified_at", "<")):
            if name in filters:
                where.append(f"s.{column} {op} ${name}")
                params[name] = datetime.fromisoformat(filters[name])
        statuses = filters["status"]
        if "any" not in statuses:
            where.append("s.status IN (SELECT unnest($statuses::VARCHAR[]))")
            params["statuses"] = statuses
        for name, op in (("include", "IN"), ("exclude", "NOT IN")):
            if name in filters:
                where.append(f"s.order_id {op} (SELECT unnest(${name}::BIGINT[]))")
                params[name] = filters[name] or [-1]
        if "customer" in filters:
            where.append("o.wc_customer_id = $customer")
            params["customer"] = filters["customer"]
        column = {"id": "s.order_id", "modified": "s.modified_at", "title": "s.order_id",
                  "slug": "s.order_id", "include": "s.order_id"}.get(filters["orderby"], "s.created_at")
        direction = "ASC" if filters["order"] == "asc" else "DESC"
        sql = (f"SELECT s.order_id FROM ({ORDER_STATE_SQL}) s JOIN woocommerce_orders o USING (order_id) "
               f"WHERE {' AND '.join(where)} ORDER BY {column} {direction}, s.order_id {direction}")
        return [r[0] for r in self.db.execute(sql, params).fetchall()]

    def list_orders(self, request: Request) -> Response:
        filters = self._order_filters(request.query_params)
        ids, headers = self._page(request, "orders", filters, self._order_ids)
        dp = self._dp(request)
        return json_response(self.render_orders(ids, dp=dp), headers=headers)

    def get_order(self, request: Request) -> Response:
        orders = self.render_orders([request.path_params["order_id"]], dp=self._dp(request))
        if not orders:
            raise _Problem(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return json_response(orders[0])

    @staticmethod
    def _dp(request: Request) -> int:
        return _int("dp", request.query_params["dp"], 0, 6) if request.query_params.get("dp") else 2

    def render_orders(self, ids: Sequence[int], clock: datetime | None = None, dp: int = 2) -> list[dict]:
        """The REST objects of orders `ids` as of the clock (a hook tests can wrap to corrupt one)."""
        if not ids:
            return []
        clock = clock or self.sandbox.clock
        db = self.db
        params = {"clock": clock, "ids": list(ids)}
        cur = db.execute(f"SELECT o.*, s.modified_at, s.status FROM ({ORDER_STATE_SQL}) s "
                         "JOIN woocommerce_orders o USING (order_id) "
                         "WHERE o.order_id IN (SELECT unnest($ids::BIGINT[]))", params)
        cols = [d[0] for d in cur.description]
        orders = {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
        lines: dict[int, list[dict]] = {}
        cur = db.execute("SELECT * FROM woocommerce_order_lines WHERE order_id IN (SELECT unnest($ids::BIGINT[])) "
                         "ORDER BY line_id", {"ids": list(ids)})
        cols = [d[0] for d in cur.description]
        for r in cur.fetchall():
            row = dict(zip(cols, r))
            lines.setdefault(row["order_id"], []).append(row)
        refunds = self._refund_rows(db, "r.order_id IN (SELECT unnest($ids::BIGINT[]))", params)
        by_order: dict[int, list[dict]] = {}
        for ref in refunds:
            by_order.setdefault(ref["order_id"], []).append(ref)
        out = []
        for oid in ids:
            o = orders.get(oid)
            if o is not None:
                out.append(self._order_json(o, lines.get(oid, []), by_order.get(oid, []), dp))
        return out

    def _order_json(self, o: dict, lines: list[dict], refunds: list[dict], dp: int) -> dict:
        m = lambda x: money(x, dp)  # noqa: E731
        rate, rate_id = o["tax_rate"], o["tax_rate_id"]
        pct = o["coupon_pct"]
        cart_tax = sum((l["total_tax"] for l in lines), Decimal(0))
        if o.get("cart_tax_at_subtotal") is not None:  # rounded once at subtotal level (S13)
            cart_tax = o["cart_tax_at_subtotal"]
        discount = sum((l["subtotal"] - l["total"] for l in lines), Decimal(0))
        discount_tax = sum((l["subtotal_tax"] - l["total_tax"] for l in lines), Decimal(0))
        paid = o["status"] not in ("pending", "failed")
        address = {"first_name": o["first_name"], "last_name": o["last_name"], "company": "",
                   "address_1": f"{o['order_id'] % 97 + 1} Main Street", "address_2": "",
                   "city": {"IE": "Dublin", "FR": "Lyon", "DE": "Hamburg", "NL": "Utrecht"}[o["country"]],
                   "state": "", "postcode": f"{o['order_id'] % 90000 + 10000}", "country": o["country"]}
        edited = o["edited_at"] is not None and o["modified_at"] >= o["edited_at"]
        if edited:
            address["address_2"] = "Apt 2 (corrected)"
        line_json = []
        for l in lines:
            unit_tax_raw = (l["total"] + l["total_tax"]) * rate / (1 + rate)
            line_json.append({
                "id": l["line_id"], "name": l["name"], "product_id": l["product_id"], "variation_id": 0,
                "quantity": l["quantity"], "tax_class": "", "subtotal": m(l["subtotal"]),
                "subtotal_tax": m(l["subtotal_tax"]), "total": m(l["total"]), "total_tax": m(l["total_tax"]),
                "taxes": [{"id": rate_id, "total": raw(unit_tax_raw),
                           "subtotal": raw((l["subtotal"] + l["subtotal_tax"]) * rate / (1 + rate))}],
                "meta_data": self._line_meta(l, refunds), "sku": l["sku"],
                "price": (l["total"] / l["quantity"]).quantize(Decimal("0.000001")).normalize(),
                "image": {"id": "", "src": ""}, "parent_name": None,
            })
        refunded_total = sum((r["amount"] for r in refunds), Decimal(0))
        fx = o["fx_rate"]
        return {
            "id": o["order_id"], "parent_id": 0, "status": o["status"], "currency": o["currency"],
            "version": WC_VERSION, "prices_include_tax": True,
            "date_created": local(o["created_at"]), "date_modified": local(o["modified_at"]),
            "discount_total": m(discount), "discount_tax": m(discount_tax),
            "shipping_total": m(o["shipping_total"]), "shipping_tax": m(o["shipping_tax"]),
            "cart_tax": m(cart_tax), "total": m(o["total"]), "total_tax": m(cart_tax + o["shipping_tax"]),
            "customer_id": o["wc_customer_id"], "order_key": f"wc_order_{hashlib.md5(str(o['order_id']).encode()).hexdigest()[:13]}",
            "billing": {**address, "email": o["email"], "phone": ""}, "shipping": {**address, "phone": ""},
            "payment_method": o["payment_method"], "payment_method_title": o["payment_method_title"],
            "transaction_id": (o["transaction_id"] or "") if paid else "",
            "customer_ip_address": "", "customer_user_agent": "", "created_via": "checkout",
            "customer_note": (o["edit_note"] or "") if edited else "",
            "date_completed": local(o["completed_at"]) if o["status"] == "completed" else None,
            "date_paid": local(o["paid_at"]) if paid else None,
            "cart_hash": hashlib.md5(f"cart{o['order_id']}".encode()).hexdigest(), "number": str(o["order_id"]),
            "meta_data": [
                {"id": o["order_id"] * 10 + 1, "key": "_order_base_currency", "value": "GBP"},
                {"id": o["order_id"] * 10 + 2, "key": "_base_currency_exchange_rate", "value": format(fx, "f")},
                {"id": o["order_id"] * 10 + 3, "key": "_order_total_base_currency",
                 "value": money(o["total"] * fx)},
            ],
            "line_items": line_json,
            "tax_lines": [{
                "id": o["tax_item_id"], "rate_code": f"{o['country']}-{o['tax_label'].split()[-1]}-1",
                "rate_id": rate_id, "label": o["tax_label"], "compound": False, "tax_total": m(cart_tax),
                "shipping_tax_total": m(o["shipping_tax"]), "rate_percent": float(rate * 100) if (rate * 100) % 1 else int(rate * 100),
                "meta_data": [],
            }],
            "shipping_lines": [{
                "id": o["shipping_item_id"], "method_title": "Free shipping" if not o["shipping_total"] else "Flat rate",
                "method_id": "free_shipping" if not o["shipping_total"] else "flat_rate", "instance_id": "1",
                "total": m(o["shipping_total"]), "total_tax": m(o["shipping_tax"]),
                "taxes": [{"id": rate_id, "total": raw(o["shipping_tax"]), "subtotal": ""}], "meta_data": [],
            }],
            "fee_lines": [],
            "coupon_lines": ([{"id": o["tax_item_id"] + 100_000, "code": o["coupon_code"].lower(),
                               "discount": m(discount), "discount_tax": m(discount_tax), "meta_data": []}]
                             if pct else []),
            "refunds": [{"id": r["refund_id"], "reason": r["reason"], "total": neg(r["amount"], dp)}
                        for r in sorted(refunds, key=lambda r: r["refund_id"], reverse=True)],
            "payment_url": f"{STORE_URL}/checkout/order-pay/{o['order_id']}/",
            "is_editable": o["status"] in ("pending", "on-hold", "checkout-draft"),
            "needs_payment": o["status"] in ("pending", "failed"),
            "needs_processing": True,
            "date_created_gmt": gmt(o["created_at"]), "date_modified_gmt": gmt(o["modified_at"]),
            "date_completed_gmt": gmt(o["completed_at"]) if o["status"] == "completed" else None,
            "date_paid_gmt": gmt(o["paid_at"]) if paid else None,
            "currency_symbol": "€", "amount_refunded_total": m(refunded_total),
            "_links": {"self": [{"href": f"{STORE_URL}{API}/orders/{o['order_id']}"}],
                       "collection": [{"href": f"{STORE_URL}{API}/orders"}]},
        }

    @staticmethod
    def _line_meta(line: dict, refunds: list[dict]) -> list[dict]:
        """`_restock_refunded_items`: units of this line put back in stock by its refunds so far."""
        restocked = sum(rl["quantity"] for r in refunds if r["restock"] for rl in r["lines"]
                        if rl["line_id"] == line["line_id"])
        if not restocked:
            return []
        return [{"id": line["line_id"] * 10 + 7, "key": "_restock_refunded_items", "value": str(restocked),
                 "display_key": "_restock_refunded_items", "display_value": str(restocked)}]

    # ------------------------------------------------------------------ refunds
    def _refund_rows(self, db, where: str, params: dict) -> list[dict]:
        cur = db.execute(f"SELECT r.*, o.tax_rate, o.tax_rate_id FROM woocommerce_refunds r "
                         f"JOIN woocommerce_orders o USING (order_id) WHERE r.created_at <= $clock AND {where} "
                         f"ORDER BY r.refund_id", params)
        cols = [d[0] for d in cur.description]
        refunds = [dict(zip(cols, r)) for r in cur.fetchall()]
        if not refunds:
            return []
        cur = db.execute(
            "SELECT rl.*, l.name, l.product_id FROM woocommerce_refund_lines rl "
            "JOIN woocommerce_order_lines l USING (line_id) "
            "WHERE rl.refund_id IN (SELECT unnest($rids::BIGINT[])) ORDER BY rl.refund_item_id",
            {"rids": [r["refund_id"] for r in refunds]})
        cols = [d[0] for d in cur.description]
        by_refund: dict[int, list[dict]] = {}
        for row in cur.fetchall():
            rl = dict(zip(cols, row))
            by_refund.setdefault(rl["refund_id"], []).append(rl)
        for r in refunds:
            r["lines"] = by_refund.get(r["refund_id"], [])
        return refunds

    def _refund_json(self, r: dict, dp: int = 2, with_parent: bool = False) -> dict:
        m = lambda x: neg(x, dp)  # noqa: E731
        rate_id = r["tax_rate_id"]
        body = {
            "id": r["refund_id"], "date_created": local(r["created_at"]), "date_created_gmt": gmt(r["created_at"]),
            "amount": money(r["amount"], dp), "reason": r["reason"], "refunded_by": 1, "refunded_payment": True,
            "meta_data": [],
            "line_items": [{
                "id": rl["refund_item_id"], "name": rl["name"], "product_id": rl["product_id"], "variation_id": 0,
                "quantity": -rl["quantity"], "tax_class": "", "subtotal": m(rl["total"]),
                "subtotal_tax": m(rl["total_tax"]), "total": m(rl["total"]), "total_tax": m(rl["total_tax"]),
                "taxes": [{"id": rate_id, "total": raw(-rl["total_tax"]), "subtotal": raw(-rl["total_tax"])}],
                "meta_data": [{"id": rl["refund_item_id"] * 10 + 1, "key": "_refunded_item_id",
                               "value": str(rl["line_id"]), "display_key": "_refunded_item_id",
                               "display_value": str(rl["line_id"])}],
                "sku": rl["sku"], "price": -(rl["total"] / rl["quantity"]).quantize(Decimal("0.000001")).normalize(),
            } for rl in r["lines"]],
            "shipping_lines": ([{
                "id": r["shipping_item_id"], "method_title": "Flat rate", "method_id": "flat_rate",
                "instance_id": "1", "total": m(r["shipping_total"]), "total_tax": m(r["shipping_tax"]),
                "taxes": [{"id": rate_id, "total": raw(-r["shipping_tax"]), "subtotal": ""}], "meta_data": [],
            }] if r["shipping_total"] else []),
            "tax_lines": [], "fee_lines": [],
            "_links": {"self": [{"href": f"{STORE_URL}{API}/orders/{r['order_id']}/refunds/{r['refund_id']}"}],
                       "up": [{"href": f"{STORE_URL}{API}/orders/{r['order_id']}"}]},
        }
        if with_parent:
            body["parent_id"] = r["order_id"]
        return body

    def _refund_filters(self, query) -> dict:
        gmt_dates = _truthy(query.get("dates_are_gmt"))
        out: dict[str, Any] = {}
        for name in ("after", "before"):
            if query.get(name):
                out[name] = parse_date(name, query[name], gmt_dates).isoformat()
        order = query.get("order", "desc").lower()
        if order not in ("asc", "desc"):
            raise _invalid("order", "order is not one of asc and desc.")
        orderby = query.get("orderby", "date")
        if orderby not in ("date", "id", "include", "title", "slug", "modified"):
            raise _invalid("orderby", "orderby is not one of date, id, include, title, slug, modified.")
        out["order"], out["orderby"] = order, orderby
        if query.get("parent"):
            out["parent"] = [_int("parent", x) for x in query["parent"].split(",") if x.strip()]
        return out

    def _refund_ids(self, filters: dict, clock: datetime) -> Sequence[int]:
        where, params = ["created_at <= $clock"], {"clock": clock}
        for name, op in (("after", ">"), ("before", "<")):
            if name in filters:
                where.append(f"created_at {op} ${name}")
                params[name] = datetime.fromisoformat(filters[name])
        if "parent" in filters:
            where.append("order_id IN (SELECT unnest($parent::BIGINT[]))")
            params["parent"] = filters["parent"]
        column = "refund_id" if filters["orderby"] in ("id", "include", "title", "slug") else "created_at"
        direction = "ASC" if filters["order"] == "asc" else "DESC"
        rows = self.db.execute(f"SELECT refund_id FROM woocommerce_refunds WHERE {' AND '.join(where)} "
                               f"ORDER BY {column} {direction}, refund_id {direction}", params).fetchall()
        return [r[0] for r in rows]

    def list_refunds(self, request: Request) -> Response:
        filters = self._refund_filters(request.query_params)
        ids, headers = self._page(request, "refunds", filters, self._refund_ids)
        rows = self._refund_rows(self.db, "r.refund_id IN (SELECT unnest($ids::BIGINT[]))",
                                 {"clock": self.sandbox.clock, "ids": ids or [-1]})
        by_id = {r["refund_id"]: r for r in rows}
        dp = self._dp(request)
        return json_response([self._refund_json(by_id[i], dp, with_parent=True) for i in ids if i in by_id],
                             headers=headers)

    def _order_exists(self, order_id: int) -> bool:
        return bool(self.db.execute("SELECT count(*) FROM woocommerce_orders WHERE order_id = ? AND created_at <= ?",
                                    [order_id, self.sandbox.clock]).fetchone()[0])

    def list_order_refunds(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if not self._order_exists(order_id):
            raise _Problem(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        rows = self._refund_rows(self.db, "r.order_id = $oid", {"clock": self.sandbox.clock, "oid": order_id})
        rows.sort(key=lambda r: (r["created_at"], r["refund_id"]), reverse=True)
        return json_response([self._refund_json(r, self._dp(request)) for r in rows],
                             headers={"X-WP-Total": str(len(rows)), "X-WP-TotalPages": "1" if rows else "0"})

    def get_refund(self, request: Request) -> Response:
        rows = self._refund_rows(self.db, "r.order_id = $oid AND r.refund_id = $rid",
                                 {"clock": self.sandbox.clock, "oid": request.path_params["order_id"],
                                  "rid": request.path_params["refund_id"]})
        if not rows:
            raise _Problem(404, "woocommerce_rest_invalid_id", "Invalid ID.")
        return json_response(self._refund_json(rows[0], self._dp(request)))

    # ------------------------------------------------------------------ webhooks
    def webhook_delivery(self, order_id: int, topic: str = "order.updated", webhook_id: int = 3,
                         at: datetime | None = None) -> tuple[dict[str, str], bytes]:
        """(headers, body) of a delivery of `topic` for an order, as WooCommerce sends it."""
        if topic == "order.deleted":
            body = orjson.dumps({"id": order_id})
        else:
            orders = self.render_orders([order_id])
            if not orders:
                raise KeyError(order_id)
            # WordPress's wp_json_encode escapes slashes; the signature covers these exact bytes
            body = orjson.dumps(orders[0], default=_json_default).replace(b"/", b"\\/")
        return webhooks.delivery_headers(body, self.keys["webhook_secret"], topic, webhook_id,
                                         STORE_URL, at or self.sandbox.clock), body


def _json_default(obj: Any) -> Any:
    from finance_pipeline.http.client import json_default

    return json_default(obj)


__all__ = ["WooCommerceEmulator", "STORE_URL", "HOST_LIMIT", "HOST_WINDOW_S", "MAX_PER_PAGE"]
