"""eBay emulator: OAuth token endpoint, Sell Fulfillment `getOrders`/`getOrder`, Sell Finances
`getTransactions`/`getPayouts`, rendered from the sandbox world as of the sandbox clock.

Paths are eBay's own.  In reality Fulfillment lives on `api.ebay.com` and Finances on
`apiz.ebay.com`; this one server answers both, and the client keeps two base URLs.

What it reproduces, because clients break on it:
- **OAuth.**  `POST /identity/v1/oauth2/token` with Basic client credentials: `refresh_token`
  grant -> a user access token (2 h, compressed by `time_scale`); `client_credentials` -> an
  application token, which the Sell APIs refuse (403).  Expired or unknown tokens: 401.
- **As of the clock.**  An order exists once placed; fulfilment, cancellation and refunds appear
  when they happen and move `lastModifiedDate`.  A Finances transaction is listed once made,
  carries its `payoutId` (status `PAYOUT`) once its payout started; a payout is `INITIATED`,
  then `SUCCEEDED`.  The `Date` header is the sandbox clock.
- **Filters.**  `filter=lastmodifieddate:[a..b]` / `creationdate:[a..]` (both ends inclusive,
  UTC `...000Z`), reachable only within 90 days of now (errorId 30830); `orderIds` (<= 50)
  reaches any order.  Finances: `transactionDate:[a..b]` (<= 36 months), `transactionType:{…}`,
  `payoutId:{…}`, `orderId:{…}`; payouts `payoutDate:[a..b]`, `payoutStatus:{…}`.
- **Paging.**  `limit`/`offset` with `href`, `next`, `prev`, `total`; getTransactions answers 204
  when nothing matches.  Lists are computed once per (query, clock) in the `PageCache`.
- **Money.**  `{value: "12.34", currency}` strings; a US (USD) order's amounts are shown in the
  seller's GBP with `convertedFromValue`/`convertedFromCurrency` holding the buyer's USD.
- **Limits.**  Daily call quotas per API (Fulfillment 100,000, Finances 15,000), as rolling
  windows scaled by `time_scale`; over quota: 429 with errorId 2001.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
SELLER_CURRENCY = "GBP"
SELLER_ID = "curtains_sandbox_uk"
USER_TOKEN_LIFETIME_S = 7200
REFRESH_TOKEN_LIFETIME_S = 47_304_000
ORDER_FILTER_REACH = timedelta(days=90)
FINANCES_MAX_RANGE = timedelta(days=3 * 365)
MAX_ORDER_IDS = 50
QUOTAS = {"fulfillment": 100_000, "finances": 15_000}  # calls per day per application
LIMITS = {"order": (50, 1000), "transaction": (20, 1000), "payout": (20, 200)}  # (default, max)
SCOPES = ("https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly",
          "https://api.ebay.com/oauth/api_scope/sell.finances")


class _Problem(Exception):
    def __init__(self, status: int, error_id: int, message: str, domain: str = "API_FULFILLMENT",
                 category: str = "REQUEST", parameter: str | None = None) -> None:
        super().__init__(message)
        err: dict[str, Any] = {"errorId": error_id, "domain": domain, "category": category, "message": message}
        if parameter:
            err["parameters"] = [{"name": "filter", "value": parameter}]
        self.status = status
        self.body = {"errors": [err]}


def ebay_time(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_ebay_time(text: str) -> datetime:
    text = text.strip()
    if not text.endswith("Z"):
        raise ValueError(text)
    return datetime.fromisoformat(text[:-1] + "+00:00").astimezone(UTC)


def _s(x: Decimal) -> str:
    return format(x.quantize(Decimal("0.01")), "f")


def amount(value: Decimal, currency: str, home: Decimal | None = None) -> dict[str, str]:
    """eBay's Amount: in the seller's currency, with the buyer's original when converted."""
    if currency == SELLER_CURRENCY or home is None:
        return {"value": _s(value), "currency": currency}
    return {"value": _s(home), "currency": SELLER_CURRENCY, "convertedFromValue": _s(value),
            "convertedFromCurrency": currency}


