"""Shopify through the GraphQL Admin API (`FINANCE_SHOPIFY_API=graphql`): the emulator's GraphQL
endpoint and bulk operations, and the source's GraphQL path, which must load the same raw rows as
the REST path (backfill by bulk operation, incremental by paged `orders`), honour the cost bucket,
fail clearly when a bulk operation fails, and quarantine bad orders."""
from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import timedelta
from decimal import Decimal

import duckdb
import httpx
import orjson
import pytest

from finance_pipeline.http.client import json_default
from finance_pipeline.ingest.arrow import arrow_page
from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.shopify import graphql_client
from finance_pipeline.platforms.shopify.emulator import ShopifyEmulator
from finance_pipeline.platforms.shopify.graphql_emulator import CostBucket
from finance_pipeline.platforms.shopify.source import ORDER_SCHEMA, graphql_order_pages, shopify_source
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Settings, SettingsError
from tests.conftest import make_settings

# JSON paths of the `orders` columns the staging models read (dbt_project/models/staging/shopify)
BAG = {"shop_money": {"amount": None}, "presentment_money": {"amount": None}}
TAX = {"title": None, "rate": None, "price_set": BAG}
USED = {
    "customer": {"id": None, "email": None, "default_address": {"company": None}},
    "billing_address": {"company": None, "country_code": None, "province_code": None},
    "shipping_address": {"company": None, "country_code": None, "province_code": None},
    "payment_terms": {"payment_terms_name": None, "due_in_days": None, "payment_schedules": [{"due_at": "ts"}]},
    "discount_codes": [{"code": None}],
    "shipping_lines": [{"id": None, "price_set": BAG, "tax_lines": [TAX]}],
    "line_items": [{"id": None, "sku": None, "title": None, "variant_title": None, "quantity": None,
                    "current_quantity": None, "price_set": BAG, "discount_allocations": [{"amount_set": BAG}],
                    "tax_lines": [TAX]}],
    "refunds": [{"id": None, "created_at": "ts", "note": None, "restock": None,
                 "transactions": [{"kind": None, "status": None, "amount": None}],
                 "order_adjustments": [{"kind": None, "amount_set": BAG, "tax_amount_set": BAG}],
                 "refund_line_items": [{"id": None, "line_item_id": None, "quantity": None, "restock_type": None,
                                        "subtotal_set": BAG, "total_tax_set": BAG}]}],
    **{f"{m}_set": BAG for m in ("total_price", "subtotal_price", "total_tax", "total_discounts", "current_total_price")},
}


def project(value, shape):
    """`value` reduced to the paths in `shape` (times compared as instants)."""
    if value is None:
        return None
    if shape == "ts":
        from finance_pipeline.ingest.arrow import parse_timestamp
        return parse_timestamp(value)
    if shape is None:
        return value
    if isinstance(shape, list):
        return [project(v, shape[0]) for v in value]
    return {k: project(value.get(k), s) for k, s in shape.items()}


def graphql_settings(settings: Settings, tmp_path, name: str = "gql", **overrides) -> Settings:
    return dataclasses.replace(make_settings(tmp_path / name), shopify_api="graphql", **overrides)


def load(settings, running, quarantine: Quarantine | None = None):
    quarantine = quarantine if quarantine is not None else Quarantine("shopify")
    connection = Connection("shopify", running.url, running.emulator.credentials(), settings)
    source = shopify_source(connection, quarantine).with_resources("orders")
    return run_platform(settings, "shopify", source, quarantine)


def orders(settings) -> dict[int, dict]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        cur = con.execute("select * from raw_shopify.orders order by id")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    return {r[0]: dict(zip(names, r)) for r in rows}


def used(row: dict) -> dict:
    """A raw order row as the models read it: every scalar column, the JSON columns' used paths
    (the rest of the JSON differs only in REST-only fields, see docs/decisions.md)."""
    out = {}
    for name, value in row.items():
        if name.startswith("_dlt") or name in ("total_line_items_price", "total_line_items_price_set"):
            continue
        if name in USED:
            out[name] = project(json.loads(value) if value is not None else None, USED[name])
        elif name in ("total_shipping_price_set", "payment_gateway_names", "discount_applications", "fulfillments",
                      "tax_lines"):  # not read by the models, but equal all the same
            out[name] = json.loads(value) if value is not None else None
        else:
            out[name] = value
    return out


