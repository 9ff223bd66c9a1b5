"""Amazon Selling Partner API, served from the sandbox world as of the sandbox clock.

Paths are SP-API's own; one port serves them all, plus Login with Amazon's token endpoint
(`POST /auth/o2/token`, which in production lives on api.amazon.com).

- **Time.**  Amazon refuses to show anything newer than two minutes before the request
  (`LastUpdatedBefore`, `PostedBefore`, `FinancialEventGroupStartedBefore` must be at least two
  minutes old), so the emulator renders the world as of `clock - 2 min`.  An order exists once
  placed, is UNSHIPPED until Amazon ships it, SHIPPED or CANCELLED after; refunds do not change
  the order (they live in the Finances API).  Financial events exist once posted; a group is
  `Open` until its end, `Closed` after, with `FundTransferStatus` Processing then Succeeded.
- **Orders v2026-01-01** `GET /orders/2026-01-01/orders` (searchOrders): exactly one of
  `createdAfter` / `lastUpdatedAfter`, optional `…Before`, `marketplaceIds`, `fulfillmentStatuses`,
  `maxResultsPerPage` 1-100 (default 100), `paginationToken` (the other arguments must be
  repeated unchanged), `includedData`.  No `payload` wrapper; money `{"amount": "12.00",
  "currencyCode": "GBP"}` with the amount as a decimal string.  `GET …/orders/{orderId}`.
- **Orders v0** (deprecated): `GET /orders/v0/orders` (`MarketplaceIds` required,
  `CreatedAfter` / `LastUpdatedAfter`, `NextToken`), `GET /orders/v0/orders/{orderId}`,
  `GET /orders/v0/orders/{orderId}/orderItems`, all wrapped in `payload`; money
  `{"CurrencyCode", "Amount"}` with a string amount.
- **Finances v0**: `GET /finances/v0/financialEventGroups` (`FinancialEventGroupStartedAfter`
  inclusive / `…Before` exclusive, at most 180 days apart, `MaxResultsPerPage` 1-100 default 10,
  `NextToken`) and `GET /finances/v0/financialEventGroups/{eventGroupId}/financialEvents`
  (`MaxResultsPerPage` default 100, counted in events).  Money `{"CurrencyCode",
  "CurrencyAmount"}` with the amount as a JSON number.
- **Auth**: `x-amz-access-token` must carry a live LWA access token (3600 s); otherwise 403
  `Unauthorized`.  The token endpoint takes `grant_type=refresh_token` with the app's client id,
  secret and the seller's refresh token.
- **Rate limits**: one token bucket per operation at the documented rate and burst, scaled by
  `time_scale`; `x-amzn-RateLimit-Limit` on every answer; over the limit: 429 `QuotaExceeded`.
- **Faults** (base class): 429, 5xx, timeouts, truncated bodies, `duplicate_page` (the page starts
  half a page early, so a client sees some records twice).

Test hooks: `corruptions[order_id] = {field: value}` overrides fields of a v2026 order on the wire;
`token_lifetime_s` shortens access tokens.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.platforms.amazon import (ACCESS_TOKEN_LIFETIME_S, MARKETPLACE_BY_ID, MARKETPLACES, RATE_LIMITS,
                                               VISIBLE_DELAY_S)
from finance_pipeline.platforms.amazon.oracle import settlements
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
log = logging.getLogger("finance_pipeline.sandbox.amazon")
MAX_RANGE = timedelta(days=180)
STATUS_2026 = {"Unshipped": "UNSHIPPED", "Shipped": "SHIPPED", "Canceled": "CANCELLED"}
EVENT_LISTS = {"ShipmentEvent": "ShipmentEventList", "RefundEvent": "RefundEventList",
               "ServiceFeeEvent": "ServiceFeeEventList"}


class SpApiError(Exception):
    """An answer with SP-API's error body: {"errors": [{"code", "message", "details"}]}."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self, headers: dict[str, str]) -> Response:
        return json_response({"errors": [{"code": self.code, "message": self.message, "details": self.details}]},
                             self.status, headers)


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        at = datetime.fromisoformat(text)
    except ValueError:
        raise SpApiError(400, "InvalidInput", f"{name} is not a valid ISO 8601 date-time: {value}") from None
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def money26(amount: Decimal, currency: str) -> dict:
    return {"amount": f"{amount:.2f}", "currencyCode": currency}