def parse_filter(raw: str | None, domain: str) -> dict[str, Any]:
    """`name:[a..b]` ranges and `name:{x|y}` sets, comma separated -> {name: (a, b) | [values]}."""
    out: dict[str, Any] = {}
    if not raw:
        return out
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(raw):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(raw[start:i])
            start = i + 1
    parts.append(raw[start:])
    for part in parts:
        name, sep, value = part.strip().partition(":")
        if not sep or not value:
            raise _Problem(400, 30800 if domain == "API_FULFILLMENT" else 135002,
                           f"Invalid filter: {part!r}", domain, parameter=part)
        name = name.strip()
        if value.startswith("[") and value.endswith("]"):
            lo, dots, hi = value[1:-1].partition("..")
            if not dots:
                raise _Problem(400, 30810 if domain == "API_FULFILLMENT" else 135002,
                               f"Invalid date range in filter {name}", domain, parameter=part)
            try:
                out[name] = (parse_ebay_time(lo) if lo.strip() else None, parse_ebay_time(hi) if hi.strip() else None)
            except ValueError:
                raise _Problem(400, 30820 if domain == "API_FULFILLMENT" else 135002,
                               f"Invalid date format in filter {name}: use UTC ISO 8601 with 'Z'", domain,
                               parameter=part) from None
        elif value.startswith("{") and value.endswith("}"):
            out[name] = [v.strip() for v in value[1:-1].split("|") if v.strip()]
        else:
            raise _Problem(400, 30800 if domain == "API_FULFILLMENT" else 135002, f"Invalid filter: {part!r}",
                           domain, parameter=part)
    return out


def _rows(cur, sql: str, params: dict) -> list[dict]:
    res = cur.execute(sql, _used(sql, params))
    cols = [d[0] for d in res.description]
    return [dict(zip(cols, r)) for r in res.fetchall()]


