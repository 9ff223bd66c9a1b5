"""Shopify GraphQL Admin API client: cost-based throttling, paged `orders`, bulk operations, and
the conversion of GraphQL orders into the REST objects the raw tables hold.

`FINANCE_SHOPIFY_API=graphql` selects this path for orders (payouts and balance transactions stay
on REST either way).  Why two fetch modes (docs/decisions.md): a backfill runs one
`bulkOperationRunQuery` — Shopify assembles the whole result server-side, with no per-query cost
limit, and we stream one JSONL file; an incremental run, which touches a few orders, pages
`orders(query: "updated_at:>='…'", sortKey: UPDATED_AT)`, because a bulk operation's fixed latency
(queueing, polling, one at a time per shop) outweighs a few cheap pages.

Throttling: every response reports `extensions.cost.throttleStatus {maximumAvailable
currentlyAvailable restoreRate}`.  `CostThrottle` keeps that estimate, restores it with time
(compressed by the sandbox's `time_scale`, like the REST bucket), and before each query waits
until the points available cover the query's cost (the previous page's `requestedQueryCost`).  A
`THROTTLED` answer (another app spent the points) waits for the missing points and retries.

Conversion: GIDs -> legacy integer ids, MoneyBags -> REST money strings (two decimals, never via
float) plus the `*_set` bags, UTC `DateTime` -> the shop's time zone with offset, enums -> REST's
lower case.  The staging models read the same columns and JSON paths either way.  Not carried:
REST-only fields the GraphQL Order does not have (`message` on transactions, line items'
`product_exists`, payment terms' `created_at`); `total_line_items_price` is rebuilt from the lines
(its shop amount may differ from REST's by rounding); a refund's `restock` is derived from its
lines' restock types (GraphQL has no such flag).
"""
from __future__ import annotations

import logging
import tempfile
import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import httpx
import orjson

from finance_pipeline.http.client import ApiClient
from finance_pipeline.ingest.arrow import parse_timestamp
from finance_pipeline.ingest.quarantine import BadRecord

log = logging.getLogger("finance_pipeline.shopify")

MAX_QUERY_COST = 1000  # Shopify's single-query limit
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "HUF"})


class ShopifyGraphQLError(RuntimeError):
    """A GraphQL request or bulk operation failed; the message says what Shopify answered."""


# ------------------------------------------------------------------------------ query text
BAG = "{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
ADDRESS = ("firstName lastName name company address1 address2 city zip province provinceCode country "
           "countryCodeV2 phone")
TAX = f"title rate priceSet {BAG} channelLiable"
# nested connection page sizes for paged queries (the sandbox world's largest: 9 lines, 2 refunds
# with up to 5 lines and 1 transaction); an order with more is completed by paging that
# connection through `node(id:)` (`GraphQLClient.complete`)
NESTED = {"lineItems": 10, "shippingLines": 2, "discountApplications": 2, "paymentSchedules": 1,
          "refundLineItems": 5, "transactions": 2, "orderAdjustments": 2}
TXN = (f"id kind gateway status amountSet {BAG} createdAt processedAt test authorizationCode errorCode "
       "paymentId parentTransaction { id }")
BODIES = {
    "discountApplications": "allocationMethod targetSelection targetType "
                            "value { ... on PricingPercentageValue { percentage } } ... on DiscountCodeApplication { code }",
    "paymentSchedules": "id issuedAt dueAt completedAt amount { amount currencyCode }",
    "lineItems": f"id name title variantTitle sku vendor quantity currentQuantity unfulfilledQuantity "
                 f"originalUnitPriceSet {BAG} totalDiscountSet {BAG} discountAllocations {{ allocatedAmountSet {BAG} }} "
                 f"taxLines {{ {TAX} }} taxable isGiftCard requiresShipping",
    "shippingLines": f"id title code source originalPriceSet {BAG} discountedPriceSet {BAG} taxLines {{ {TAX} }}",
    "refundLineItems": f"id lineItem {{ id }} quantity restockType subtotalSet {BAG} totalTaxSet {BAG}",
    "transactions": TXN,
    "orderAdjustments": f"id reason amountSet {BAG} taxAmountSet {BAG}",
}
ORDER_CONNECTIONS = ("lineItems", "shippingLines", "discountApplications")
REFUND_CONNECTIONS = ("refundLineItems", "transactions", "orderAdjustments")
REST_PAGE = 50  # page size when completing one order's long connection


