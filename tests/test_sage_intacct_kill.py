"""kill -9 of the Sage Intacct publisher at random moments (ten trials, the marts changing between
them), then a clean run: every Sales Invoice exactly once (document numbers unique), equal to the
marts, nothing left pending, no credential in the logs."""
from __future__ import annotations

from publish_kill import kill_trials, pending_keys

from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.platforms.sage_intacct.emulator import SageIntacctEmulator
from finance_pipeline.sandbox.store import Sandbox
from xero_fixtures import build_marts, mart_rows, set_line_quantity


def test_kill_9_at_random_moments_then_rerun(tmp_path, settings, start_emulator):
    made = build_marts(settings.warehouse_path, n_invoices=150, n_customers=25)
    expected = made["invoices"] - made["voided"]
    running = start_emulator(SageIntacctEmulator, Sandbox(settings.sandbox_dir), time_scale=settings.time_scale)
    emulator = running.emulator
    emulator.write_delay_s = 0.3  # each write request answers after it committed: kills land in between
    wanted = {n for n, m in mart_rows(settings.warehouse_path).items() if m["status"] != "voided"}

    def no_duplicates(trial: int) -> None:
        numbers = [d["DOCNO"] for d in emulator.documents()]
        assert len(numbers) == len(set(numbers)) and set(numbers) <= wanted, trial
        customers = [c["CUSTOMERID"] for c in emulator.customers()]
        assert len(customers) == len(set(customers)), trial
        for n in range(40):  # the marts move on between crashes: updates to send, not only what is left
            set_line_quantity(settings.warehouse_path, f"INV-{1001 + (trial * 40 + n) % 140:04d}", 1, 20 + trial)

    report = kill_trials(tmp_path, settings, running, "sage_intacct", "finance_pipeline.platforms.sage_intacct.publish",
                         trials=10, min_delay=0.0, max_delay=1.2, seed=5,
                         progress=lambda: emulator.counters["requests"], after_kill=no_duplicates)
    print("kill report:", report.killed_running, "killed,", report.finished_early, "finished early,",
          report.pending_seen, "left pending keys")
    assert report.killed_running >= 7, report
    assert report.pending_seen >= 2, report
    final = report.final
    assert final["ok"] and final["mismatch_count"] == 0, final
    docs = {d["DOCNO"]: d for d in emulator.documents()}
    assert len(emulator.documents()) == len(docs) == expected and set(docs) == wanted
    marts = mart_rows(settings.warehouse_path)
    for number, doc in docs.items():
        assert (doc["TRX_TOTAL"], doc["WHENDUE"]) == (str(marts[number]["total_amount"]),
                                                      wire.idate(marts[number]["due_on"])), number
    assert pending_keys(settings.warehouse_path, "sage_intacct") == []
    logs = report.logs()
    creds = emulator.credentials()
    assert creds["sender_password"] not in logs and creds["user_password"] not in logs
