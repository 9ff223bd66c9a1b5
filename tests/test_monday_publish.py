"""monday.com publisher against the emulator: one item per trade invoice, re-runs change nothing, only
changed items are updated, refused values quarantined, faults and a lost ledger never duplicate,
the complexity budget respected, dry run, read-back."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

import duckdb
import pytest

from conftest import make_settings
from finance_pipeline.platforms.monday import client as monday_client
from finance_pipeline.platforms.monday.emulator import MondayEmulator
from finance_pipeline.platforms.monday.publish import BOARD_NAME, load_board_invoices, publish_to_monday
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from xero_fixtures import build_marts

N = 140


@pytest.fixture
def board(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_marts(settings.warehouse_path, n_invoices=N, n_customers=20)
    running = serve(MondayEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"monday": running})
    yield settings, running
    running.stop()


def _publish(settings, **kw):
    return publish_to_monday(settings, runtime.connection(settings, "monday"), settings.warehouse_path, **kw)


def _sql(settings, sql, params=None):
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _items(emulator) -> dict[str, dict]:
    (board,) = emulator.boards()
    items = emulator.items(board["id"])
    names = Counter(i["name"] for i in items)
    assert max(names.values()) == 1, [n for n, c in names.items() if c > 1]  # never a duplicate
    return {i["name"]: i for i in items}


def _assert_board_equals_marts(settings, emulator, skip=()):
    items = _items(emulator)
    rows = _sql(settings, "SELECT invoice_number, total_amount, open_amount, status, currency, due_on "
                          "FROM marts.fct_invoices")
    assert set(items) == {r[0] for r in rows} - set(skip)
    for number, total, open_amount, status, currency, due_on in rows:
        if number in skip:
            continue
        values = items[number]["values"]
        assert Decimal(values["total"]) == total and Decimal(values["open_amount"]) == open_amount, number
        assert values["currency"] == currency and values["due_date"] == due_on.isoformat()
    assert sum(Decimal(i["values"]["total"]) for n, i in items.items()) == \
        sum(r[1] for r in rows if r[0] not in skip)  # to the cent


def test_publish_then_rerun_then_only_changed_items_are_updated(board):
    settings, running = board
    em = running.emulator
    first = _publish(settings)
    assert first.ok and first.created == N and first.read_back == N, first.summary()
    assert [b["name"] for b in em.boards()] == [BOARD_NAME]
    _assert_board_equals_marts(settings, em)
    statuses = Counter(i["values"]["status"] for i in _items(em).values())
    assert statuses["Voided"] == 1 and statuses["Unpaid"] > 0
    # batched: many items per request
    assert first.requests < N / 5, first.requests

    before = em.stats()
    second = _publish(settings)
    assert second.ok and second.unchanged == N and second.writes == 0
    assert em.stats()["items_created"] == before["items_created"] and "items_changed" not in em.stats()

    _sql(settings, "UPDATE marts.fct_invoices SET open_amount = 0, paid_amount = total_amount, status = 'paid' "
                   "WHERE invoice_number IN ('INV-1003', 'INV-1004')")
    _sql(settings, "DELETE FROM marts.fct_invoices WHERE invoice_number = 'INV-1010'")
    third = _publish(settings)
    assert third.ok and third.updated == 2 and third.voided == 1 and third.created == 0, third.summary()
    assert em.stats()["items_changed"] == 2 and em.stats()["items_deleted"] == 1
    items = _items(em)
    assert items["INV-1003"]["values"]["status"] == "Paid" and items["INV-1003"]["values"]["open_amount"] == "0.00"
    _assert_board_equals_marts(settings, em)


def test_payment_status_comes_from_rpt_payment_status(board):
    settings, running = board
    _sql(settings, "CREATE TABLE marts.rpt_payment_status AS SELECT invoice_number, 'disputed' AS payment_status "
                   "FROM marts.fct_invoices WHERE invoice_number = 'INV-1005'")
    result = _publish(settings)
    assert result.ok, result.summary()
    assert _items(running.emulator)["INV-1005"]["values"]["status"] == "Disputed"
    assert {inv.invoice_number: inv.label for inv in _load(settings)}["INV-1005"] == "Disputed"


def _load(settings):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return load_board_invoices(con)
    finally:
        con.close()


def test_refused_value_is_quarantined_with_mondays_message(board):
    settings, running = board
    _sql(settings, "UPDATE marts.fct_invoices SET status = 'written_off' WHERE invoice_number = 'INV-1020'")
    result = _publish(settings)
    assert not result.ok and result.failed == 1 and result.created == N - 1 and result.mismatches == []
    (error,) = result.errors
    assert error.key == "INV-1020" and "status label doesn't exist" in error.message
    assert error.message.startswith("ColumnValueException")
    rows = _sql(settings, "SELECT platform, reason FROM ops.quarantine WHERE platform = 'monday'")
    assert len(rows) == 1 and "Written off" in rows[0][1] and "possible statuses" in rows[0][1]
    _assert_board_equals_marts(settings, running.emulator, skip={"INV-1020"})
    # fixed in the marts: created on the next run, the rest untouched
    _sql(settings, "UPDATE marts.fct_invoices SET status = 'unpaid' WHERE invoice_number = 'INV-1020'")
    again = _publish(settings)
    assert again.ok and again.created == 1 and again.unchanged == N - 1


def test_faults_and_a_lost_ledger_never_duplicate(board):
    settings, running = board
    em = running.emulator
    em.config.fault_rate = 0.2
    result = _publish(settings)
    em.config.fault_rate = 0.0
    assert sum(em.faults.values()) > 3, em.faults
    for _ in range(2):  # anything left pending is resolved by the next run
        if result.ok:
            break
        result = _publish(settings)
    assert result.ok, result.summary()
    _assert_board_equals_marts(settings, em)
    # the ledger lost (restored warehouse): every item is found by name, nothing created
    _sql(settings, "DELETE FROM ops.publish_ledger WHERE destination = 'monday'")
    created = em.stats()["items_created"]
    adopted = _publish(settings)
    assert adopted.ok and adopted.created == 0 and adopted.of("item").adopted == N
    assert em.stats()["items_created"] == created


def test_complexity_budget_is_respected(board):
    settings, running = board
    em = running.emulator
    em.set_complexity_budget(600_000)  # ≈ 2 batches of 25 mutations per (compressed) minute
    result = _publish(settings)
    assert result.ok and result.created == N, result.summary()
    assert em.counters["complexity_refused"] <= 2, em.counters  # paced by the budget it reports, not by refusals


def test_dry_run_writes_nothing(board):
    settings, running = board
    result = _publish(settings, dry_run=True)
    assert result.dry_run["would_send"]["item.create"] == N and result.dry_run["would_send"]["board.create"] == 1
    assert running.emulator.boards() == [] and running.emulator.stats().get("items_created", 0) == 0
    assert _sql(settings, "SELECT COUNT(*) FROM ops.publish_ledger WHERE destination = 'monday'") == [(0,)]


def test_live_connection_names_the_missing_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("MONDAY_API_TOKEN", raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    with pytest.raises(SettingsError, match="MONDAY_API_TOKEN"):
        monday_client.live_connection(make_settings(tmp_path))
    monkeypatch.setenv("MONDAY_API_TOKEN", "tok-123")
    with pytest.raises(SettingsError, match="MONDAY_BOARD_ID"):
        monday_client.live_connection(make_settings(tmp_path))
    monkeypatch.setenv("MONDAY_BOARD_ID", "1234567890")
    conn = monday_client.live_connection(make_settings(tmp_path))
    assert conn.get("board_id") == "1234567890" and "tok-123" not in repr(conn.credentials)
