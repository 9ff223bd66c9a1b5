"""The Stripe source under injected faults and rate limits loads exactly what a clean run loads."""
from __future__ import annotations

import dataclasses

from finance_pipeline.platforms.stripe.emulator import StripeEmulator
from tests.stripe_helpers import full_tables, load


def test_faults_do_not_change_what_is_loaded(settings, sandbox, start_emulator, tmp_path):
    """(d) 10 % faults (429, 5xx, timeouts, truncated bodies, duplicated pages): same tables."""
    clean = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale)
    faulty = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.1,
                            timeout_delay_s=1.5)
    load(settings, clean)
    faulty_settings = dataclasses.replace(settings, data_dir=tmp_path / "faulty")
    load(faulty_settings, faulty)
    assert sum(faulty.emulator.faults.values()) >= 5
    assert full_tables(faulty_settings) == full_tables(settings)


def test_client_limiter_keeps_the_emulator_from_refusing(settings, sandbox, start_emulator):
    """(e) With limits compressed only 2x (50 requests/s), the same load without the client's
    token bucket is refused a few times (measured: 7 of 169 requests); with it, never."""
    settings = dataclasses.replace(settings, time_scale=2.0)
    running = start_emulator(StripeEmulator, sandbox, time_scale=2.0)
    load(settings, running)
    assert running.emulator.counters["requests"] > 100
    assert running.emulator.counters["over_limit"] == 0
