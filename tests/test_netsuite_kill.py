"""kill -9s of the NetSuite publisher at random moments — ten over REST (the default), five more over
SOAP — then a clean run: every customer, sales order and invoice exactly once, equal to the marts,
nothing left pending."""
from __future__ import annotations

import pytest

from conftest import make_settings
from finance_pipeline.platforms.netsuite.emulator import NetSuiteEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from publish_kill import kill_trials, pending_keys
from xero_fixtures import build_marts, mart_rows, set_line_quantity


@pytest.mark.parametrize("kind,trials", [("rest", 10), ("soap", 5)])
def test_kill_9_at_random_moments_then_rerun(tmp_path, kind, trials):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=120, n_customers=25)
    expected = made["invoices"] - made["voided"]
    running = serve(NetSuiteEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    emulator = running.emulator
    # each write answers after it committed: the kill often lands between NetSuite's commit and the
    # ledger's 'done' (REST: per record; SOAP: per upsertList of up to 100)
    emulator.write_delay_s = 0.1 if kind == "rest" else 0.4  # 16 REST writes a trial outlast the 1.5 s kill
    marts = mart_rows(settings.warehouse_path)
    wanted = {"invoice": {n for n, m in marts.items() if m["status"] != "voided"}}
    wanted["salesOrder"] = {f"SO-{n}" for n in wanted["invoice"]}

    def no_duplicates(trial: int) -> None:
        for record_type, keys in wanted.items():
            ext = [d["externalId"] for d in emulator.records(record_type)]
            assert len(ext) == len(set(ext)) and set(ext) <= keys, (trial, record_type)
        # the marts move on between crashes: every trial has updates to send, not only what is left
        for n in range(8):
            set_line_quantity(settings.warehouse_path, f"INV-{1001 + (trial * 8 + n) % 100:04d}", 1,
                              20 + trial)

    try:
        report = kill_trials(tmp_path, settings, running, "netsuite", "finance_pipeline.platforms.netsuite.publish",
                             trials=trials, min_delay=0.0, max_delay=1.5 if kind == "rest" else 2.0,
                             seed=3 if kind == "rest" else 4, extra_env={"NETSUITE_TRANSPORT": kind},
                             progress=lambda: emulator.counters["requests"], after_kill=no_duplicates)
        assert report.killed_running >= trials * 0.7, report
        assert report.pending_seen >= 2, report  # kills did land between a write and its outcome
        final = report.final
        assert final["ok"] and final["mismatch_count"] == 0, final
        for record_type, keys in wanted.items():
            docs = emulator.records(record_type)
            assert len(docs) == len(keys) == expected and {d["externalId"] for d in docs} == keys
        marts = mart_rows(settings.warehouse_path)  # as edited during the trials
        for doc in emulator.records("invoice"):
            m = marts[doc["externalId"]]
            assert (doc["total"], doc["taxTotal"], doc["dueDate"]) == (m["total_amount"], m["tax_amount"],
                                                                       m["due_on"].isoformat())
        assert pending_keys(settings.warehouse_path, "netsuite") == []
        creds = emulator.credentials()
        logs = report.logs()
        for secret in (creds["consumer_secret"], creds["token_secret"], creds["private_key"].splitlines()[1]):
            assert secret not in logs
    finally:
        running.stop()
