"""The Stripe emulator speaks Stripe's wire format and renders the world as of the sandbox clock."""
from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from finance_pipeline.platforms.stripe.emulator import StripeEmulator
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc


@pytest.fixture
def stripe_em(sandbox, start_emulator):
    return start_emulator(StripeEmulator, sandbox, time_scale=30.0)


def http(running, key: str | None = None) -> httpx.Client:
    key = key or running.emulator.api_key
    return httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def list_all(client: httpx.Client, path: str, **params) -> list[dict]:
    out, query = [], {"limit": 100, **params}
    while True:
        body = client.get(path, params=query).json()
        out += body["data"]
        if not body["has_more"]:
            return out
        query["starting_after"] = body["data"][-1]["id"]


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def jump(sandbox: Sandbox, to: datetime) -> None:
    sandbox.advance((to - sandbox.clock).total_seconds() / 3600)


def test_list_envelope_order_and_shapes(stripe_em, sandbox):
    c = http(stripe_em)
    r = c.get("/v1/charges")
    assert r.status_code == 200
    assert r.headers["request-id"].startswith("req_")
    body = r.json()
    assert set(body) == {"object", "data", "has_more", "url"}
    assert body["object"] == "list" and body["url"] == "/v1/charges" and body["has_more"] is True
    assert len(body["data"]) == 10  # default limit
    charges = list_all(c, "/v1/charges")
    keys = [(ch["created"], ch["id"]) for ch in charges]
    assert keys == sorted(keys, reverse=True), "newest first, id desc on ties"
    with sandbox.connect() as con:
        n = con.execute("select count(*) from stripe_charges where created <= ?", [sandbox.clock]).fetchone()[0]
    assert len(charges) == n and len({ch["id"] for ch in charges}) == n
    ch = next(x for x in charges if x["status"] == "succeeded")
    assert ch["object"] == "charge" and ch["livemode"] is False
    assert isinstance(ch["amount"], int) and ch["currency"] == ch["currency"].lower()
    assert ch["paid"] and ch["captured"] and ch["amount_captured"] == ch["amount"]
    assert ch["balance_transaction"].startswith("txn_") and ch["customer"].startswith("cus_")
    assert set(ch["metadata"]) == {"order_id", "order_name", "invoice_number"}
    assert ch["metadata"]["invoice_number"].startswith("INV-")
    assert ch["payment_method_details"]["card"]["country"]
    assert "refunds" not in ch  # expandable only, as in current API versions
    failed = next(x for x in charges if x["status"] == "failed")
    assert failed["failure_code"] and failed["failure_message"] and failed["balance_transaction"] is None
    assert failed["paid"] is False and failed["outcome"]["type"] == "issuer_declined"


