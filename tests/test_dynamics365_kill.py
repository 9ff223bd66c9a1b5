"""kill -9 of the Business Central publisher at random moments (ten trials, the marts edited between
them so updates — PATCH, lines deleted and posted again — are in flight too), then a clean run: every
sales order exactly once, equal to the marts, nothing left pending, no secret in the logs."""
from __future__ import annotations

from finance_pipeline.platforms.dynamics365.emulator import DynamicsEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from publish_kill import kill_trials, pending_keys
from test_dynamics365_publish import assert_orders_match_marts
from xero_fixtures import build_marts, mart_rows, set_line_quantity


def writes(emulator: DynamicsEmulator) -> int:
    return sum(v for k, v in emulator.state.counters().items() if k.startswith(("orders_", "lines_", "customers_")))


def test_kill_9_at_random_moments_then_rerun(tmp_path, settings, sandbox):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=60, n_customers=12)
    running = serve(DynamicsEmulator(sandbox, EmulatorConfig(time_scale=settings.time_scale)))
    emulator = running.emulator
    emulator.write_delay_s = 0.05  # each answer comes after BC committed: kills land in between
    wanted = {n for n, m in mart_rows(settings.warehouse_path).items() if m["status"] != "voided"}

    def no_duplicates(trial: int) -> None:
        numbers = [o["externalDocumentNumber"] for o in emulator.sales_orders()]
        assert len(numbers) == len(set(numbers)) and set(numbers) <= wanted, trial
        for n in range(6):  # the marts move on between crashes: every trial has updates to send
            set_line_quantity(settings.warehouse_path, f"INV-{1001 + (trial * 6 + n) % 60:04d}", 1, 30 + trial)

    try:
        report = kill_trials(tmp_path, settings, running, "dynamics365",
                             "finance_pipeline.platforms.dynamics365.publish", trials=10, min_delay=0.0,
                             max_delay=1.0, seed=5, progress=lambda: writes(emulator),
                             after_kill=no_duplicates)
        assert report.killed_running >= 7, report
        assert report.pending_seen >= 2, report  # kills did land between a write and its outcome
        final = report.final
        assert final["ok"] and final["mismatch_count"] == 0, final
        assert len(emulator.sales_orders()) == made["invoices"] - made["voided"]
        assert_orders_match_marts(emulator, settings.warehouse_path)
        assert pending_keys(settings.warehouse_path, "dynamics365") == []
        assert emulator.credentials()["client_secret"] not in report.logs()
    finally:
        running.stop()
