"""The webhook inbox on the PostgreSQL warehouse (FINANCE_WAREHOUSE=postgres): `ops.webhook_inbox` on a
real server, with the SQLite inbox's API and guarantees — a replay is stored once and counted, events go
pending → claimed → consumed or released, concurrent writers lose nothing, a commit is durable before the
receiver answers — and the receiver, the sensor and `webhooks status` use it, creating no inbox.sqlite."""
from __future__ import annotations

import json
import threading
from datetime import datetime

import httpx
import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from finance_pipeline.defs import sensors as sensors_mod
from finance_pipeline.settings import PostgresSettings, Secret
from finance_pipeline.webhooks import receiver
from finance_pipeline.webhooks.inbox import (PG_TABLE, Inbox, InboxEvent, InboxWriter, inbox_path, open_inbox,
                                             open_inbox_writer)
import pg_helpers
from pg_helpers import pg_env, pg_query
from tests.conftest import make_settings

pg_server = pg_helpers.pg_server  # the session's server (a fixture)

pytestmark = pytest.mark.timeout(300)


def _pg_settings(pg, database: str) -> PostgresSettings:
    return PostgresSettings(pg.host, pg.port, pg.user, Secret(pg.password, "FINANCE_PG_PASSWORD"), database, "disable")


@pytest.fixture
def pg_db(pg_server, request):
    """A fresh database for the test (named after it)."""
    return pg_server.create_database("inbox_" + request.node.name.lower()[:40])