def _conn(name: str, paged: bool) -> str:
    if paged:
        return (f"{name}(first: {NESTED[name]}) {{ pageInfo {{ hasNextPage endCursor }} "
                f"nodes {{ __typename {BODIES[name]} }} }}")
    return f"{name} {{ edges {{ node {{ __typename {BODIES[name]} }} }} }}"


def order_fields(paged: bool) -> str:
    """The Order selection both modes use (nested connections paged or, in bulk, unbounded)."""
    bags = " ".join(f"{name} {BAG}" for name in (
        "subtotalPriceSet", "totalPriceSet", "totalTaxSet", "totalDiscountsSet", "totalShippingPriceSet",
        "currentSubtotalPriceSet", "currentTotalPriceSet", "currentTotalTaxSet", "currentTotalDiscountsSet",
        "totalOutstandingSet"))
    return f"""
      id legacyResourceId name number email createdAt processedAt updatedAt cancelledAt cancelReason closedAt
      displayFinancialStatus displayFulfillmentStatus currencyCode presentmentCurrencyCode taxesIncluded
      taxExempt test sourceName tags note paymentGatewayNames {bags}
      taxLines {{ {TAX} }}
      discountCodes
      {_conn("discountApplications", paged)}
      customer {{ id legacyResourceId email firstName lastName createdAt updatedAt state verifiedEmail tags
                 taxExempt taxExemptions note defaultAddress {{ id {ADDRESS} }} }}
      billingAddress {{ {ADDRESS} }}
      shippingAddress {{ {ADDRESS} }}
      paymentTerms {{ id paymentTermsName paymentTermsType dueInDays {_conn("paymentSchedules", paged)} }}
      fulfillments {{ id status createdAt updatedAt }}
      {_conn("lineItems", paged)}
      {_conn("shippingLines", paged)}
      refunds {{ id legacyResourceId createdAt updatedAt note
                {_conn("refundLineItems", paged)} {_conn("transactions", paged)} {_conn("orderAdjustments", paged)} }}
    """


def paged_orders_query() -> str:
    return ("query Orders($first: Int!, $after: String, $query: String) { orders(first: $first, after: $after, "
            "query: $query, sortKey: UPDATED_AT) { pageInfo { hasNextPage endCursor } nodes { "
            + order_fields(True) + " } } }")


def bulk_orders_query(search: str | None) -> str:
    arg = f"(query: {orjson.dumps(search).decode()}, sortKey: UPDATED_AT)" if search else "(sortKey: UPDATED_AT)"
    return "{ orders" + arg + " { edges { node { " + order_fields(False) + " } } } }"


BULK_RUN = """mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } } }"""
BULK_STATUS = """query Op($id: ID!) { node(id: $id) { ... on BulkOperation {
  id status errorCode objectCount rootObjectCount fileSize url partialDataUrl } } }"""
BULK_CURRENT = """{ currentBulkOperation { id status errorCode objectCount rootObjectCount fileSize url query } }"""
SHOP = "{ shop { ianaTimezone currencyCode } }"