def _used(sql: str, params: dict) -> dict:
    """DuckDB refuses named parameters the statement does not use."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


class EbayEmulator(Emulator):
    """The sandbox seller `curtains_sandbox_uk` (eBay UK and eBay US listings, GBP funds)."""

    name = "ebay"
    server_date_header = False  # the Date header is the sandbox clock

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None,
                 quotas: dict[str, int] | None = None) -> None:
        super().__init__(sandbox, config)
        seed = sandbox.state().seed
        self.client_id = f"CurtainS-finance-SBX-{hashlib.blake2b(f'ebay-id:{seed}'.encode(), digest_size=4).hexdigest()}"
        self.client_secret = f"SBX-{hashlib.blake2b(f'ebay-secret:{seed}'.encode(), digest_size=12).hexdigest()}"
        self.refresh_token = "v^1.1#i^1#r^1#" + hashlib.blake2b(f"ebay-refresh:{seed}".encode(), digest_size=24).hexdigest()
        self.quotas = {**QUOTAS, **(quotas or {})}
        scale = self.config.time_scale
        self.windows = {api: SlidingWindow(n, 86400, scale) for api, n in self.quotas.items()}
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (kind, expires at, monotonic)
        self._tokens_lock = threading.Lock()

    # ------------------------------------------------------------------ base hooks
    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token, "finances_base_url": self.base_url,
                "marketplace_id": "EBAY_GB"}

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return json_response(_Problem(429, 2001, "Too many requests. The request limit has been reached "
                                          "for the resource.", "ACCESS").body, 429)
        return json_response(_Problem(status, 10001, "System error. Please try again later.", "API_FULFILLMENT",
                                      "APPLICATION").body, status)

    def routes(self) -> list[Route]:
        return [
            Route("/identity/v1/oauth2/token", self.token, methods=["POST"]),
            Route("/sell/fulfillment/v1/order", self._api("fulfillment", self.get_orders)),
            Route("/sell/fulfillment/v1/order/{order_id}", self._api("fulfillment", self.get_order)),
            Route("/sell/finances/v1/transaction", self._api("finances", self.get_transactions)),
            Route("/sell/finances/v1/payout", self._api("finances", self.get_payouts)),
            Route("/sell/finances/v1/payout/{payout_id}", self._api("finances", self.get_payout)),
        ]

    def _date_header(self) -> dict[str, str]:
        return {"Date": format_datetime(self.sandbox.clock.astimezone(UTC), usegmt=True)}

    # ------------------------------------------------------------------ OAuth
    def _token_lifetime(self) -> float:
        """Real seconds: `time_scale` compresses rate limits, not token lifetimes (tests expire
        tokens with `expire_tokens`)."""
        return float(USER_TOKEN_LIFETIME_S)

    async def token(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if not auth.startswith("Basic ") or not hmac.compare_digest(auth[6:].strip().encode(), expected.encode()):
            return json_response({"error": "invalid_client", "error_description": "client authentication failed"}, 401)
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return json_response({"error": "invalid_request",
                                  "error_description": "request must be application/x-www-form-urlencoded"}, 400)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if not hmac.compare_digest(form.get("refresh_token", "").encode(), self.refresh_token.encode()):
                return json_response({"error": "invalid_grant",
                                      "error_description": "the provided authorization refresh token is invalid "
                                                           "or was issued to another client"}, 400)
            asked = set((form.get("scope") or " ".join(SCOPES)).split())
            if not asked <= set(SCOPES) | {"https://api.ebay.com/oauth/api_scope/sell.fulfillment"}:
                return json_response({"error": "invalid_scope", "error_description": "the requested scope is invalid, "
                                      "unknown, malformed, or exceeds the scope granted to the client"}, 400)
            kind, token_type = "user", "User Access Token"
        elif grant == "client_credentials":
            kind, token_type = "app", "Application Access Token"
        else:
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "grant type in request is not supported by the authorization server"}, 400)
        token = f"v^1.1#i^1#f^0#{'p' if kind == 'user' else 'a'}^3#I^3#t^{secrets.token_urlsafe(48)}"
        with self._tokens_lock:
            now = time.monotonic()
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (kind, now + self._token_lifetime())
        self.counters[f"tokens_{kind}"] += 1
        return json_response({"access_token": token, "expires_in": USER_TOKEN_LIFETIME_S, "token_type": token_type})

    def expire_tokens(self) -> None:
        """Tests: every access token issued so far has expired."""
        with self._tokens_lock:
            self._tokens.clear()

    def _check_token(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        with self._tokens_lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] <= time.monotonic():
            return json_response(_Problem(401, 1001, "Invalid access token. Check the value of the Authorization "
                                          "HTTP request header.", "OAuth", "REQUEST").body, 401)
        if entry[0] != "user":
            return json_response(_Problem(403, 1100, "Access denied. Insufficient permissions to fulfill the "
                                          "request.", "ACCESS", "REQUEST").body, 403)
        return None

    # ------------------------------------------------------------------ plumbing
    def _api(self, api: str, handler: Callable[[Request, datetime], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            denied = self._check_token(request)
            if denied is not None:
                return denied
            if self.config.enforce_rate_limits and self.windows[api].try_acquire() > 0:
                return self.refuse(json_response(_Problem(429, 2001, "Too many requests. The request limit has "
                                                          "been reached for the resource.", "ACCESS").body, 429,
                                                 headers=self._date_header()))
            clock = self.sandbox.clock
            try:
                response = handler(request, clock)
            except _Problem as problem:
                response = json_response(problem.body, problem.status)
            response.headers["Date"] = format_datetime(clock.astimezone(UTC), usegmt=True)
            return response

        return endpoint

    @staticmethod
    def _limit(request: Request, kind: str, domain: str) -> tuple[int, int]:
        default, most = LIMITS[kind]
        q = request.query_params
        try:
            limit = int(q.get("limit", default))
            offset = int(q.get("offset", 0))
        except ValueError:
            raise _Problem(400, 30700 if domain == "API_FULFILLMENT" else 135003,
                           "Invalid limit or offset", domain) from None
        if limit < 1 or limit > most or offset < 0:
            raise _Problem(400, 30700 if domain == "API_FULFILLMENT" else 135003,
                           f"limit must be between 1 and {most}, offset not negative", domain)
        return limit, offset

    def _page(self, request: Request, key: tuple, compute: Callable[[], list], limit: int, offset: int
              ) -> tuple[list, dict[str, Any]]:
        _, ids = self.pages.get(key, compute)
        page = list(ids[offset:offset + limit])
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        args = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

        def href(at: int) -> str:
            return f"{base}?{urlencode({**args, 'limit': limit, 'offset': at})}"

        meta: dict[str, Any] = {"href": href(offset), "limit": limit, "offset": offset, "total": len(ids)}
        if self.duplicate_page(request):
            meta["next"] = href(offset)  # the fault: the same page is served again
        elif offset + limit < len(ids):
            meta["next"] = href(offset + limit)
        if offset > 0:
            meta["prev"] = href(max(0, offset - limit))
        return page, meta

    # ------------------------------------------------------------------ Fulfillment
    _ORDER_STATE = """
        with o as (select * from ebay_orders where created_at <= $clock),
        r as (select order_id, max(created_at) as last_refund, count(*) as n from ebay_refunds
              where created_at <= $clock group by order_id)
        select o.order_id, o.created_at,
               greatest(o.paid_at, coalesce(case when o.fulfilled_at <= $clock then o.fulfilled_at end, o.paid_at),
                        coalesce(case when o.cancelled_at <= $clock then o.cancelled_at end, o.paid_at),
                        coalesce(r.last_refund, o.paid_at)) as last_modified
        from o left join r using (order_id)
    """

    def get_orders(self, request: Request, clock: datetime) -> Response:
        q = request.query_params
        limit, offset = self._limit(request, "order", "API_FULFILLMENT")
        if q.get("orderIds"):
            ids = [x.strip() for x in q["orderIds"].split(",") if x.strip()]
            if len(ids) > MAX_ORDER_IDS:
                raise _Problem(400, 30750, f"orderIds accepts at most {MAX_ORDER_IDS} ids")
            found = {r["order_id"]: r for r in _rows(self.db, self._ORDER_STATE + " where o.order_id in (select unnest($ids::varchar[]))",
                                                     {"clock": clock, "ids": ids})}
            page = [i for i in ids if i in found]
            orders = self._render_orders(page, clock)
            return json_response({"href": str(request.url), "limit": len(ids), "offset": 0, "total": len(orders),
                                  "orders": orders, "warnings": []})
        filters = parse_filter(q.get("filter"), "API_FULFILLMENT")
        unknown = set(filters) - {"creationdate", "lastmodifieddate", "orderfulfillmentstatus"}
        if unknown:
            raise _Problem(400, 30800, f"Invalid filter name: {sorted(unknown)[0]}")
        field = "creationdate" if "creationdate" in filters else "lastmodifieddate" if "lastmodifieddate" in filters else None
        where, params = ["TRUE"], {"clock": clock}
        if field:
            lo, hi = filters[field]
            if lo is None:
                raise _Problem(400, 30810, f"A start date is required in the {field} filter")
            if lo > clock or (hi is not None and hi > clock + timedelta(minutes=5)):
                raise _Problem(400, 30850, "Start date and end date can not be in the future")
            if lo < clock - ORDER_FILTER_REACH or (hi is not None and hi - lo > ORDER_FILTER_REACH):
                raise _Problem(400, 30830, "Start date must be within 90 days of end date and current date")
            column = "created_at" if field == "creationdate" else "last_modified"
            where.append(f"{column} >= $lo")
            params["lo"] = lo
            if hi is not None:
                where.append(f"{column} <= $hi")
                params["hi"] = hi
        else:  # without a filter: orders created in the last 90 days
            where.append("created_at >= $lo")
            params["lo"] = clock - ORDER_FILTER_REACH
        status = filters.get("orderfulfillmentstatus")
        if status is not None:
            fulfilled = "(select fulfilled_at from ebay_orders e where e.order_id = s.order_id) <= $clock"
            wants = set(status)
            if wants == {"NOT_STARTED", "IN_PROGRESS"}:
                where.append(f"not coalesce({fulfilled}, false)")
            elif wants == {"FULFILLED", "IN_PROGRESS"}:
                where.append(f"coalesce({fulfilled}, false)")
            else:
                raise _Problem(400, 30800, "orderfulfillmentstatus must be {NOT_STARTED|IN_PROGRESS} or {FULFILLED|IN_PROGRESS}")
        sql = f"select order_id from ({self._ORDER_STATE}) s where {' and '.join(where)} order by created_at desc, order_id"
        key = ("orders", q.get("filter", ""), clock.isoformat())
        page, meta = self._page(request, key, lambda: [r[0] for r in self.db.execute(sql, _used(sql, params)).fetchall()],
                                limit, offset)
        return json_response({**meta, "orders": self._render_orders(page, clock), "warnings": []})

    def get_order(self, request: Request, clock: datetime) -> Response:
        oid = request.path_params["order_id"]
        orders = self._render_orders([oid], clock)
        if not orders:
            raise _Problem(404, 32100, f"Order {oid} not found.")
        return json_response(orders[0])

    def _render_orders(self, ids: list[str], clock: datetime) -> list[dict]:
        if not ids:
            return []
        cur = self.db
        p = {"ids": ids, "clock": clock}
        orders = {r["order_id"]: r for r in _rows(cur, "select * from ebay_orders where order_id in (select unnest($ids::varchar[])) "
                                                  "and created_at <= $clock", p)}
        lines: dict[str, list[dict]] = {}
        for r in _rows(cur, "select * from ebay_order_lines where order_id in (select unnest($ids::varchar[])) "
                            "order by order_id, position", p):
            lines.setdefault(r["order_id"], []).append(r)
        refunds: dict[str, list[dict]] = {}
        for r in _rows(cur, "select * from ebay_refunds where order_id in (select unnest($ids::varchar[])) "
                            "and created_at <= $clock order by created_at", p):
            refunds.setdefault(r["order_id"], []).append(r)
        rlines: dict[str, list[dict]] = {}
        for r in _rows(cur, "select * from ebay_refund_lines where order_id in (select unnest($ids::varchar[])) "
                            "and created_at <= $clock order by created_at", p):
            rlines.setdefault(r["line_id"], []).append(r)
        return [self._render(orders[i], lines.get(i, []), refunds.get(i, []), rlines, clock) for i in ids if i in orders]

    def _render(self, o: dict, lines: list[dict], refunds: list[dict], rlines: dict, clock: datetime) -> dict:
        ccy = o["currency"]
        us = ccy != SELLER_CURRENCY
        fulfilled = o["fulfilled_at"] is not None and o["fulfilled_at"] <= clock
        cancelled = o["cancelled_at"] is not None and o["cancelled_at"] <= clock
        events = [o["paid_at"], *(r["created_at"] for r in refunds)]
        if fulfilled:
            events.append(o["fulfilled_at"])
        if cancelled:
            events.append(o["cancelled_at"])
        refunded = sum((r["total"] for r in refunds), Decimal(0))
        refunded_home = sum((r["total_home"] for r in refunds), Decimal(0))
        if refunded == 0:
            pay_status = "PAID"
        elif refunded >= o["buyer_total"]:
            pay_status = "FULLY_REFUNDED"
        else:
            pay_status = "PARTIALLY_REFUNDED"
        addr = {"countryCode": o["country"], **({"stateOrProvince": o["region"]} if o["region"] else {})}
        line_items = []
        subtotal = subtotal_h = discount = discount_h = tax = tax_h = Decimal(0)
        for l in lines:
            net, net_h = l["list_amount"] - l["discount"], l["list_amount_home"] - l["discount_home"]
            subtotal += l["list_amount"]
            subtotal_h += l["list_amount_home"]
            discount += l["discount"]
            discount_h += l["discount_home"]
            ship = o["shipping"] if l["position"] == 0 else Decimal(0)
            ship_h = o["shipping_home"] if l["position"] == 0 else Decimal(0)
            item: dict[str, Any] = {
                "lineItemId": l["line_id"], "legacyItemId": str(3_000_000_000_00 + int(l["line_id"][-9:])),
                "sku": l["sku"], "title": l["title"], "quantity": l["quantity"],
                "lineItemCost": amount(l["list_amount"], ccy, l["list_amount_home"]),
                "discountedLineItemCost": amount(net, ccy, net_h),
                "deliveryCost": {"shippingCost": amount(ship, ccy, ship_h)},
                "appliedPromotions": ([{"promotionId": f"{o['marketplace']}-PROMO-10",
                                        "description": "10% off curtains and fabric",
                                        "discountAmount": amount(l["discount"], ccy, l["discount_home"])}]
                                      if l["discount"] else []),
                "taxes": [], "ebayCollectAndRemitTaxes": [],
                "soldFormat": "FIXED_PRICE", "listingMarketplaceId": o["marketplace"],
                "purchaseMarketplaceId": o["marketplace"],
                "lineItemFulfillmentStatus": "FULFILLED" if fulfilled else "NOT_STARTED",
                "refunds": [{"refundId": r["refund_id"], "refundDate": ebay_time(r["created_at"]),
                             "amount": amount(r["amount"], ccy, r["amount_home"])}
                            for r in rlines.get(l["line_id"], [])],
                "properties": {"buyerProtection": True, "soldViaAdCampaign": False},
            }
            if us:
                item["ebayCollectAndRemitTaxes"] = [{"taxType": "STATE_SALES_TAX", "collectionMethod": "NET",
                                                     "amount": amount(l["tax"], ccy, l["tax_home"])}]
                tax += l["tax"]
                tax_h += l["tax_home"]
                item["total"] = amount(net + ship + l["tax"], ccy, net_h + ship_h + l["tax_home"])
            else:
                item["total"] = amount(net + ship, ccy, net_h + ship_h)
            line_items.append(item)
        pricing: dict[str, Any] = {
            "priceSubtotal": amount(subtotal, ccy, subtotal_h),
            "deliveryCost": amount(o["shipping"], ccy, o["shipping_home"]),
            "tax": amount(tax, ccy, tax_h),
            "total": amount(o["buyer_total"], ccy, o["buyer_total_home"]),
        }
        if discount:
            pricing["priceDiscount"] = amount(-discount, ccy, -discount_h)
        due = o["seller_total"] - (refunded - sum((r["marketplace_tax"] for r in refunds), Decimal(0)))
        due_h = (o["buyer_total_home"] - o["marketplace_tax_home"]
                 - (refunded_home - sum((r["marketplace_tax_home"] for r in refunds), Decimal(0))))
        return {
            "orderId": o["order_id"], "legacyOrderId": o["legacy_order_id"],
            "creationDate": ebay_time(o["created_at"]), "lastModifiedDate": ebay_time(max(events)),
            "orderFulfillmentStatus": "FULFILLED" if fulfilled else "NOT_STARTED",
            "orderPaymentStatus": pay_status, "sellerId": SELLER_ID,
            "buyer": {"username": o["buyer_username"], "taxAddress": addr,
                      "buyerRegistrationAddress": {"fullName": o["full_name"], "email": o["email"],
                                                   "contactAddress": addr}},
            "pricingSummary": pricing,
            "cancelStatus": {"cancelState": "CANCELED" if cancelled else "NONE_REQUESTED", "cancelRequests": [],
                             **({"cancelledDate": ebay_time(o["cancelled_at"])} if cancelled else {})},
            "paymentSummary": {
                "totalDueSeller": amount(due, ccy, due_h),
                "payments": [{"paymentMethod": "EBAY", "paymentReferenceId": o["payment_ref"],
                              "paymentDate": ebay_time(o["paid_at"]), "paymentStatus": "PAID",
                              "amount": amount(o["buyer_total"], ccy, o["buyer_total_home"])}],
                "refunds": [{"refundId": r["refund_id"], "refundDate": ebay_time(r["created_at"]),
                             "refundStatus": "REFUNDED", "refundReferenceId": f"R{r['refund_id']}",
                             "amount": amount(r["total"], ccy, r["total_home"])} for r in refunds],
            },
            "fulfillmentStartInstructions": [{"fulfillmentInstructionsType": "SHIP_TO",
                                              "shippingStep": {"shipTo": {"fullName": o["full_name"],
                                                                          "contactAddress": addr}}}],
            "lineItems": line_items,
            "totalFeeBasisAmount": amount(o["buyer_total"], ccy, o["buyer_total_home"]),
            "totalMarketplaceFee": amount(o["fee"], ccy, o["fee_home"]),
            "salesRecordReference": str(int(o["payment_ref"]) % 100000),
        }

    # ------------------------------------------------------------------ Finances
    _TXN_STATE = """
        select t.*, p.payout_at
        from ebay_transactions t left join ebay_payouts p on p.payout_id = t.payout_id
        where t.created_at <= $clock
    """

    def get_transactions(self, request: Request, clock: datetime) -> Response:
        q = request.query_params
        limit, offset = self._limit(request, "transaction", "API_FINANCES")
        filters = parse_filter(q.get("filter"), "API_FINANCES")
        unknown = set(filters) - {"transactionDate", "transactionType", "transactionStatus", "payoutId", "orderId",
                                  "transactionId"}
        if unknown:
            raise _Problem(400, 135002, f"Invalid filter: {sorted(unknown)[0]}", "API_FINANCES")
        where, params = ["TRUE"], {"clock": clock}
        if "transactionDate" in filters:
            lo, hi = filters["transactionDate"]
            if lo is None or hi is None or hi - lo > FINANCES_MAX_RANGE or hi < lo:
                raise _Problem(400, 135002, "transactionDate needs a start and an end at most 36 months apart",
                               "API_FINANCES")
            where.append("created_at between $lo and $hi")
            params.update(lo=lo, hi=hi)
        if "transactionId" in filters and "transactionType" not in filters:
            raise _Problem(400, 135002, "The transactionId filter requires the transactionType filter", "API_FINANCES")
        for name, column in (("transactionType", "txn_type"), ("payoutId", "payout_id"), ("orderId", "order_id"),
                             ("transactionId", "txn_id")):
            if name in filters:
                where.append(f"{column} in (select unnest(${name}::varchar[]))")
                params[name] = filters[name]
        status = filters.get("transactionStatus")
        sort = q.get("sort", "transactionDate")
        if sort not in ("transactionDate", "-transactionDate"):
            raise _Problem(400, 135004, "sort must be transactionDate or -transactionDate", "API_FINANCES")
        order = "desc" if sort.startswith("-") else "asc"
        sql = (f"select * from ({self._TXN_STATE}) s where {' and '.join(where)} "
               f"order by created_at {order}, txn_id, txn_type")

        def compute() -> list:
            rows = [self._render_txn(r, clock) for r in _rows(self.db, sql, params)]
            return [r for r in rows if status is None or r["transactionStatus"] in status]

        key = ("transactions", q.get("filter", ""), sort, clock.isoformat())
        page, meta = self._page(request, key, compute, limit, offset)
        if not meta["total"]:
            return Response(status_code=204)
        return json_response({**meta, "transactions": page})

    @staticmethod
    def _render_txn(t: dict, clock: datetime) -> dict:
        paid = t["payout_at"] is not None and t["payout_at"] <= clock
        if paid:
            status = "PAYOUT"
        elif t["available_at"] <= clock:
            status = "FUNDS_AVAILABLE_FOR_PAYOUT"
        else:
            status = "FUNDS_PROCESSING"
        conv = t["orig_currency"] != SELLER_CURRENCY

        def money(value: Decimal, orig: Decimal) -> dict:
            out = {"value": _s(abs(value)), "currency": SELLER_CURRENCY}
            if conv:
                out.update(convertedFromValue=_s(abs(orig)), convertedFromCurrency=t["orig_currency"],
                           exchangeRate=format(t["exchange_rate"], "f"))
            return out

        row: dict[str, Any] = {
            "transactionId": t["txn_id"], "transactionType": t["txn_type"], "transactionStatus": status,
            "transactionDate": ebay_time(t["created_at"]), "bookingEntry": t["booking_entry"],
            "amount": money(t["net"], t["orig_gross"] - t["orig_fee"]),
            "totalFeeAmount": money(t["fee"], t["orig_fee"]),
            "payoutId": t["payout_id"] if paid else None,
            "transactionMemo": t["memo"],
        }
        if t["txn_type"] == "SALE":
            row["orderId"] = t["order_id"]
            row["totalFeeBasisAmount"] = {"value": _s(t["fee_basis"]), "currency": t["orig_currency"]}
            row["salesRecordReference"] = None
        elif t["txn_type"] == "REFUND":
            row["orderId"] = t["order_id"]
            row["references"] = [{"referenceId": t["order_id"], "referenceType": "ORDER_ID"}]
        else:
            row["feeType"] = t["fee_type"]
        return {k: v for k, v in row.items() if v is not None}

    def get_payouts(self, request: Request, clock: datetime) -> Response:
        q = request.query_params
        limit, offset = self._limit(request, "payout", "API_FINANCES")
        filters = parse_filter(q.get("filter"), "API_FINANCES")
        unknown = set(filters) - {"payoutDate", "payoutStatus", "lastAttemptedPayoutDate"}
        if unknown:
            raise _Problem(400, 135002, f"Invalid filter: {sorted(unknown)[0]}", "API_FINANCES")
        where, params = ["payout_at <= $clock"], {"clock": clock}
        if "payoutDate" in filters:
            lo, hi = filters["payoutDate"]
            if lo is not None:
                where.append("payout_at >= $lo")
                params["lo"] = lo
            if hi is not None:
                where.append("payout_at <= $hi")
                params["hi"] = hi
        sort = q.get("sort", "payoutDate")
        if sort not in ("payoutDate", "-payoutDate", "lastAttemptedPayoutDate"):
            raise _Problem(400, 135004, "invalid sort", "API_FINANCES")
        order = "desc" if sort.startswith("-") else "asc"
        status = filters.get("payoutStatus")
        sql = f"select * from ebay_payouts where {' and '.join(where)} order by payout_at {order}"

        def compute() -> list:
            rows = [self._render_payout(r, clock) for r in _rows(self.db, sql, params)]
            return [r for r in rows if status is None or r["payoutStatus"] in status]

        key = ("payouts", q.get("filter", ""), sort, clock.isoformat())
        page, meta = self._page(request, key, compute, limit, offset)
        return json_response({**meta, "payouts": page})

    def get_payout(self, request: Request, clock: datetime) -> Response:
        rows = _rows(self.db, "select * from ebay_payouts where payout_id = $id and payout_at <= $clock",
                     {"id": request.path_params["payout_id"], "clock": clock})
        if not rows:
            raise _Problem(404, 135001, "Payout not found", "API_FINANCES")
        return json_response(self._render_payout(rows[0], clock))

    @staticmethod
    def _render_payout(p: dict, clock: datetime) -> dict:
        done = p["succeeded_at"] <= clock
        return {
            "payoutId": p["payout_id"], "payoutStatus": "SUCCEEDED" if done else "INITIATED",
            "payoutStatusDescription": "Funds sent" if done else "Funds on the way",
            "amount": {"value": _s(p["amount"]), "currency": p["currency"]},
            "payoutDate": ebay_time(p["payout_at"]), "lastAttemptedPayoutDate": ebay_time(p["payout_at"]),
            "transactionCount": p["transaction_count"],
            "payoutInstrument": {"instrumentType": "BANK", "nickname": "Business current account",
                                 "accountLastFourDigits": "4821"},
            "bankReference": p["bank_reference"],
        }