def money_v0(amount: Decimal, currency: str) -> dict:
    return {"CurrencyCode": currency, "Amount": f"{amount:.2f}"}


def currency_fin(amount: Decimal, currency: str) -> dict:
    return {"CurrencyCode": currency, "CurrencyAmount": amount}  # a JSON number with exact digits


class AmazonEmulator(Emulator):
    name = "amazon"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.client_id = "amzn1.application-oa2-client.sandbox0000000000000000000001"
        self.client_secret = "amzn1.oa2-cs.v1.sandbox-" + "5" * 40
        self.refresh_token = "Atzr|sandbox-refresh-" + "7" * 32
        self.token_lifetime_s = ACCESS_TOKEN_LIFETIME_S
        self._tokens: dict[str, float] = {}
        self._token_lock = threading.Lock()
        self.buckets = {op: TokenBucket(rate, burst, time_scale=self.config.time_scale)
                        for op, (rate, burst) in RATE_LIMITS.items()}
        self.corruptions: dict[str, dict[str, Any]] = {}

    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token, "token_url": f"{self.base_url}/auth/o2/token",
                "marketplace_ids": ",".join(m[0] for m in MARKETPLACES.values())}

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return SpApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.") \
                .response(self._headers())
        return SpApiError(status, "InternalFailure", "We encountered an internal error. Please try again.") \
            .response(self._headers())

    def faults_apply(self, method: str, path: str) -> bool:
        return path != "/auth/o2/token"

    @staticmethod
    def _headers(op: str | None = None) -> dict[str, str]:
        hdrs = {"x-amzn-RequestId": str(uuid.uuid4())}
        if op:
            hdrs["x-amzn-RateLimit-Limit"] = f"{RATE_LIMITS[op][0]:g}"
        return hdrs

    def visible(self) -> datetime:
        return self.sandbox.clock - timedelta(seconds=VISIBLE_DELAY_S)

    # -- routing ---------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        e = self._endpoint
        return [
            Route("/auth/o2/token", self.token, methods=["POST"]),
            Route("/orders/2026-01-01/orders", e("searchOrders", self.search_orders)),
            Route("/orders/2026-01-01/orders/{orderId}", e("getOrder2026", self.get_order_2026)),
            Route("/orders/v0/orders", e("getOrders", self.get_orders_v0)),
            Route("/orders/v0/orders/{orderId}", e("getOrder", self.get_order_v0)),
            Route("/orders/v0/orders/{orderId}/orderItems", e("getOrderItems", self.get_order_items_v0)),
            Route("/finances/v0/financialEventGroups", e("listFinancialEventGroups", self.list_groups)),
            Route("/finances/v0/financialEventGroups/{eventGroupId}/financialEvents",
                  e("listFinancialEventsByGroupId", self.list_group_events)),
        ]

    def _endpoint(self, op: str, handler: Callable[[Request, dict], Any]):
        async def endpoint(request: Request) -> Response:
            token = request.headers.get("x-amz-access-token")
            with self._token_lock:
                expires = self._tokens.get(token or "")
            if expires is None:
                return SpApiError(403, "Unauthorized", "Access to requested resource is denied.",
                                  "").response(self._headers())
            if expires <= time.monotonic():
                return SpApiError(403, "Unauthorized", "Access to requested resource is denied.",
                                  "The access token you provided has expired.").response(self._headers())
            if self.config.enforce_rate_limits and self.buckets[op].try_acquire() > 0:
                return self.refuse(SpApiError(429, "QuotaExceeded",
                                              "You exceeded your quota for the requested resource.")
                                   .response(self._headers(op)))
            params: dict[str, list[str]] = {}
            for k, v in parse_qsl(request.url.query, keep_blank_values=True):
                params.setdefault(k, []).append(v)
            try:
                body = await run_in_threadpool(handler, request, params)
            except SpApiError as err:
                return err.response(self._headers(op))
            except Exception:  # an emulator bug: answer as Amazon would, keep the trace in the log
                log.exception("amazon emulator failed on %s", request.url.path)
                return SpApiError(500, "InternalFailure", "We encountered an internal error.").response(self._headers(op))
            return json_response(body, 200, self._headers(op))
        return endpoint

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "The authorization grant type is not supported"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client",
                                  "error_description": "Client authentication failed"}, 401)
        if form.get("refresh_token") != self.refresh_token:
            return json_response({"error": "invalid_grant",
                                  "error_description": "The request has an invalid grant parameter : refresh_token"},
                                 400)
        access = "Atza|" + secrets.token_urlsafe(48)
        with self._token_lock:
            self._tokens[access] = time.monotonic() + self.token_lifetime_s
        self.counters["tokens_issued"] += 1
        return json_response({"access_token": access, "refresh_token": self.refresh_token,
                              "token_type": "bearer", "expires_in": self.token_lifetime_s})

    def expire_tokens(self) -> None:
        """Test hook: every access token issued so far expires now."""
        with self._token_lock:
            self._tokens = {k: 0.0 for k in self._tokens}

    # -- parameters ------------------------------------------------------------------------
    @staticmethod
    def _one(params: dict, name: str) -> str | None:
        values = params.get(name)
        return values[-1] if values else None

    @staticmethod
    def _list(params: dict, name: str) -> list[str]:
        out: list[str] = []
        for v in params.get(name, []):
            out.extend(x for x in v.split(",") if x)
        return out

    def _page_size(self, params: dict, name: str, default: int) -> int:
        raw = self._one(params, name)
        if raw is None:
            return default
        try:
            size = int(raw)
        except ValueError:
            raise SpApiError(400, "InvalidInput", f"{name} must be an integer") from None
        if not 1 <= size <= 100:
            raise SpApiError(400, "InvalidInput", f"{name} must be between 1 and 100")
        return size

    def _window(self, params: dict, names: dict[str, str]) -> tuple[str, datetime, datetime]:
        """(family, after, before) from created*/lastUpdated* parameters (`names` maps roles to
        the version's spelling); before defaults to, and may not pass, clock - 2 min."""
        visible = self.visible()
        created_after = parse_time(self._one(params, names["created_after"]), names["created_after"])
        updated_after = parse_time(self._one(params, names["updated_after"]), names["updated_after"])
        if (created_after is None) == (updated_after is None):
            raise SpApiError(400, "InvalidInput",
                             f"Exactly one of {names['created_after']} and {names['updated_after']} must be specified")
        family = "created" if created_after is not None else "updated"
        before_name = names[f"{family}_before"]
        other = names["updated_before" if family == "created" else "created_before"]
        if self._one(params, other):
            raise SpApiError(400, "InvalidInput", f"{other} cannot be combined with {names[family + '_after']}")
        before = parse_time(self._one(params, before_name), before_name) or visible
        if before > visible:
            raise SpApiError(400, "InvalidInput", f"{before_name} must be at least two minutes before the request")
        after = created_after or updated_after
        if after > before:
            raise SpApiError(400, "InvalidInput", f"{names[family + '_after']} must be before {before_name}")
        return family, after, before  # type: ignore[return-value]

    # -- orders --------------------------------------------------------------------------------
    _STATE_SQL = """
        with o as (
            select *,
                case when cancelled_at <= $at then 'Canceled' when shipped_at <= $at then 'Shipped'
                     else 'Unshipped' end as status,
                greatest(purchase_at, case when shipped_at <= $at then shipped_at end,
                         case when cancelled_at <= $at then cancelled_at end) as last_updated_at
            from amazon_orders
            where purchase_at <= $at
        )
    """

    def _order_ids(self, family: str, after: datetime, before: datetime, marketplaces: list[str],
                   statuses: list[str]) -> list[str]:
        col = "purchase_at" if family == "created" else "last_updated_at"
        sql = self._STATE_SQL + f"select order_id from o where {col} >= $after and {col} <= $before"
        args: dict[str, Any] = {"at": before, "after": after, "before": before}
        if marketplaces:
            sql += " and marketplace_id in (select unnest($mkts))"
            args["mkts"] = marketplaces
        if statuses:
            sql += " and status in (select unnest($statuses))"
            args["statuses"] = statuses
        sql += f" order by {col}, order_id"
        return [r[0] for r in self.db.execute(sql, args).fetchall()]

    def _orders(self, ids: list[str], at: datetime) -> list[dict]:
        if not ids:
            return []
        sql = self._STATE_SQL + "select * from o where order_id in (select unnest($ids))"
        cur = self.db.execute(sql, {"at": at, "ids": ids})
        cols = [d[0] for d in cur.description]
        orders = {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
        cur = self.db.execute("select * from amazon_order_items where order_id in (select unnest($ids)) "
                              "order by order_id, position", {"ids": ids})
        cols = [d[0] for d in cur.description]
        for row in cur.fetchall():
            item = dict(zip(cols, row))
            orders[item["order_id"]].setdefault("items", []).append(item)
        return [orders[i] for i in ids if i in orders]

    def _paged(self, params: dict, token_name: str, key: tuple, compute: Callable[[], list], size: int,
               dup: bool = False) -> tuple[list, str | None]:
        token = self._one(params, token_name)
        if token:
            try:
                parsed = self.pages.parse_token(token)
            except Exception:
                raise SpApiError(400, "InvalidInput", f"Invalid {token_name}") from None
            cached = self.pages.lookup(parsed["k"])
            if cached is None or parsed.get("q") != list(map(str, key)):
                raise SpApiError(400, "InvalidInput", f"{token_name} is expired or does not match the request")
            cache_key, rows, offset = parsed["k"], cached, int(parsed["o"])
        else:
            cache_key, rows = self.pages.get(key, compute)
            offset = 0
        start = offset
        if token and dup:
            start = max(0, offset - size // 2)
        page = rows[start:offset + size]
        nxt = self.pages.token(cache_key, offset + size, {"q": list(map(str, key))}) \
            if offset + size < len(rows) else None
        return page, nxt

    def _orders_query(self, params: dict, names: dict[str, str], status_map: dict[str, str] | None,
                      token_name: str, size_name: str, dup: bool) -> tuple[list[dict], str | None, str, datetime]:
        family, after, before = self._window(params, names)
        mkts = self._list(params, names["marketplaces"])
        unknown = [m for m in mkts if m not in MARKETPLACE_BY_ID]
        if unknown:
            raise SpApiError(400, "InvalidInput", f"Invalid {names['marketplaces']}: {', '.join(unknown)}")
        statuses = self._list(params, names["statuses"])
        if status_map is not None:
            back = {v: k for k, v in status_map.items()}
            statuses = [back.get(s, s) for s in statuses]
        size = self._page_size(params, size_name, 100)
        key = ("orders", family, iso(after), iso(before), tuple(mkts), tuple(statuses), self.sandbox.clock.isoformat())
        ids, nxt = self._paged(params, token_name, key,
                               lambda: self._order_ids(family, after, before, mkts, statuses), size, dup)
        return self._orders(ids, before), nxt, family, before

    NAMES_2026 = {"created_after": "createdAfter", "created_before": "createdBefore",
                  "updated_after": "lastUpdatedAfter", "updated_before": "lastUpdatedBefore",
                  "marketplaces": "marketplaceIds", "statuses": "fulfillmentStatuses"}
    NAMES_V0 = {"created_after": "CreatedAfter", "created_before": "CreatedBefore",
                "updated_after": "LastUpdatedAfter", "updated_before": "LastUpdatedBefore",
                "marketplaces": "MarketplaceIds", "statuses": "OrderStatuses"}

    def search_orders(self, request: Request, params: dict) -> dict:
        included = set(self._list(params, "includedData"))
        orders, nxt, family, before = self._orders_query(params, self.NAMES_2026, STATUS_2026, "paginationToken",
                                                         "maxResultsPerPage", self.duplicate_page(request))
        body: dict[str, Any] = {"orders": [self.render_2026(o, included) for o in orders]}
        if nxt:
            body["pagination"] = {"nextToken": nxt}
        body["lastUpdatedBefore" if family == "updated" else "createdBefore"] = iso(before)
        return body

    def get_order_2026(self, request: Request, params: dict) -> dict:
        included = set(self._list(params, "includedData"))
        orders = self._orders([request.path_params["orderId"]], self.visible())
        if not orders:
            raise SpApiError(404, "NotFound", "The requested order was not found.")
        return {"order": self.render_2026(orders[0], included)}

    def render_2026(self, o: dict, included: set[str]) -> dict:
        mkt_id, mkt_name, ccy, _ = MARKETPLACES[o["marketplace"]]
        items = []
        grand_item = grand_tax = Decimal("0.00")
        for it in o.get("items", []):
            ex_tax = it["item_price"] - it["item_tax"] if o["taxes_included"] else it["item_price"]
            grand_item += ex_tax
            grand_tax += it["item_tax"]
            item: dict[str, Any] = {
                "orderItemId": it["order_item_id"], "quantityOrdered": it["quantity"],
                "product": {"asin": "B0" + it["sku"].replace("-", "")[:8].upper().ljust(8, "X"), "title": it["title"],
                            "sellerSku": it["sku"], "condition": {"conditionType": "NEW"},
                            "price": {"unitPrice": money26(it["unit_price"], ccy)}},
                "proceeds": {"proceedsTotal": money26(ex_tax + it["item_tax"], ccy),
                             "breakdowns": [{"type": "ITEM", "subtotal": money26(ex_tax, ccy)},
                                            {"type": "TAX", "subtotal": money26(it["item_tax"], ccy)}]},
                "fulfillment": {"quantityFulfilled": it["quantity"] if o["status"] == "Shipped" else 0,
                                "quantityUnfulfilled": 0 if o["status"] == "Shipped" else it["quantity"]},
            }
            if it["marketplace_facilitator"]:
                item["tax"] = {"taxCollections": [{"model": "MARKETPLACE_FACILITATOR",
                                                   "responsibleParty": "AMAZON_SERVICES"}]}
            if "PROCEEDS" not in included:
                item.pop("proceeds")
            items.append(item)
        order: dict[str, Any] = {
            "orderId": o["order_id"], "createdTime": iso(o["purchase_at"]), "lastUpdatedTime": iso(o["last_updated_at"]),
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": mkt_id, "marketplaceName": mkt_name},
            "fulfillment": {"fulfillmentStatus": STATUS_2026[o["status"]], "fulfilledBy": "AMAZON",
                            "fulfillmentServiceLevel": "STANDARD"},
            "orderItems": items,
        }
        if "BUYER" in included:
            order["buyer"] = {"buyerEmail": o["buyer_email"]}
        if "RECIPIENT" in included:
            order["recipient"] = {"deliveryAddress": {"stateOrRegion": o["region"], "countryCode": o["country"]}}
        if "PROCEEDS" in included:
            order["proceeds"] = {"grandTotal": money26(grand_item + grand_tax, ccy),
                                 "breakdowns": [{"type": "ITEM", "subtotal": money26(grand_item, ccy)},
                                                {"type": "TAX", "subtotal": money26(grand_tax, ccy)}]}
        if "CANCELLATION" in included and o["status"] == "Canceled":
            order["cancellation"] = {"cancelledTime": iso(o["cancelled_at"]), "cancellationReason": "BUYER_CANCELLED"}
        order.update(self.corruptions.get(o["order_id"], {}))
        return order

    def get_orders_v0(self, request: Request, params: dict) -> dict:
        if not self._list(params, "MarketplaceIds"):
            raise SpApiError(400, "InvalidInput", "MarketplaceIds is required")
        orders, nxt, family, before = self._orders_query(params, self.NAMES_V0, None, "NextToken",
                                                         "MaxResultsPerPage", self.duplicate_page(request))
        payload: dict[str, Any] = {"Orders": [self.render_v0(o) for o in orders]}
        if nxt:
            payload["NextToken"] = nxt
        payload["LastUpdatedBefore" if family == "updated" else "CreatedBefore"] = iso(before)
        return {"payload": payload}

    def get_order_v0(self, request: Request, params: dict) -> dict:
        orders = self._orders([request.path_params["orderId"]], self.visible())
        if not orders:
            raise SpApiError(404, "NotFound", "Invalid AmazonOrderId")
        return {"payload": self.render_v0(orders[0])}

    def render_v0(self, o: dict) -> dict:
        mkt_id, mkt_name, ccy, _ = MARKETPLACES[o["marketplace"]]
        items = o.get("items", [])
        total = sum((it["item_price"] + (Decimal(0) if o["taxes_included"] else it["item_tax"]) for it in items),
                    Decimal("0.00"))
        units = sum(it["quantity"] for it in items)
        shipped = o["status"] == "Shipped"
        out = {
            "AmazonOrderId": o["order_id"], "PurchaseDate": iso(o["purchase_at"]),
            "LastUpdateDate": iso(o["last_updated_at"]), "OrderStatus": o["status"], "FulfillmentChannel": "AFN",
            "SalesChannel": mkt_name, "ShipServiceLevel": "Std UK Dom_1" if o["marketplace"] == "UK" else "Std US D2D Dom",
            "NumberOfItemsShipped": units if shipped else 0, "NumberOfItemsUnshipped": 0 if shipped else units,
            "PaymentMethod": "Other", "MarketplaceId": mkt_id, "OrderType": "StandardOrder",
            "IsBusinessOrder": False, "IsPrime": True,
            "BuyerInfo": {"BuyerEmail": o["buyer_email"]},
            "ShippingAddress": {"StateOrRegion": o["region"], "CountryCode": o["country"]},
        }
        if o["status"] != "Canceled":
            out["OrderTotal"] = money_v0(total, ccy)
        return out

    def get_order_items_v0(self, request: Request, params: dict) -> dict:
        orders = self._orders([request.path_params["orderId"]], self.visible())
        if not orders:
            raise SpApiError(404, "NotFound", "Invalid AmazonOrderId")
        o = orders[0]
        ccy = o["currency"]
        items = []
        for it in o.get("items", []):
            item = {
                "ASIN": "B0" + it["sku"].replace("-", "")[:8].upper().ljust(8, "X"), "SellerSKU": it["sku"],
                "OrderItemId": it["order_item_id"], "Title": it["title"], "QuantityOrdered": it["quantity"],
                "QuantityShipped": it["quantity"] if o["status"] == "Shipped" else 0,
                "ItemPrice": money_v0(it["item_price"], ccy), "ItemTax": money_v0(it["item_tax"], ccy),
                "PromotionDiscount": money_v0(Decimal("0.00"), ccy),
                "PromotionDiscountTax": money_v0(Decimal("0.00"), ccy),
            }
            if it["marketplace_facilitator"]:
                item["TaxCollection"] = {"Model": "MarketplaceFacilitator", "ResponsibleParty": "Amazon Services, Inc."}
            items.append(item)
        return {"payload": {"AmazonOrderId": o["order_id"], "OrderItems": items}}

    # -- finances ------------------------------------------------------------------------------
    def list_groups(self, request: Request, params: dict) -> dict:
        visible = self.visible()
        after = parse_time(self._one(params, "FinancialEventGroupStartedAfter"), "FinancialEventGroupStartedAfter")
        before = parse_time(self._one(params, "FinancialEventGroupStartedBefore"), "FinancialEventGroupStartedBefore")
        if after is not None and after > visible:
            raise SpApiError(400, "InvalidInput",
                             "FinancialEventGroupStartedAfter must be at least two minutes before the request")
        if before is not None and before > visible:
            raise SpApiError(400, "InvalidInput",
                             "FinancialEventGroupStartedBefore must be at least two minutes before the request")
        size = self._page_size(params, "MaxResultsPerPage", 10)
        key = ("groups", iso(after), iso(before), self.sandbox.clock.isoformat())

        def compute() -> list:
            if after is not None and before is not None and before - after > MAX_RANGE:
                return []  # Amazon answers an empty list when the range exceeds 180 days
            groups, _ = settlements(self.db, visible)
            out = []
            for g in sorted(groups, key=lambda g: (g["start_at"], g["group_id"])):
                if after is not None and g["start_at"] < after:
                    continue
                if before is not None and g["start_at"] >= before:
                    continue
                out.append(self.render_group(g, visible))
            return out

        page, nxt = self._paged(params, "NextToken", key, compute, size, self.duplicate_page(request))
        payload: dict[str, Any] = {"FinancialEventGroupList": page}
        if nxt:
            payload["NextToken"] = nxt
        return {"payload": payload}

    @staticmethod
    def render_group(g: dict, visible: datetime) -> dict:
        ccy = g["currency"]
        out: dict[str, Any] = {
            "FinancialEventGroupId": g["group_id"],
            "ProcessingStatus": "Closed" if g["closed"] else "Open",
            "OriginalTotal": currency_fin(g["original_total"], ccy),
            "BeginningBalance": currency_fin(Decimal("0.00"), ccy),
            "FinancialEventGroupStart": iso(g["start_at"]),
        }
        if g["closed"]:
            out["FinancialEventGroupEnd"] = iso(g["end_at"])
            out["ConvertedTotal"] = currency_fin(g["converted_total"], "GBP")
            out["FundTransferDate"] = iso(g["transfer_at"])
            out["FundTransferStatus"] = "Succeeded" if g["transfer_at"] <= visible else "Processing"
            out["TraceId"] = g["trace_id"]
            out["AccountTail"] = g["account_tail"]
        return out

    def list_group_events(self, request: Request, params: dict) -> dict:
        group = request.path_params["eventGroupId"]
        visible = self.visible()
        exists = self.db.execute("select count(*) from amazon_event_groups where group_id = ? and start_at <= ?",
                                 [group, visible]).fetchone()[0]
        if not exists:
            raise SpApiError(404, "NotFound", f"Financial event group {group} not found")
        size = self._page_size(params, "MaxResultsPerPage", 100)
        key = ("events", group, self.sandbox.clock.isoformat())
        page, nxt = self._paged(params, "NextToken", key, lambda: self._group_events(group, visible), size,
                                self.duplicate_page(request))
        events: dict[str, list] = {name: [] for name in EVENT_LISTS.values()}
        for kind, event in page:
            events[EVENT_LISTS[kind]].append(event)
        payload: dict[str, Any] = {"FinancialEvents": events}
        if nxt:
            payload["NextToken"] = nxt
        return {"payload": payload}

    def _group_events(self, group: str, visible: datetime) -> list[tuple[str, dict]]:
        cur = self.db.execute("select * from amazon_event_lines where group_id = ? and posted_at <= ? "
                              "order by posted_at, line_id", [group, visible])
        cols = [d[0] for d in cur.description]
        events: dict[str, tuple[str, dict]] = {}
        items: dict[tuple[str, str], dict] = {}
        for row in cur.fetchall():
            r = dict(zip(cols, row))
            kind, ccy = r["event_type"], r["currency"]
            mkt_name = MARKETPLACES[r["marketplace"]][1]
            if r["event_key"] not in events:
                if kind == "ServiceFeeEvent":
                    event: dict[str, Any] = {"FeeReason": r["fee_reason"], "FeeList": [],
                                             "FeeDescription": "Professional selling plan"}
                else:
                    event = {"AmazonOrderId": r["order_id"], "SellerOrderId": r["order_id"],
                             "MarketplaceName": mkt_name, "PostedDate": iso(r["posted_at"]),
                             ("ShipmentItemList" if kind == "ShipmentEvent" else "ShipmentItemAdjustmentList"): []}
                events[r["event_key"]] = (kind, event)
            event = events[r["event_key"]][1]
            if kind == "ServiceFeeEvent":
                event["FeeList"].append({"FeeType": r["component_type"], "FeeAmount": currency_fin(r["amount"], ccy)})
                continue
            ikey = (r["event_key"], r["order_item_id"])
            item = items.get(ikey)
            if item is None:
                item = {"SellerSKU": r["sku"], "OrderItemId": r["order_item_id"]}
                if kind == "ShipmentEvent":
                    item.update({"QuantityShipped": r["quantity"], "ItemChargeList": [], "ItemFeeList": [],
                                 "ItemTaxWithheldList": []})
                    event["ShipmentItemList"].append(item)
                else:
                    item.update({"OrderAdjustmentItemId": r["adjustment_id"], "QuantityShipped": r["quantity"],
                                 "ItemChargeAdjustmentList": [], "ItemFeeAdjustmentList": [],
                                 "ItemTaxWithheldList": []})
                    event["ShipmentItemAdjustmentList"].append(item)
                items[ikey] = item
            amount = currency_fin(r["amount"], ccy)
            if r["list_name"] == "ItemTaxWithheldList":
                item["ItemTaxWithheldList"].append({"TaxCollectionModel": r["tax_model"], "TaxesWithheld": [
                    {"ChargeType": r["component_type"], "ChargeAmount": amount}]})
            elif "Fee" in r["list_name"]:
                item[r["list_name"]].append({"FeeType": r["component_type"], "FeeAmount": amount})
            else:
                item[r["list_name"]].append({"ChargeType": r["component_type"], "ChargeAmount": amount})
        return list(events.values())