@pytest.fixture
def pg_settings(pg_server, pg_db, tmp_path, monkeypatch):
    """Settings naming the server, and the same in the environment (what the sensor and the CLI read)."""
    for key, value in {**pg_env(pg_server, pg_db), "FINANCE_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    return make_settings(tmp_path, warehouse="postgres", postgres=PostgresSettings.from_env())


def _event(platform: str, event_id: str, body: bytes = b'{"id": 1}', topic: str = "orders/updated") -> InboxEvent:
    return InboxEvent(platform, event_id, topic, {"content-type": "application/json", "x-sig": "abc%?'"}, body)


def _no_sqlite(data_dir) -> None:
    assert not inbox_path(data_dir).exists()
    assert not (data_dir / "webhooks").exists()  # not even the directory (sandbox emulators keep their own files)


def test_schema_and_replays_counted_once(pg_server, pg_db, pg_settings, tmp_path):
    raw = b'{"amount": "12.50", "bytes": "\xc3\xa9\x00"}'
    with open_inbox(pg_settings) as inbox:
        assert inbox.postgres and inbox.path is None and pg_server.password not in inbox.where
        assert inbox.add([_event("shopify", "a", raw), _event("shopify", "b")]) == [True, True]
        assert inbox.add([_event("shopify", "a", raw)]) == [False]  # the platform retried
        assert inbox.add([_event("stripe", "a"), _event("stripe", "c"), _event("stripe", "c")]) == [True, True, False]
        assert inbox.count() == 4 and inbox.count("deliveries = ?", [2]) == 2
        assert inbox.ids("shopify") == {("shopify", "a"), ("shopify", "b")}
        row = inbox.row("shopify", "a")
    assert row["body"] == raw and isinstance(row["body"], bytes)
    assert json.loads(row["headers"]) == {"content-type": "application/json", "x-sig": "abc%?'"}
    assert row["deliveries"] == 2 and row["topic"] == "orders/updated" and row["batch"] is None
    assert datetime.fromisoformat(row["received_at"]).utcoffset().total_seconds() == 0
    assert row["claimed_at"] is None and row["consumed_at"] is None
    # what is on the server: the table, its types, the rows
    types = dict(pg_query(pg_server, pg_db, "select column_name, data_type from information_schema.columns "
                                          "where table_schema = 'ops' and table_name = 'webhook_inbox'"))
    assert types == {"seq": "bigint", "platform": "text", "event_id": "text", "topic": "text",
                     "received_at": "timestamp with time zone", "headers": "json", "body": "bytea",
                     "deliveries": "integer", "batch": "text", "claimed_at": "timestamp with time zone",
                     "consumed_at": "timestamp with time zone"}
    assert pg_query(pg_server, pg_db, f"select platform, event_id, deliveries from {PG_TABLE} order by seq") == [
        ("shopify", "a", 2), ("shopify", "b", 1), ("stripe", "a", 1), ("stripe", "c", 2)]
    assert bytes(pg_query(pg_server, pg_db, f"select body from {PG_TABLE} where event_id = 'a' "
                                          "and platform = 'shopify'")[0][0]) == raw
    _no_sqlite(tmp_path)


def test_claim_consume_release_lifecycle(pg_settings):
    with open_inbox(pg_settings) as inbox:
        inbox.add([_event("shopify", f"s{i}") for i in range(3)] + [_event("xero", "x1")])
        pending = inbox.pending_by_platform()
        assert set(pending) == {"shopify", "xero"} and pending["shopify"][0] == 3
        seqs = sorted(inbox.row("shopify", f"s{i}")["seq"] for i in range(3))
        assert pending["shopify"][1] == seqs[-1]

        assert inbox.claim("shopify", "b1", seqs[1]) == 2  # up to the second event only
        assert inbox.claim("shopify", "b-again", seqs[1]) == 0  # already claimed
        ((batch, (platform, claimed_at, n)),) = inbox.open_batches().items()
        assert (batch, platform, n) == ("b1", "shopify", 2)
        assert datetime.fromisoformat(claimed_at) == datetime.fromisoformat(inbox.row("shopify", "s0")["claimed_at"])
        assert inbox.pending_by_platform()["shopify"] == (1, seqs[2])

        assert inbox.release("b1") == 2  # the run failed
        assert inbox.open_batches() == {} and inbox.pending_by_platform()["shopify"] == (3, seqs[2])
        assert inbox.row("shopify", "s0")["claimed_at"] is None

        assert inbox.claim("shopify", "b2", seqs[2]) == 3
        assert inbox.consume("b2") == 3  # the run succeeded
        assert inbox.consume("b2") == 0 and inbox.release("b2") == 0  # consumed stays consumed
        assert inbox.count("consumed_at is not null") == 3 and inbox.open_batches() == {}

        assert inbox.consume_platform("xero") == 1
        assert inbox.row("xero", "x1")["batch"] == "recorded" and inbox.pending_by_platform() == {}


def test_concurrent_writers_lose_nothing_and_commit_durably(pg_server, pg_db, pg_settings):
    # a server whose default is asynchronous commit: the writer still waits for the WAL flush
    pg_query(pg_server, pg_db, f'alter database "{pg_db}" set synchronous_commit = off')
    writer = open_inbox_writer(pg_settings)
    second = InboxWriter(_pg_settings(pg_server, pg_db))  # another receiver process on the same server
    errors: list[BaseException] = []
    results: list[bool] = []

    def send(w: InboxWriter, k: int) -> None:
        try:
            for i in range(40):
                # every thread sends its own events and replays two shared ones
                events = [_event("stripe", f"t{k}-{i}"), _event("stripe", f"shared-{i % 2}")]
                results.extend(w.write(events))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    try:
        assert writer._con.execute("show synchronous_commit").fetchone() == ("on",)
        threads = [threading.Thread(target=send, args=(writer if k % 2 else second, k)) for k in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    finally:
        writer.close()
        second.close()
    assert errors == []
    assert len(results) == 8 * 40 * 2 and sum(results) == 8 * 40 + 2  # each shared event was new exactly once
    rows = dict(pg_query(pg_server, pg_db, f"select event_id, deliveries from {PG_TABLE}"))
    assert len(rows) == 8 * 40 + 2
    assert rows["shared-0"] + rows["shared-1"] == 8 * 40 and all(rows[f"t{k}-{i}"] == 1 for k in range(8)
                                                                 for i in range(40))
    assert writer.written + second.written == 8 * 40 * 2


def test_writer_survives_a_dropped_connection(pg_server, pg_db, pg_settings):
    writer = open_inbox_writer(pg_settings)
    try:
        assert writer.write([_event("shopify", "before")]) == [True]
        (pid,) = writer._con.execute("select pg_backend_pid()").fetchone()
        pg_query(pg_server, pg_db, "select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(Exception):  # this group is not stored: the receiver answers 503
            writer.write([_event("shopify", "lost")])
        assert writer.write([_event("shopify", "after")]) == [True]  # a new connection
    finally:
        writer.close()
    assert sorted(r[0] for r in pg_query(pg_server, pg_db, f"select event_id from {PG_TABLE}")) == ["after", "before"]


def test_receiver_stores_signed_deliveries_on_the_server(pg_server, pg_db, pg_settings, tmp_path):
    r = receiver.start(pg_settings)
    try:
        assert r.app.writer.postgres
        ep = r.app.endpoints["stripe"]
        headers, body = ep.sample(ep.secret.value, 3)
        url = f"{r.url}/webhooks/stripe"
        first = httpx.post(url, headers={**headers, "Authorization": "Bearer proxy-credential-xyz"},
                           content=body, timeout=10)
        assert first.status_code == 200 and first.content == b""
        # on the server as soon as the 200 arrived, seen from another connection
        ((event_id, stored, kept, deliveries),) = pg_query(
            pg_server, pg_db, f"select event_id, body, headers::text, deliveries from {PG_TABLE}")
        (expected_id, _, raw), = ep.events({k.lower(): v for k, v in headers.items()}, body)
        assert event_id == expected_id and bytes(stored) == raw and deliveries == 1
        assert "proxy-credential-xyz" not in kept and "stripe-signature" in json.loads(kept)
        assert httpx.post(url, headers=headers, content=body, timeout=10).status_code == 200  # a retry
        forged_headers, forged = ep.sample("whsec_not_the_secret", 4)
        assert httpx.post(url, headers=forged_headers, content=forged, timeout=10).status_code == ep.reject_status
    finally:
        r.stop()
    assert pg_query(pg_server, pg_db, f"select event_id, deliveries from {PG_TABLE}") == [(expected_id, 2)]
    _no_sqlite(tmp_path)


def test_sensor_and_status_read_the_server(pg_settings, tmp_path, capsys):
    from finance_pipeline import cli
    from finance_pipeline.definitions import defs

    with DagsterInstance.ephemeral() as instance:
        skipped = sensors_mod.webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(skipped, SkipReason) and "no new webhook events" in skipped.skip_message
        with open_inbox(pg_settings) as inbox:
            inbox.add([_event("shopify", "o1"), _event("shopify", "o2"), _event("xero", "x1")])
        (request,) = sensors_mod.webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs))
        assert request.tags["finance/platform"] == "shopify" and request.tags["finance/webhook_events"] == "2"
        batch = request.tags[sensors_mod.BATCH_TAG]
        with Inbox(pg_settings.warehouse_target) as inbox:
            assert inbox.count("batch = ?", [batch]) == 2
            assert inbox.count("platform = 'xero' and consumed_at is not null") == 1  # a destination: recorded
            # the batch's run has not appeared yet: nothing more is requested, nothing consumed
            assert sensors_mod.requests_for_inbox(inbox, instance, defs.resolve_asset_graph()) == []
            assert inbox.count("consumed_at is not null") == 1

    assert cli.main(["webhooks", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["inbox"].startswith(PG_TABLE) and status["events"] == 3 and status["consumed"] == 1
    assert status["in_runs"] == {batch: 2} and status["pending"] == {}
    _no_sqlite(tmp_path)