# ------------------------------------------------------------------------------ throttling
class CostThrottle:
    """Client-side view of the shop's GraphQL cost bucket (see the module docstring)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self.maximum: float | None = None
        self.available: float | None = None
        self.restore_rate = 50.0  # until the shop tells us (the lowest plan's documented rate)
        self._t = time.monotonic()
        self.waited_s = 0.0
        self.waits = 0

    def _now_available(self) -> float | None:
        if self.available is None:
            return None
        elapsed = time.monotonic() - self._t
        return min(self.maximum or float("inf"), self.available + elapsed * self.restore_rate * self.time_scale)

    def wait_for(self, cost: float) -> None:
        have = self._now_available()
        if have is None or have >= cost:
            return
        if self.maximum is not None and cost > self.maximum:
            raise ShopifyGraphQLError(f"shopify: a query costing {cost:.0f} can never run: the shop's bucket "
                                      f"holds {self.maximum:.0f} points")
        delay = (cost - have) / (self.restore_rate * self.time_scale)
        self.waits += 1
        self.waited_s += delay
        time.sleep(delay)

    def observe(self, cost: dict | None) -> None:
        status = (cost or {}).get("throttleStatus")
        if not status:
            return
        self.maximum = float(status["maximumAvailable"])
        self.available = float(status["currentlyAvailable"])
        self.restore_rate = float(status["restoreRate"]) or self.restore_rate
        self._t = time.monotonic()


class GraphQLClient:
    """One shop's GraphQL endpoint over an `ApiClient` (retries, timeouts, redaction)."""

    def __init__(self, api: ApiClient, time_scale: float = 1.0, poll_s: float = 1.0, max_poll_s: float = 10.0) -> None:
        self.api = api
        self.throttle = CostThrottle(time_scale)
        # polling compressed like the limits, but never a busy loop (a time scale of 10⁶ in the bench)
        self.poll_s = max(0.02, poll_s / time_scale)
        self.max_poll_s = max(0.25, max_poll_s / time_scale)
        self.throttled = 0  # THROTTLED answers seen (and retried)
        self._tz: ZoneInfo | None = None
        self._costs: dict[tuple, float] = {}  # (query, page size) -> its last requestedQueryCost

    def close(self) -> None:
        self.api.close()

    def execute(self, query: str, variables: dict | None = None, cost: float = 0.0,
                mutation: bool = False) -> tuple[dict, dict]:
        """(data, extensions.cost); waits for the points first, retries THROTTLED answers.

        `cost`: the expected cost; 0 = the last cost of this query (same text and page size), or,
        for a query never sent, the single-query maximum (so our own queries are never refused)."""
        shape = (query, (variables or {}).get("first"))
        if not cost:
            cost = self._costs.get(shape) or min(MAX_QUERY_COST, self.throttle.maximum or MAX_QUERY_COST)
        for _ in range(50):
            self.throttle.wait_for(cost)
            body = self.api.request("POST", "graphql.json", json={"query": query, "variables": variables or {}},
                                    idempotent=not mutation).json()
            extensions = (body.get("extensions") or {}).get("cost") or {}
            self.throttle.observe(extensions)
            errors = body.get("errors")
            if errors and isinstance(errors, list) and any(
                    (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                self.throttled += 1
                cost = max(cost, float(extensions.get("requestedQueryCost") or cost))
                log.info("shopify graphql: throttled; waiting for %.0f points", cost)
                continue
            if errors:
                messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                                     for e in (errors if isinstance(errors, list) else [errors]))
                raise ShopifyGraphQLError(f"shopify graphql: the query failed: {messages[:500]}")
            if extensions.get("requestedQueryCost"):
                self._costs[shape] = float(extensions["requestedQueryCost"])
            return body.get("data") or {}, extensions
        raise ShopifyGraphQLError("shopify graphql: still throttled after 50 waits")

    def shop_timezone(self) -> ZoneInfo:
        if self._tz is None:
            data, _ = self.execute(SHOP, cost=2)
            self._tz = ZoneInfo(data["shop"]["ianaTimezone"])
        return self._tz

    # ---------------------------------------------------------------- paged orders (incremental)
    def paged_orders(self, search: str | None, first: int = 2) -> Iterator[list[dict]]:
        """Pages of GraphQL order nodes, sized so each query fits the single-query cost limit."""
        query = paged_orders_query()
        after = None
        estimate = 0.0
        while True:
            data, cost = self.execute(query, {"first": first, "after": after, "query": search}, cost=estimate)
            conn = data["orders"]
            nodes = conn["nodes"]
            for node in nodes:
                self.complete(node)
            yield nodes
            requested = float(cost.get("requestedQueryCost") or 0)
            if requested and first:
                per_order = (requested - 2) / first
                first = max(1, min(250, int((MAX_QUERY_COST - 2) // per_order)))
                estimate = 2 + per_order * first
            if not conn["pageInfo"]["hasNextPage"]:
                return
            after = conn["pageInfo"]["endCursor"]

    def complete(self, node: dict) -> None:
        """Page, in place, any of the order's nested connections that held more than one page."""
        for name in ORDER_CONNECTIONS:
            self._rest_of(node.get(name), "Order", node.get("id"), name)
        schedules = (node.get("paymentTerms") or {}).get("paymentSchedules")
        if schedules and schedules.get("pageInfo", {}).get("hasNextPage"):
            raise ShopifyGraphQLError(f"shopify graphql: order {node.get('legacyResourceId')} has more payment "
                                      f"schedules than {NESTED['paymentSchedules']}; raise NESTED['paymentSchedules']")
        for refund in node.get("refunds") or ():
            for name in REFUND_CONNECTIONS:
                self._rest_of(refund.get(name), "Refund", refund.get("id"), name)

    def _rest_of(self, conn: dict | None, typename: str, gid: str | None, name: str) -> None:
        if not conn or not conn.get("pageInfo", {}).get("hasNextPage"):
            return
        query = (f"query Rest($id: ID!, $after: String) {{ node(id: $id) {{ ... on {typename} {{ "
                 f"{name}(first: {REST_PAGE}, after: $after) {{ pageInfo {{ hasNextPage endCursor }} "
                 f"nodes {{ __typename {BODIES[name]} }} }} }} }} }}")
        after = conn["pageInfo"].get("endCursor")
        estimate = 0.0
        while True:
            data, cost = self.execute(query, {"id": gid, "after": after}, cost=estimate)
            estimate = float(cost.get("requestedQueryCost") or 0)
            page = (data.get("node") or {}).get(name)
            if page is None:
                raise ShopifyGraphQLError(f"shopify graphql: {gid} vanished while its {name} were being read")
            conn["nodes"].extend(page["nodes"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        conn["pageInfo"] = {"hasNextPage": False, "endCursor": after}

    # ---------------------------------------------------------------- bulk operation (backfill)
    def run_bulk(self, query: str) -> dict:
        """Start a bulk query, poll it with backoff until it ends; the finished operation."""
        # sent again if its answer is lost (a 5xx or timeout after Shopify started it): the second
        # attempt then finds our operation in progress and adopts it instead of starting another
        data, _ = self.execute(BULK_RUN, {"query": query}, cost=10)
        payload = data["bulkOperationRunQuery"]
        errors = payload.get("userErrors") or []
        if errors:
            if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
                current, _ = self.execute(BULK_CURRENT, cost=1)
                op = current.get("currentBulkOperation") or {}
                if op.get("query") == query:
                    log.info("shopify graphql: our bulk operation %s is already running; following it", op.get("id"))
                    return self._poll(op.get("id"))
                log.info("shopify graphql: another bulk operation (%s) is running; waiting for it", op.get("id"))
                self._poll(op.get("id"), anyone=True)
                return self.run_bulk(query)
            raise ShopifyGraphQLError("shopify graphql: bulkOperationRunQuery refused the query: "
                                      + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors))
        return self._poll(payload["bulkOperation"]["id"])

    def _poll(self, op_id: str | None, anyone: bool = False) -> dict:
        """Wait for a bulk operation to end; ours must complete (`anyone`: any end will do)."""
        if not op_id:
            raise ShopifyGraphQLError("shopify graphql: no bulk operation to wait for")
        delay = self.poll_s
        while True:
            data, _ = self.execute(BULK_STATUS, {"id": op_id}, cost=1)
            op = data.get("node") or {}
            status = op.get("status")
            if status == "COMPLETED" or (anyone and status not in ("CREATED", "RUNNING", "CANCELING")):
                return op
            if status in ("FAILED", "CANCELED", "CANCELING", "EXPIRED"):
                raise ShopifyGraphQLError(
                    f"shopify graphql: bulk operation {op_id} ended {status} (errorCode {op.get('errorCode')}) "
                    f"after {op.get('objectCount')} objects; nothing was loaded from it — re-run the sync "
                    "(a backfill starts a new bulk operation)")
            time.sleep(delay)
            delay = min(self.max_poll_s, delay * 1.5)

    def bulk_lines(self, op: dict) -> Iterator[dict]:
        """The result file's objects, line by line.  The file is streamed to a temporary file
        (never held in memory) and checked against `fileSize` and `objectCount`, so a short
        download is fetched again rather than half-loaded."""
        if not op.get("url"):
            return  # COMPLETED with no objects: Shopify gives no file
        expected_size = int(op["fileSize"]) if op.get("fileSize") else None
        expected_count = int(op["objectCount"]) if op.get("objectCount") else None
        with tempfile.TemporaryFile() as spool:
            size = count = 0
            for attempt in range(1, 9):
                spool.seek(0)
                spool.truncate()
                size = count = 0
                try:
                    # a plain GET: the URL is signed storage, and the shop's token must not travel there
                    with httpx.stream("GET", op["url"], timeout=120.0) as raw:
                        if raw.status_code == 200:
                            for block in raw.iter_bytes(1 << 20):
                                spool.write(block)
                                size += len(block)
                                count += block.count(b"\n")
                        elif raw.status_code < 500 and raw.status_code != 429:
                            raise ShopifyGraphQLError(
                                f"shopify graphql: the bulk result file answered HTTP {raw.status_code}")
                except httpx.HTTPError as exc:
                    log.info("shopify graphql: bulk result download failed (%s); retrying", type(exc).__name__)
                if size and (expected_size is None or size == expected_size) and \
                        (expected_count is None or count == expected_count):
                    break
                log.info("shopify graphql: bulk result short (%d bytes, %d lines); fetching again", size, count)
                time.sleep(min(self.max_poll_s, self.poll_s * attempt))
            else:
                raise ShopifyGraphQLError(f"shopify graphql: the bulk result file of {op.get('id')} kept arriving "
                                          f"incomplete ({size} of {expected_size} bytes)")
            spool.seek(0)
            for raw_line in spool:
                if raw_line.strip():
                    yield orjson.loads(raw_line)


# ------------------------------------------------------------------------------ JSONL -> orders
CHILD_FIELDS = {"LineItem": "lineItems", "ShippingLine": "shippingLines", "DiscountCodeApplication": "discountApplications",
                "DiscountAutomaticApplication": "discountApplications", "ManualDiscountApplication": "discountApplications",
                "ScriptDiscountApplication": "discountApplications", "PaymentSchedule": "paymentSchedules",
                "RefundLineItem": "refundLineItems", "OrderTransaction": "transactions",
                "OrderAdjustment": "orderAdjustments"}


def rebuild_orders(lines: Iterator[dict]) -> Iterator[dict]:
    """Order nodes from a bulk result: each child line (`__parentId`) is put back into its
    parent's connection (`{"nodes": [...]}`).  Shopify writes children after their parent; an
    order is complete when the next order starts.  A child whose parent is not in the current
    order is an error, never dropped."""
    current: dict | None = None
    index: dict[str, dict] = {}
    for line in lines:
        parent_id = line.pop("__parentId", None)
        if parent_id is None:
            if current is not None:
                yield current
            current = line
            index = {line["id"]: line}
            for refund in line.get("refunds") or ():
                index[refund["id"]] = refund
            if line.get("paymentTerms"):
                index[line["paymentTerms"]["id"]] = line["paymentTerms"]
            continue
        parent = index.get(parent_id)
        if parent is None:
            raise ShopifyGraphQLError(f"shopify graphql: bulk result line's parent {parent_id} is not the order "
                                      "being read (result not grouped by parent)")
        field_name = CHILD_FIELDS.get(line.get("__typename", ""))
        if field_name is None:
            raise ShopifyGraphQLError(f"shopify graphql: unexpected child object {line.get('__typename')!r} in a bulk result")
        parent.setdefault(field_name, {"nodes": []})["nodes"].append(line)
    if current is not None:
        yield current


# ------------------------------------------------------------------------------ GraphQL -> REST
def legacy_id(gid: str | None) -> int | None:
    if gid is None:
        return None
    try:
        return int(str(gid).rsplit("/", 1)[1].split("?", 1)[0])
    except (IndexError, ValueError):
        raise BadRecord(f"id={gid!r} is not a Shopify GID") from None


def rest_money(amount: Any, currency: str | None, where: str) -> str:
    """A GraphQL `Decimal` amount as REST's money string (two decimals; none for JPY & co)."""
    try:
        d = Decimal(str(amount))
        if not d.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise BadRecord(f"{where}={amount!r} is not a decimal amount") from None
    places = 0 if (currency or "").upper() in ZERO_DECIMAL_CURRENCIES else 2
    text = f"{d:.{places}f}"
    return "0.00"[: 4 if places else 1] if d == 0 else text


def _bag(b: dict | None, where: str) -> dict | None:
    if b is None:
        return None
    shop, pres = b["shopMoney"], b["presentmentMoney"]
    return {"shop_money": {"amount": rest_money(shop["amount"], shop["currencyCode"], f"{where}.shop_money.amount"),
                           "currency_code": shop["currencyCode"]},
            "presentment_money": {"amount": rest_money(pres["amount"], pres["currencyCode"],
                                                       f"{where}.presentment_money.amount"),
                                  "currency_code": pres["currencyCode"]}}


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _nodes(conn: dict | None) -> list[dict]:
    if not conn:
        return []
    if "nodes" in conn:
        return conn["nodes"]
    return [e["node"] for e in conn.get("edges") or ()]


class RestShape:
    """Converts GraphQL order nodes to REST order objects, times in the shop's time zone."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def ts(self, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed: datetime = parse_timestamp(value)  # type: ignore[assignment]
        except (TypeError, ValueError):
            raise BadRecord(f"DateTime {value!r} is not an ISO 8601 timestamp") from None
        return parsed.astimezone(self.tz).replace(microsecond=0).isoformat()

    def tax_line(self, t: dict, where: str) -> dict:
        bag = _bag(t["priceSet"], f"{where}.price_set")
        return {"title": t["title"], "rate": t["rate"], "price": bag["shop_money"]["amount"], "price_set": bag,
                "channel_liable": t.get("channelLiable", False)}

    @staticmethod
    def address(a: dict | None) -> dict | None:
        if a is None:
            return None
        return {"first_name": a["firstName"], "last_name": a["lastName"], "name": a["name"], "company": a["company"],
                "address1": a["address1"], "address2": a["address2"], "city": a["city"], "zip": a["zip"],
                "province": a["province"], "province_code": a["provinceCode"], "country": a["country"],
                "country_code": a["countryCodeV2"], "phone": a["phone"]}

    def transaction(self, t: dict, order_id: int) -> dict:
        pres = t["amountSet"]["presentmentMoney"]
        at = self.ts(t["createdAt"])
        return {
            "id": legacy_id(t["id"]), "admin_graphql_api_id": t["id"], "order_id": order_id,
            "kind": _lower(t["kind"]), "gateway": t["gateway"], "status": _lower(t["status"]),
            "created_at": at, "processed_at": self.ts(t["processedAt"]), "test": t["test"],
            "authorization": t["authorizationCode"],
            "parent_id": legacy_id((t.get("parentTransaction") or {}).get("id")),
            "error_code": t["errorCode"], "amount": rest_money(pres["amount"], pres["currencyCode"], "transaction.amount"),
            "currency": pres["currencyCode"], "payment_id": t["paymentId"],
        }

    def order(self, n: dict) -> dict:
        oid = int(n["legacyResourceId"])
        ccy = n["presentmentCurrencyCode"]
        out: dict[str, Any] = {
            "id": oid, "admin_graphql_api_id": n["id"], "name": n["name"], "order_number": n["number"],
            "email": n["email"], "created_at": self.ts(n["createdAt"]), "processed_at": self.ts(n["processedAt"]),
            "updated_at": self.ts(n["updatedAt"]), "cancelled_at": self.ts(n["cancelledAt"]),
            "cancel_reason": _lower(n["cancelReason"]), "closed_at": self.ts(n["closedAt"]),
            "financial_status": _lower(n["displayFinancialStatus"]),
            "fulfillment_status": {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(
                n["displayFulfillmentStatus"]),
            "currency": n["currencyCode"], "presentment_currency": ccy, "taxes_included": n["taxesIncluded"],
            "tax_exempt": n["taxExempt"], "test": n["test"], "source_name": n["sourceName"],
            "tags": ", ".join(n["tags"] or ()), "note": n["note"],
            "payment_gateway_names": n["paymentGatewayNames"],
        }
        for rest, gql in (("subtotal_price", "subtotalPriceSet"), ("total_price", "totalPriceSet"),
                          ("total_tax", "totalTaxSet"), ("total_discounts", "totalDiscountsSet"),
                          ("current_subtotal_price", "currentSubtotalPriceSet"),
                          ("current_total_price", "currentTotalPriceSet"), ("current_total_tax", "currentTotalTaxSet"),
                          ("current_total_discounts", "currentTotalDiscountsSet")):
            bag = _bag(n[gql], f"{rest}_set")
            out[rest], out[f"{rest}_set"] = bag["shop_money"]["amount"], bag
        out["total_shipping_price_set"] = _bag(n["totalShippingPriceSet"], "total_shipping_price_set")
        outstanding = n["totalOutstandingSet"]["presentmentMoney"]
        out["total_outstanding"] = rest_money(outstanding["amount"], outstanding["currencyCode"], "total_outstanding")
        out["tax_lines"] = [self.tax_line(t, "tax_lines") for t in n["taxLines"]]

        lines = []
        items_shop = items_pres = Decimal(0)
        fulfilled = out["fulfillment_status"] == "fulfilled"
        for li in _nodes(n.get("lineItems")):
            price = _bag(li["originalUnitPriceSet"], "line_items.price_set")
            items_shop += Decimal(price["shop_money"]["amount"]) * li["quantity"]
            items_pres += Decimal(price["presentment_money"]["amount"]) * li["quantity"]
            discount = _bag(li["totalDiscountSet"], "line_items.total_discount_set")
            lines.append({
                "id": legacy_id(li["id"]), "admin_graphql_api_id": li["id"], "name": li["name"], "title": li["title"],
                "variant_title": li["variantTitle"], "sku": li["sku"], "vendor": li["vendor"],
                "quantity": li["quantity"], "current_quantity": li["currentQuantity"],
                "fulfillable_quantity": li["unfulfilledQuantity"],
                "fulfillment_status": "fulfilled" if fulfilled else None,
                "price": price["shop_money"]["amount"], "price_set": price,
                "total_discount": discount["shop_money"]["amount"], "total_discount_set": discount,
                "discount_allocations": [
                    {"amount": (b := _bag(d["allocatedAmountSet"], "discount_allocations.amount_set"))["shop_money"]["amount"],
                     "amount_set": b, "discount_application_index": 0} for d in li["discountAllocations"]],
                "tax_lines": [self.tax_line(t, "line_items.tax_lines") for t in li["taxLines"]],
                "taxable": li["taxable"], "gift_card": li["isGiftCard"], "requires_shipping": li["requiresShipping"],
                "duties": [],
            })
        out["line_items"] = lines
        shop_ccy = n["currencyCode"]
        out["total_line_items_price"] = rest_money(items_shop, shop_ccy, "total_line_items_price")
        out["total_line_items_price_set"] = {
            "shop_money": {"amount": out["total_line_items_price"], "currency_code": shop_ccy},
            "presentment_money": {"amount": rest_money(items_pres, ccy, "total_line_items_price"), "currency_code": ccy}}
        out["shipping_lines"] = [{
            "id": legacy_id(s["id"]), "title": s["title"], "code": s["code"], "source": s["source"],
            "price": (p := _bag(s["originalPriceSet"], "shipping_lines.price_set"))["shop_money"]["amount"], "price_set": p,
            "discounted_price": (dp := _bag(s["discountedPriceSet"], "shipping_lines.discounted_price_set"))["shop_money"]["amount"],
            "discounted_price_set": dp, "discount_allocations": [],
            "tax_lines": [self.tax_line(t, "shipping_lines.tax_lines") for t in s["taxLines"]],
        } for s in _nodes(n.get("shippingLines"))]
        discount_total = out["total_discounts"]
        apps = _nodes(n.get("discountApplications"))
        out["discount_codes"] = [{"code": code, "amount": discount_total,
                                  "type": next(("percentage" for a in apps if a.get("code") == code and
                                                "percentage" in (a.get("value") or {})), "fixed_amount")}
                                 for code in n["discountCodes"]]
        out["discount_applications"] = [{
            "type": "discount_code" if a.get("__typename") == "DiscountCodeApplication" else "automatic",
            "code": a.get("code"),
            "value": f"{a['value']['percentage']:.1f}" if "percentage" in (a.get("value") or {}) else None,
            "value_type": "percentage" if "percentage" in (a.get("value") or {}) else "fixed_amount",
            "allocation_method": _lower(a["allocationMethod"]), "target_selection": _lower(a["targetSelection"]),
            "target_type": _lower(a["targetType"]),
        } for a in apps]
        out["fulfillments"] = [{"id": legacy_id(f["id"]), "order_id": oid, "status": _lower(f["status"]),
                                "created_at": self.ts(f["createdAt"]), "updated_at": self.ts(f["updatedAt"])}
                               for f in n["fulfillments"]]
        out["refunds"] = [self.refund(r, oid) for r in n["refunds"]]
        c = n.get("customer")
        if c is None:
            out["customer"] = None
        else:
            cid = int(c["legacyResourceId"])
            default = c.get("defaultAddress")
            out["customer"] = {
                "id": cid, "admin_graphql_api_id": c["id"], "email": c["email"], "first_name": c["firstName"],
                "last_name": c["lastName"], "created_at": self.ts(c["createdAt"]), "updated_at": self.ts(c["updatedAt"]),
                "state": _lower(c["state"]), "verified_email": c["verifiedEmail"], "tags": ", ".join(c["tags"] or ()),
                "tax_exempt": c["taxExempt"], "tax_exemptions": c["taxExemptions"], "note": c["note"],
                "default_address": None if default is None else {
                    **self.address(default), "id": legacy_id(default.get("id")), "customer_id": cid, "default": True},
            }
        out["billing_address"] = self.address(n.get("billingAddress"))
        out["shipping_address"] = self.address(n.get("shippingAddress"))
        pt = n.get("paymentTerms")
        out["payment_terms"] = None if pt is None else {
            "id": legacy_id(pt["id"]), "payment_terms_name": pt["paymentTermsName"],
            "payment_terms_type": _lower(pt["paymentTermsType"]), "due_in_days": pt["dueInDays"],
            "payment_schedules": [{
                "id": legacy_id(s["id"]), "issued_at": self.ts(s["issuedAt"]), "due_at": self.ts(s["dueAt"]),
                "completed_at": self.ts(s["completedAt"]),
                "amount": rest_money(s["amount"]["amount"], s["amount"]["currencyCode"], "payment_schedules.amount"),
                "currency": s["amount"]["currencyCode"],
            } for s in _nodes(pt.get("paymentSchedules"))],
        }
        return out

    def refund(self, r: dict, order_id: int) -> dict:
        rid = legacy_id(r["id"])
        lines = _nodes(r.get("refundLineItems"))
        at = self.ts(r["createdAt"])
        return {
            "id": rid, "admin_graphql_api_id": r["id"], "order_id": order_id, "created_at": at, "processed_at": at,
            "note": r["note"], "user_id": None,
            "restock": any(rl["restockType"] in ("RETURN", "CANCEL", "LEGACY_RESTOCK") for rl in lines),
            "refund_line_items": [{
                "id": legacy_id(rl["id"]), "line_item_id": legacy_id(rl["lineItem"]["id"]), "quantity": rl["quantity"],
                "restock_type": _lower(rl["restockType"]), "location_id": None,
                "subtotal": (s := _bag(rl["subtotalSet"], "refund_line_items.subtotal_set"))["shop_money"]["amount"],
                "subtotal_set": s,
                "total_tax": (t := _bag(rl["totalTaxSet"], "refund_line_items.total_tax_set"))["shop_money"]["amount"],
                "total_tax_set": t,
            } for rl in lines],
            "transactions": [self.transaction(t, order_id) for t in _nodes(r.get("transactions"))],
            "order_adjustments": [{
                "id": legacy_id(a["id"]), "order_id": order_id, "refund_id": rid, "kind": _lower(a["reason"]),
                "reason": "Shipping refund" if a["reason"] == "SHIPPING_REFUND" else None,
                "amount": (m := _bag(a["amountSet"], "order_adjustments.amount_set"))["shop_money"]["amount"],
                "amount_set": m,
                "tax_amount": (tm := _bag(a["taxAmountSet"], "order_adjustments.tax_amount_set"))["shop_money"]["amount"],
                "tax_amount_set": tm,
            } for a in _nodes(r.get("orderAdjustments"))],
            "duties": [],
        }