def assert_same(rest: dict[int, dict], gql: dict[int, dict]) -> None:
    assert rest.keys() == gql.keys()
    diffs = [oid for oid in rest if used(rest[oid]) != used(gql[oid])]
    if diffs:
        a, b = used(rest[diffs[0]]), used(gql[diffs[0]])
        detail = {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
        pytest.fail(f"{len(diffs)} of {len(rest)} orders differ; first {diffs[0]}: {detail}")


def test_graphql_loads_the_same_orders_as_rest_backfill_and_incremental(settings, sandbox, tmp_path, start_emulator):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    gql = graphql_settings(settings, tmp_path)

    # backfill: REST pages vs one bulk operation
    assert load(settings, running).quarantined == 0
    assert load(gql, running).quarantined == 0
    admin = running.emulator.graphql
    assert len(admin.bulk_ops) == 1 and admin.current_bulk.status == "COMPLETED"
    rest_rows, gql_rows = orders(settings), orders(gql)
    assert len(rest_rows) > 1000
    assert_same(rest_rows, gql_rows)
    # total_line_items_price is rebuilt from the lines: presentment exact, shop within rounding
    for oid, row in rest_rows.items():
        a, b = json.loads(row["total_line_items_price_set"]), json.loads(gql_rows[oid]["total_line_items_price_set"])
        assert a["presentment_money"] == b["presentment_money"]

    # a month later: incremental runs (paged `orders(query: "updated_at:>=…")`, no new bulk operation)
    sandbox.advance(hours=24 * 30)
    requests = running.emulator.counters["requests"]
    load(settings, running)
    load(gql, running)
    assert len(admin.bulk_ops) == 1
    assert running.emulator.counters["requests"] > requests
    after_rest, after_gql = orders(settings), orders(gql)
    assert len(after_rest) > len(rest_rows)
    assert_same(after_rest, after_gql)
    assert running.emulator.counters["graphql_throttled"] == 0


class BusyNeighbour(CostBucket):
    """The shop's bucket, which another app empties once, just before our first page of orders."""

    emptied = False

    def take(self, cost: float) -> bool:
        if cost >= 100 and not self.emptied:
            self.emptied = True
            with self._lock:
                self._restore()
                self._available = 0.0
        return super().take(cost)


def test_cost_throttling_is_honoured(settings, sandbox, tmp_path, start_emulator, monkeypatch):
    """An incremental read (paged `orders`, no dlt) against a small bucket that another app
    empties once: one THROTTLED answer, waited out and retried; otherwise the client waits for
    the points before each query.  Tiny nested pages make orders with more lines or refund lines
    complete through `node(id:)`; the result equals the REST renderer's orders."""
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    admin = running.emulator.graphql
    admin.bucket = BusyNeighbour(restore_rate=50.0, time_scale=settings.time_scale)  # 1000 points, ~a page
    monkeypatch.setitem(graphql_client.NESTED, "lineItems", 2)
    monkeypatch.setitem(graphql_client.NESTED, "refundLineItems", 1)
    monkeypatch.setattr(graphql_client, "REST_PAGE", 3)
    waits = []
    original = graphql_client.CostThrottle.wait_for

    def counting(self, cost):
        before = self.waits
        original(self, cost)
        waits.append(self.waits - before)

    monkeypatch.setattr(graphql_client.CostThrottle, "wait_for", counting)
    since = sandbox.clock - timedelta(days=4)
    gql = graphql_settings(settings, tmp_path)
    connection = Connection("shopify", running.url, running.emulator.credentials(), gql)
    quarantine = Quarantine("shopify")
    got = {r["id"]: r for t in graphql_order_pages(connection, since, quarantine) for r in t.to_pylist()}
    assert len(quarantine) == 0 and len(got) > 20
    assert running.emulator.counters["graphql_throttled"] == 1
    assert sum(waits) >= 3
    # the same orders, as the REST path would load them
    wire = orjson.loads(orjson.dumps(running.emulator.render_orders(sorted(got)), default=json_default))
    want = {r["id"]: r for r in arrow_page(wire, ORDER_SCHEMA).to_pylist()}
    assert want.keys() == got.keys()
    assert {k: used(v) for k, v in want.items()} == {k: used(v) for k, v in got.items()}
    assert min(r["updated_at"] for r in got.values()) >= since


def test_failed_bulk_operation_is_a_clear_error(settings, sandbox, tmp_path, start_emulator):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    running.emulator.graphql.fail_next_bulk = "INTERNAL_SERVER_ERROR"
    gql = graphql_settings(settings, tmp_path)
    with pytest.raises(Exception) as caught:
        load(gql, running)
    text = " ".join(str(e) for e in _chain(caught.value))
    assert "ended FAILED" in text and "INTERNAL_SERVER_ERROR" in text
    con = duckdb.connect(str(gql.warehouse_path), read_only=True)
    try:
        loaded = con.execute("select count(*) from information_schema.tables where table_schema = 'raw_shopify' "
                             "and table_name = 'orders'").fetchone()[0]
        assert loaded == 0 or con.execute("select count(*) from raw_shopify.orders").fetchone()[0] == 0
    finally:
        con.close()
    assert running.emulator.graphql.current_bulk.error_code == "INTERNAL_SERVER_ERROR"


def test_faults_change_nothing(settings, sandbox, small_world_dir, tmp_path, start_emulator):
    """5xx, 429s, timeouts, answers lost after the bulk operation started, truncated downloads:
    the GraphQL backfill from a faulty shop equals the REST backfill from a clean one."""
    clean = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    load(settings, clean)
    faulty_settings = graphql_settings(settings, tmp_path, "faulty", fault_rate=0.3)
    shutil.copytree(small_world_dir / "sandbox", faulty_settings.sandbox_dir)
    faulty = start_emulator(ShopifyEmulator, Sandbox(faulty_settings.sandbox_dir), time_scale=settings.time_scale,
                            fault_rate=0.3, fault_seed=5)
    faulty.emulator.graphql.bulk_step_delay_s = 0.05  # a few more polls, so a few more faults
    # besides the random ones: the answer to the bulkOperationRunQuery mutation (2nd POST) is lost
    # after the operation started, and the first download of the result file is cut short
    random_fault = faulty.emulator.pick_fault
    seen = {"POST": 0, "GET": 0}

    def scripted(method):
        seen[method] = seen.get(method, 0) + 1
        if method == "POST" and seen["POST"] == 2:
            return "500_after_commit"
        if method == "GET" and seen["GET"] == 1:
            return "truncate"
        return random_fault(method)

    faulty.emulator.pick_fault = scripted
    assert load(faulty_settings, faulty).quarantined == 0
    assert faulty.emulator.faults["500_after_commit"] >= 1 and faulty.emulator.faults["truncate"] >= 1
    assert len(faulty.emulator.graphql.bulk_ops) == 1  # a lost answer never started a second operation
    assert_same(orders(settings), orders(faulty_settings))


def _chain(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_bad_graphql_order_is_quarantined(settings, sandbox, tmp_path, start_emulator, monkeypatch):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    admin = running.emulator.graphql
    render = admin.render_nodes
    victims: dict[int, str] = {}

    def corrupted(ids, clock):
        nodes = render(ids, clock)
        for node in nodes:
            oid = int(node["legacyResourceId"])
            if not victims:
                victims[oid] = "amount"
            elif len(victims) == 1 and oid not in victims:
                victims[oid] = "currency"
            if victims.get(oid) == "amount":
                node["totalPriceSet"]["presentmentMoney"]["amount"] = "12,50"
            elif victims.get(oid) == "currency":
                node["presentmentCurrencyCode"] = "XXX"
        return nodes

    monkeypatch.setattr(admin, "render_nodes", corrupted)
    quarantine = Quarantine("shopify")
    gql = graphql_settings(settings, tmp_path)
    result = load(gql, running, quarantine)
    assert result.quarantined == 2
    reasons = {int(r["record_id"]): r["reason"] for r in quarantine.rows}
    assert set(reasons) == set(victims)
    assert any("total_price_set.presentment_money.amount='12,50' is not a decimal amount" in r for r in reasons.values())
    assert any("presentment_currency='XXX'" in r for r in reasons.values())
    assert not set(victims) & set(orders(gql))


def test_emulator_cost_errors_and_connections(settings, sandbox, start_emulator):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    url = f"{running.url}/admin/api/2026-01/graphql.json"
    headers = {"X-Shopify-Access-Token": running.emulator.access_token}

    def post(query, **variables):
        return httpx.post(url, json={"query": query, "variables": variables}, headers=headers).json()

    assert httpx.post(url, json={"query": "{ shop { name } }"}).status_code == 401
    body = post("query($n: Int!) { orders(first: $n, sortKey: UPDATED_AT, reverse: true) { "
                "pageInfo { hasNextPage endCursor } edges { cursor node { id updatedAt "
                "totalPriceSet { presentmentMoney { amount currencyCode } } } } } }", n=3)
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 3 * (1 + 1 + 1) and cost["actualQueryCost"] <= cost["requestedQueryCost"]
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    edges = body["data"]["orders"]["edges"]
    assert len(edges) == 3 and edges[0]["node"]["id"].startswith("gid://shopify/Order/")
    assert edges[0]["node"]["updatedAt"].endswith("Z") and edges[0]["node"]["updatedAt"] >= edges[1]["node"]["updatedAt"]
    nxt = post("query($c: String) { orders(first: 3, after: $c, sortKey: UPDATED_AT, reverse: true) "
               "{ nodes { id } } }", c=body["data"]["orders"]["pageInfo"]["endCursor"])
    assert edges[-1]["node"]["id"] not in {n["id"] for n in nxt["data"]["orders"]["nodes"]}
    too_big = post("{ orders(first: 250) { nodes { lineItems(first: 50) { nodes { id } } } } }")
    assert too_big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert "doesn't exist on type 'Order'" in post("{ orders(first: 1) { nodes { nope } } }")["errors"][0]["message"]
    assert "Syntax Error" in post("{ orders(first: 1) { nodes { id ")["errors"][0]["message"]
    empty = CostBucket(restore_rate=1.0, time_scale=1.0)
    empty.take(empty.status()["currentlyAvailable"])
    running.emulator.graphql.bucket = empty
    throttled = post("{ orders(first: 1) { nodes { id } } }")
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0


def test_shopify_api_setting_is_validated(monkeypatch):
    monkeypatch.setenv("FINANCE_SHOPIFY_API", "soap")
    with pytest.raises(SettingsError, match="FINANCE_SHOPIFY_API='soap'"):
        Settings.from_env()
    monkeypatch.setenv("FINANCE_SHOPIFY_API", "GraphQL")
    assert Settings.from_env().shopify_api == "graphql"
    monkeypatch.delenv("FINANCE_SHOPIFY_API")
    assert Settings.from_env().shopify_api == "rest"


def test_gift_cards_on_both_apis(settings, sandbox, start_emulator):
    """Scenario S12 on the wire: a gift card line (`gift_card` / `isGiftCard`, untaxed, not shipped)
    and a gift card tender (a `sale` through the `gift_card` gateway whose receipt names the card),
    the same over REST and GraphQL; the tender never reaches Shopify Payments balance transactions."""
    con = sandbox.connect()
    try:
        sold, card_id, value = con.execute(
            "select order_id, gift_card_id, initial_value from shopify_gift_cards where created_at <= ? "
            "order by created_at limit 1", [sandbox.clock]).fetchone()
        spent, txn_id, amount = con.execute(
            "select order_id, txn_id, amount from shopify_transactions where gateway = 'gift_card' "
            "and gift_card_id = ? and created_at <= ? order by created_at limit 1", [card_id, sandbox.clock]).fetchone()
        balance_txns = con.execute("select count(*) from shopify_balance_transactions where txn_id = ?", [txn_id]).fetchone()[0]
    finally:
        con.close()
    assert balance_txns == 0
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    base = f"{running.url}/admin/api/2026-01"
    headers = {"X-Shopify-Access-Token": running.emulator.access_token}

    order = httpx.get(f"{base}/orders/{sold}.json", headers=headers).json()["order"]
    (card_line,) = [li for li in order["line_items"] if li["gift_card"]]
    assert card_line["price"] == f"{value:.2f}" and card_line["tax_lines"] == []
    assert card_line["taxable"] is False and card_line["requires_shipping"] is False
    redeemed = httpx.get(f"{base}/orders/{spent}.json", headers=headers).json()["order"]
    assert "gift_card" in redeemed["payment_gateway_names"] and redeemed["financial_status"] == "paid"
    txns = httpx.get(f"{base}/orders/{spent}/transactions.json", headers=headers).json()["transactions"]
    (tender,) = [t for t in txns if t["id"] == txn_id]
    assert (tender["kind"], tender["gateway"], tender["status"], tender["amount"]) == ("sale", "gift_card", "success", f"{amount:.2f}")
    assert tender["receipt"]["gift_card_id"] == card_id and len(tender["receipt"]["gift_card_last_characters"]) == 4

    url = f"{base}/graphql.json"
    query = ("query($id: ID!) { node(id: $id) { ... on Order { paymentGatewayNames "
             "lineItems(first: 10) { nodes { isGiftCard requiresShipping taxable } } "
             "transactions(first: 10) { id kind gateway status receiptJson amountSet { presentmentMoney { amount } } } } } }")
    gql = {oid: httpx.post(url, json={"query": query, "variables": {"id": f"gid://shopify/Order/{oid}"}},
                           headers=headers).json()["data"]["node"] for oid in (sold, spent)}
    assert [n["isGiftCard"] for n in gql[sold]["lineItems"]["nodes"]].count(True) == 1
    assert gql[spent]["paymentGatewayNames"] == redeemed["payment_gateway_names"]
    (node,) = [t for t in gql[spent]["transactions"] if t["id"] == f"gid://shopify/OrderTransaction/{txn_id}"]
    assert (node["kind"], node["gateway"], node["status"]) == ("SALE", "gift_card", "SUCCESS")
    assert json.loads(node["receiptJson"]) == tender["receipt"]
    assert Decimal(node["amountSet"]["presentmentMoney"]["amount"]) == amount