def test_limit_bounds_and_cursors(stripe_em):
    c = http(stripe_em)
    for bad in (0, 101, "x"):
        r = c.get("/v1/charges", params={"limit": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert len(c.get("/v1/charges", params={"limit": 100}).json()["data"]) == 100
    everything = list_all(c, "/v1/charges")
    page = c.get("/v1/charges", params={"limit": 5, "starting_after": everything[9]["id"]}).json()
    assert [x["id"] for x in page["data"]] == [x["id"] for x in everything[10:15]]
    back = c.get("/v1/charges", params={"limit": 5, "ending_before": everything[10]["id"]}).json()
    assert [x["id"] for x in back["data"]] == [x["id"] for x in everything[5:10]] and back["has_more"]
    last = c.get("/v1/charges", params={"limit": 100, "starting_after": everything[-3]["id"]}).json()
    assert len(last["data"]) == 2 and last["has_more"] is False
    r = c.get("/v1/charges", params={"starting_after": "ch_doesnotexist"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "resource_missing" and r.json()["error"]["param"] == "starting_after"
    r = c.get("/v1/charges", params={"starting_after": everything[0]["id"], "ending_before": everything[3]["id"]})
    assert r.status_code == 400
    assert c.get("/v1/charges", params={"colour": "red"}).json()["error"]["code"] == "parameter_unknown"


def test_created_filters(stripe_em):
    c = http(stripe_em)
    everything = list_all(c, "/v1/charges")
    mid = everything[len(everything) // 2]["created"]
    gte = list_all(c, "/v1/charges", **{"created[gte]": mid})
    gt = list_all(c, "/v1/charges", **{"created[gt]": mid})
    lt = list_all(c, "/v1/charges", **{"created[lt]": mid})
    lte = list_all(c, "/v1/charges", **{"created[lte]": mid})
    exact = list_all(c, "/v1/charges", created=mid)
    assert {x["id"] for x in gte} == {x["id"] for x in everything if x["created"] >= mid}
    assert {x["id"] for x in gt} == {x["id"] for x in everything if x["created"] > mid}
    assert {x["id"] for x in lt} == {x["id"] for x in everything if x["created"] < mid}
    assert {x["id"] for x in lte} == {x["id"] for x in everything if x["created"] <= mid}
    assert exact and all(x["created"] == mid for x in exact)
    both = list_all(c, "/v1/charges", **{"created[gte]": mid, "created[lt]": mid + 86400 * 10})
    assert all(mid <= x["created"] < mid + 864000 for x in both)
    # a cursor outside the filtered list still positions the page (Stripe pages by object)
    outside = next(x for x in everything if x["created"] < mid)
    page = c.get("/v1/charges", params={"created[gte]": mid, "starting_after": outside["id"]}).json()
    assert page["data"] == []
    customer = everything[0]["customer"]
    assert all(x["customer"] == customer for x in list_all(c, "/v1/charges", customer=customer))
    assert c.get("/v1/charges", params={"created[since]": 1}).status_code == 400


def test_balance_transactions_by_payout_match_the_world(stripe_em, sandbox):
    c = http(stripe_em)
    payouts = list_all(c, "/v1/payouts")
    assert payouts and all(p["status"] in ("paid", "in_transit") for p in payouts)
    with sandbox.connect() as con:
        for payout in payouts[:5]:
            bts = list_all(c, "/v1/balance_transactions", payout=payout["id"])
            truth = {r[0] for r in con.execute(
                "select bt_id from stripe_balance_transactions where payout_id = ?", [payout["id"]]).fetchall()}
            assert {b["id"] for b in bts} == truth
            own = [b for b in bts if b["type"] == "payout"]
            assert [b["id"] for b in own] == [payout["balance_transaction"]]
            assert own[0]["amount"] == -payout["amount"]
            assert sum(b["net"] for b in bts) == 0  # payout = sum of what it carried (R1)
            assert "payout" not in bts[0]  # real balance transactions do not name their payout
    bt = list_all(c, "/v1/balance_transactions", type="charge")[0]
    assert bt["object"] == "balance_transaction" and bt["net"] == bt["amount"] - bt["fee"]
    assert bt["fee_details"][0]["type"] == "stripe_fee" and bt["fee_details"][0]["amount"] == bt["fee"]
    assert bt["currency"] == "gbp" and bt["reporting_category"] == "charge"
    converted = list_all(c, "/v1/balance_transactions", type="charge", currency="GBP")
    assert any(isinstance(b["exchange_rate"], float) for b in converted)  # R5: converted to the GBP balance
    assert all(b["type"] == "charge" for b in converted)
    source = list_all(c, "/v1/balance_transactions", source=bt["source"])
    assert [b["id"] for b in source] == [bt["id"]]
    r = c.get("/v1/balance_transactions", params={"payout": "po_unknown"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "resource_missing"


def test_retrieve_expand_and_missing(stripe_em):
    c = http(stripe_em)
    charge = c.get("/v1/charges", params={"limit": 100}).json()["data"]
    charge = next(x for x in charge if x["status"] == "succeeded")
    got = c.get(f"/v1/charges/{charge['id']}", params={"expand[]": "balance_transaction"}).json()
    assert got["balance_transaction"]["id"] == charge["balance_transaction"]
    assert got["balance_transaction"]["source"] == charge["id"]
    listed = c.get("/v1/charges", params={"limit": 3, "expand[0]": "data.balance_transaction"}).json()
    assert all(isinstance(x["balance_transaction"], (dict, type(None))) for x in listed["data"])
    refunded = next(iter(list_all(c, "/v1/refunds")))
    ch = c.get(f"/v1/charges/{refunded['charge']}", params={"expand[]": "refunds"}).json()
    assert ch["refunds"]["object"] == "list" and refunded["id"] in [r["id"] for r in ch["refunds"]["data"]]
    assert ch["amount_refunded"] == sum(r["amount"] for r in ch["refunds"]["data"])
    r = c.get("/v1/charges/ch_nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "resource_missing"
    assert c.get("/v1/charges", params={"expand[]": "data.nothing"}).status_code == 400
    assert c.get("/v1/unknown").status_code == 404
    assert c.get("/v1/unknown").json()["error"]["type"] == "invalid_request_error"


def test_auth(stripe_em):
    r = httpx.get(f"{stripe_em.url}/v1/charges")
    assert r.status_code == 401 and "did not provide an API key" in r.json()["error"]["message"]
    r = http(stripe_em, key="sk_test_wrong_key_000000000").get("/v1/charges")
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    assert "sk_test_wrong_key_000000000" not in r.text  # Stripe masks the key it rejects
    basic = base64.b64encode(f"{stripe_em.emulator.api_key}:".encode()).decode()
    assert httpx.get(f"{stripe_em.url}/v1/charges", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    creds = stripe_em.emulator.credentials()
    assert creds["api_key"].startswith("sk_test_") and creds["webhook_secret"].startswith("whsec_")
    assert StripeEmulator(stripe_em.emulator.sandbox).credentials() == creds  # deterministic from the seed


def test_rate_limit_429_when_hammered(sandbox, start_emulator):
    running = start_emulator(StripeEmulator, sandbox, time_scale=1.0)  # the real 25 requests/s
    statuses: list[int] = []
    refused: list[httpx.Response] = []
    lock = threading.Lock()

    def hammer():
        with http(running) as c:
            for _ in range(20):
                r = c.get("/v1/payouts", params={"limit": 1})
                with lock:
                    statuses.append(r.status_code)
                    if r.status_code == 429:
                        refused.append(r)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) >= 25 and refused
    error = refused[0].json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "rate_limit"
    assert refused[0].headers["stripe-should-retry"] == "true"
    assert running.emulator.counters["over_limit"] == len(refused)


def test_idempotent_refund_post(stripe_em):
    c = http(stripe_em)
    charge = next(x for x in list_all(c, "/v1/charges") if x["status"] == "succeeded" and not x["refunded"])
    form = {"charge": charge["id"], "amount": "100", "reason": "requested_by_customer", "metadata[note]": "test"}
    first = c.post("/v1/refunds", data=form, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == 200, first.text
    refund = first.json()
    assert refund["object"] == "refund" and refund["amount"] == 100 and refund["charge"] == charge["id"]
    assert refund["metadata"] == {"note": "test"}
    again = c.post("/v1/refunds", data=form, headers={"Idempotency-Key": "key-1"})
    assert again.json() == refund and again.headers["idempotent-replayed"] == "true"
    other = c.post("/v1/refunds", data={**form, "amount": "200"}, headers={"Idempotency-Key": "key-1"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    second = c.post("/v1/refunds", data=form, headers={"Idempotency-Key": "key-2"}).json()
    assert second["id"] != refund["id"]
    assert c.get(f"/v1/refunds/{refund['id']}").json() == refund
    too_much = c.post("/v1/refunds", data={"charge": charge["id"], "amount": str(charge["amount"])},
                      headers={"Idempotency-Key": "key-3"})
    assert too_much.status_code == 400 and too_much.json()["error"]["param"] == "amount"
    # a validation failure is not saved: the same key may be used again, correctly
    ok = c.post("/v1/refunds", data={"charge": charge["id"], "amount": "50"}, headers={"Idempotency-Key": "key-3"})
    assert ok.status_code == 200
    assert c.post("/v1/refunds", data={"amount": "5"}).json()["error"]["code"] == "parameter_missing"


def test_as_of_clock(stripe_em, sandbox):
    """Advance the clock: new charges appear, a dispute moves to under_review and closes, a
    payout turns paid, balance transactions become available, and the events say so."""
    c = http(stripe_em)
    with sandbox.connect() as con:
        opened, closed, dispute_id, outcome, charge_id = con.execute(
            "select created, closed_at, dispute_id, outcome, charge_id from stripe_disputes "
            "where created > ? order by created limit 1", [sandbox.clock]).fetchone()
    jump(sandbox, opened - timedelta(hours=1))
    before = {x["id"] for x in list_all(c, "/v1/charges")}
    assert c.get(f"/v1/disputes/{dispute_id}").status_code == 404
    assert c.get(f"/v1/charges/{charge_id}").json()["disputed"] is False

    jump(sandbox, opened + timedelta(hours=1))
    dispute = c.get(f"/v1/disputes/{dispute_id}").json()
    assert dispute["status"] == "needs_response" and dispute["charge"] == charge_id
    assert [b["reporting_category"] for b in dispute["balance_transactions"]] == ["dispute"]
    assert dispute["balance_transactions"][0]["fee"] == 1500  # the £15 dispute fee (P6)
    assert c.get(f"/v1/charges/{charge_id}").json()["disputed"] is True
    created = list_all(c, "/v1/events", type="charge.dispute.created")
    assert created[0]["data"]["object"]["id"] == dispute_id
    assert created[0]["data"]["object"]["status"] == "needs_response"
    assert c.get(f"/v1/events/{created[0]['id']}").json() == created[0]

    jump(sandbox, opened + timedelta(days=6))
    assert c.get(f"/v1/disputes/{dispute_id}").json()["status"] == "under_review"
    updated = list_all(c, "/v1/events", type="charge.dispute.updated")[0]
    assert updated["data"]["previous_attributes"]["status"] == "needs_response"

    jump(sandbox, closed + timedelta(hours=1))
    after = c.get(f"/v1/disputes/{dispute_id}").json()
    assert after["status"] == outcome
    categories = [b["reporting_category"] for b in after["balance_transactions"]]
    assert categories == (["dispute", "dispute_reversal"] if outcome == "won" else ["dispute"])
    closed_events = list_all(c, "/v1/events", **{"types[]": ["charge.dispute.closed"]})
    assert closed_events[0]["data"]["object"]["status"] == outcome
    assert set(before) < {x["id"] for x in list_all(c, "/v1/charges")}, "new charges appeared"

    # payouts: in_transit until the arrival date, then paid
    with sandbox.connect() as con:
        payout_id, p_created, arrival = con.execute(
            "select payout_id, created, arrival_date from stripe_payouts where created > ? order by created limit 1",
            [sandbox.clock]).fetchone()
    jump(sandbox, p_created + timedelta(minutes=1))
    payout = c.get(f"/v1/payouts/{payout_id}").json()
    assert payout["status"] == "in_transit" and payout["arrival_date"] == epoch(arrival)
    assert payout_id in {p["id"] for p in list_all(c, "/v1/payouts", status="in_transit")}
    jump(sandbox, arrival)
    assert c.get(f"/v1/payouts/{payout_id}").json()["status"] == "paid"
    paid_events = list_all(c, "/v1/events", type="payout.paid")
    assert paid_events[0]["data"]["object"]["id"] == payout_id
    assert paid_events[0]["created"] == epoch(arrival)

    # balance transactions: pending until available_on
    pending = list_all(c, "/v1/balance_transactions", **{"created[gte]": epoch(sandbox.clock) - 86400})
    assert {b["status"] for b in pending if b["available_on"] > epoch(sandbox.clock)} <= {"pending"}


def test_events_window_and_filters(stripe_em, sandbox):
    c = http(stripe_em)
    clock = epoch(sandbox.clock)
    events = list_all(c, "/v1/events")
    assert events and all(clock - 30 * 86400 < e["created"] <= clock for e in events)
    assert len({e["id"] for e in events}) == len(events)
    assert all(e["object"] == "event" and e["id"].startswith("evt_") for e in events)
    charges = list_all(c, "/v1/events", type="charge.*")
    assert charges and all(e["type"].startswith("charge.") for e in charges)
    several = list_all(c, "/v1/events", **{"types[]": ["payout.created", "payout.paid"]})
    assert {e["type"] for e in several} == {"payout.created", "payout.paid"}
    # an event's object is the object as it was then
    created = next(e for e in several if e["type"] == "payout.created")
    assert created["data"]["object"]["status"] == "in_transit"
    assert c.get("/v1/events", params={"type": "payout.paid", "types[]": "payout.created"}).status_code == 400
    # ids are deterministic across emulator instances
    again = StripeEmulator(sandbox)
    assert again.render_aligned_many([("charge", "x", sandbox.clock)]) == [None]
    # older than 30 days: gone
    old = events[-1]
    jump(sandbox, sandbox.clock + timedelta(days=31))
    assert c.get(f"/v1/events/{old['id']}").status_code == 404


def test_duplicate_page_fault_repeats_items(sandbox, start_emulator):
    running = start_emulator(StripeEmulator, sandbox, time_scale=30.0, fault_rate=1.0,
                             read_faults=("duplicate_page",))
    c = http(running)
    first = c.get("/v1/charges", params={"limit": 10}).json()
    nxt = c.get("/v1/charges", params={"limit": 10, "starting_after": first["data"][-1]["id"]}).json()
    overlap = {x["id"] for x in first["data"]} & {x["id"] for x in nxt["data"]}
    assert overlap, "the duplicated page repeats the end of the previous one"
    assert running.emulator.faults["duplicate_page"] == 2
