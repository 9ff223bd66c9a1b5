"""The shared publish ledger and publish mechanics (destination-agnostic; Xero is the first user)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from finance_pipeline.http.client import ApiError
from finance_pipeline.publish import (
    Counts, Desired, Outcome, PublishLedger, Rejected, Write, content_hash, idempotency_key, resolve_unknown,
    write_batches, write_each,
)


@pytest.fixture
def ledger(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield PublishLedger(con, "quickbooks", run_id="run-1").ensure_schema()
    con.close()


def test_content_hash_is_stable_and_money_exact():
    a = {"Total": Decimal("10.50"), "Date": date(2025, 6, 1), "Lines": [{"Qty": 2, "Unit": Decimal("5.25")}]}
    b = {"Lines": [{"Unit": Decimal("5.250"), "Qty": 2}], "Date": "2025-06-01", "Total": Decimal("10.5")}
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash({**a, "Total": Decimal("10.51")})
    assert content_hash({"x": Decimal("0.00")}) == content_hash({"x": Decimal("-0")})


def test_plan_and_marks(ledger):
    ledger.mark_pending("invoice", "A", "h1")
    ledger.mark_done("invoice", "A", "h1", "remote-A")
    ledger.mark_pending_many("invoice", [("B", "h1", None), ("C", "h1", None), ("D", "h1", None)])
    ledger.mark_failed("invoice", "B", "h1", "Invoice # must be unique.")
    ledger.mark_done("invoice", "C", "h1", "remote-C")
    ledger.mark_pending("invoice", "C", "h2", remote_id="remote-C")  # an update in flight
    ledger.mark_failed("invoice", "C", "h2", "Invoice not of valid status for modification")

    plan = ledger.plan("invoice", [("A", "h1"), ("B", "h1"), ("C", "h2"), ("D", "h1"), ("E", "h1"), ("A2", "x")])
    assert plan.unchanged == ["A"]
    assert sorted(plan.new) == ["A2", "B", "E"]  # failed without a remote id is posted again as new
    assert [e.business_key for e in plan.changed] == ["C"] and plan.changed[0].remote_id == "remote-C"
    assert [e.business_key for e in plan.unresolved] == ["D"]  # pending: never re-posted blindly
    assert [e.business_key for e in ledger.pending()] == ["D"]

    c = ledger.entry("invoice", "C")
    assert (c.status, c.remote_id, c.attempts, c.content_hash) == ("failed", "remote-C", 2, "h2")
    assert "modification" in c.last_error
    assert ledger.entry("invoice", "A").last_error is None
    events = [(e["business_key"], e["event"]) for e in ledger.log("invoice")]
    assert events.count(("C", "pending")) == 2 and ("B", "failed") in events and len(events) == 9
    assert all(e["run_id"] == "run-1" for e in ledger.log())
    other = PublishLedger(ledger.con, "netsuite")  # destinations do not see each other
    assert other.entries("invoice") == {} and other.pending() == []


def test_resolve_unknown_looks_up_before_anything_is_posted(ledger):
    ledger.mark_pending_many("invoice", [("P-same", "h", None), ("P-diff", "h", None), ("P-lost", "h", None)])
    desired = {k: Desired(k, "h", k) for k in ("P-same", "P-diff", "P-lost", "N-there", "N-new")}
    remote = {"P-same": {"id": "r1", "v": "h"}, "P-diff": {"id": "r2", "v": "old"}, "N-there": {"id": "r3", "v": "h"}}
    asked: list[list[str]] = []

    def find(keys):
        asked.append(keys)
        return {k: remote[k] for k in keys if k in remote}

    counts = Counts()
    resolve_unknown(ledger, "invoice", desired, find, remote_id_of=lambda r: r["id"],
                    is_current=lambda r, want: r["v"] == want.content_hash, counts=counts, batch_size=2)
    assert sum(len(a) for a in asked) == 5 and max(len(a) for a in asked) == 2
    assert (counts.recovered, counts.adopted) == (3, 1)
    plan = ledger.plan("invoice", [(k, "h") for k in desired])
    assert sorted(plan.unchanged) == ["N-there", "P-same"]
    assert [(e.business_key, e.remote_id) for e in plan.changed] == [("P-diff", "r2")]  # update, not create
    assert sorted(plan.new) == ["N-new", "P-lost"]
    assert plan.unresolved == []


def test_write_batches_protocol(ledger):
    writes = [Write("create", f"K{i}", "h", None, {"n": i}) for i in range(5)]
    seen_pending: list[int] = []

    def send(batch):
        seen_pending.append(len(ledger.pending("invoice")))  # marked pending (committed) before the send
        if batch[0].key == "K4":
            raise Rejected("Organisation is not subscribed to currency JPY")
        return [Outcome(True, f"r-{w.key}") if w.key != "K1" else Outcome(False, error="bad AccountCode")
                for w in batch]

    counts, errors = Counts(), []
    write_batches(ledger, "invoice", writes, send, counts=counts, errors=errors, batch_size=2)
    assert seen_pending == [2, 2, 1]
    assert (counts.created, counts.failed) == (3, 2)
    assert {e.key for e in errors} == {"K1", "K4"}
    assert ledger.entry("invoice", "K0").remote_id == "r-K0" and ledger.entry("invoice", "K4").status == "failed"

    def unreachable(batch):
        raise ApiError("x", "POST", "http://127.0.0.1/x", 503, "busy")

    counts = Counts()
    write_batches(ledger, "invoice", [Write("update", "K0", "h2", "r-K0", {})], unreachable, counts=counts,
                  errors=[], batch_size=2)
    assert counts.unresolved == 1 and ledger.entry("invoice", "K0").status == "pending"  # fate unknown

    def unauthorised(batch):
        raise ApiError("x", "POST", "http://127.0.0.1/x", 401, "")

    with pytest.raises(ApiError):
        write_batches(ledger, "invoice", [Write("create", "Z", "h", None, {})], unauthorised, counts=Counts(),
                      errors=[], batch_size=2)



def test_write_each_protocol(ledger):
    """One request per record, the ledger marked per group: every key of a group pending (committed)
    before its first request; each answer recorded on its own (done, refused, or left pending when
    no definitive answer came); a 401 stops the run after recording the answers already in."""
    writes = [Write("create", f"E{i}", "h", None, {"n": i}) for i in range(5)]
    pending_at_send: list[set[str]] = []

    def send(w):
        pending_at_send.append({e.business_key for e in ledger.pending("invoice")})
        if w.key == "E1":
            return Outcome(False, error="bad AccountCode")
        if w.key == "E2":
            raise Rejected("Organisation is not subscribed to currency JPY")
        if w.key == "E3":
            raise ApiError("x", "POST", "http://127.0.0.1/x", 503, "busy")
        return Outcome(True, f"r-{w.key}")

    counts, errors = Counts(), []
    write_each(ledger, "invoice", writes, send, counts=counts, errors=errors, group_size=3)
    assert pending_at_send[0] == {"E0", "E1", "E2"} and pending_at_send[3] == {"E3", "E4"}
    assert (counts.created, counts.failed, counts.unresolved) == (2, 2, 1)
    assert {e.key for e in errors} == {"E1", "E2", "E3"}
    status = {k: ledger.entry("invoice", k).status for k in ("E0", "E1", "E2", "E3", "E4")}
    assert status == {"E0": "done", "E1": "failed", "E2": "failed", "E3": "pending", "E4": "done"}
    assert ledger.entry("invoice", "E4").remote_id == "r-E4"

    def unauthorised_second(w):
        if w.key == "F1":
            raise ApiError("x", "POST", "http://127.0.0.1/x", 401, "")
        return Outcome(True, f"r-{w.key}")

    with pytest.raises(ApiError):
        write_each(ledger, "invoice", [Write("create", f"F{i}", "h", None, {}) for i in range(3)],
                   unauthorised_second, counts=Counts(), errors=[], group_size=10)
    assert ledger.entry("invoice", "F0").status == "done"  # answered before the 401: recorded
    assert {ledger.entry("invoice", k).status for k in ("F1", "F2")} == {"pending"}


def test_idempotency_keys():
    a = idempotency_key("xero-invoices", [("INV-1", "h1", None), ("INV-2", "h2", None)])
    assert a == idempotency_key("xero-invoices", [("INV-2", "h2", None), ("INV-1", "h1", None)])
    assert a != idempotency_key("xero-invoices", [("INV-1", "h1", "remote"), ("INV-2", "h2", None)])
    assert len(a) <= 128


def test_a_batch_element_without_an_answer_stays_pending_on_its_own(ledger):
    # e.g. a $batch reply that holds no part for one request: that key is left for the next run's
    # look-up, the others of the batch keep their answers
    def send_batch(batch: list[Write]) -> list[Outcome]:
        answers = {"A": Outcome(True, "remote-A"), "B": Outcome(False, error="no part", unresolved=True),
                   "C": Outcome(False, error="Invalid value passed for customer_id"), "D": Outcome(True, "remote-D")}
        return [answers[w.key] for w in batch]

    counts, errors = Counts(), []
    writes = [Write("create", k, "h1", None, {}) for k in "ABCD"]
    write_batches(ledger, "invoice", writes, send_batch, counts=counts, errors=errors, batch_size=50)
    entries = ledger.entries("invoice")
    assert {k: e.status for k, e in entries.items()} == {"A": "done", "B": "pending", "C": "failed", "D": "done"}
    assert entries["D"].remote_id == "remote-D" and (counts.created, counts.unresolved, counts.failed) == (2, 1, 1)
    assert [e.key for e in errors] == ["B", "C"]
