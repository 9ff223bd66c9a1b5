"""The HubSpot dlt source: full load by list, merge on rerun, incremental by search after
`sandbox advance` (stages moved, invoice numbers set, deals edited after close, deletions),
injected faults change nothing, a bad deal is quarantined with its reason."""
from __future__ import annotations

import pytest

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.hubspot.emulator import HubSpotEmulator
from finance_pipeline.platforms.hubspot.source import hubspot_source
from tests import crm_helpers
from tests.conftest import make_settings

CRM = "hubspot"


def truth(sandbox):
    return crm_helpers.truth(sandbox, CRM)


def loaded(settings):
    return crm_helpers.loaded(settings, "raw_hubspot.deals", "id, dealstage, amount, invoice_number, archived")


def run(settings, running, quarantine=None):
    return crm_helpers.run(settings, CRM, hubspot_source, running, quarantine)


def test_source_builds_without_a_connection():
    source = hubspot_source()
    assert set(source.resources) == {"deals"}
    with pytest.raises(Exception, match="without a connection"):
        list(source.resources["deals"])


def test_load_rerun_and_advance(settings, sandbox, start_emulator):
    running = start_emulator(HubSpotEmulator, sandbox, time_scale=settings.time_scale)
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    first = running.emulator.counters["requests"]
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    before = loaded(settings)[0]
    sandbox.advance(hours=24 * 14)
    run(settings, running)
    after, gone = loaded(settings)
    assert (after, gone) == truth(sandbox)
    assert len(after) > len(before)
    assert any(before[k] != after[k] for k in before if k in after), "no deal moved in two weeks"
    assert running.emulator.counters["requests"] - first < first + 10  # incremental: few pages
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(settings, sandbox, tmp_path, start_emulator):
    faulty_settings = make_settings(tmp_path / "faulty")
    running = start_emulator(HubSpotEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.15,
                             timeout_delay_s=1.5)
    run(faulty_settings, running)
    assert loaded(faulty_settings) == truth(sandbox)
    assert sum(running.emulator.faults.values()) > 0


def test_a_bad_deal_is_quarantined(settings, sandbox, start_emulator):
    running = start_emulator(HubSpotEmulator, sandbox, time_scale=settings.time_scale)
    live, _ = truth(sandbox)
    bad_id = sorted(live)[3]
    running.emulator.corruptions[bad_id] = {"amount": "12,50"}
    quarantine = Quarantine(CRM)
    result = run(settings, running, quarantine)
    assert result.quarantined == 1 and len(quarantine) == 1
    assert quarantine.rows[0]["record_id"] == bad_id and "amount" in quarantine.rows[0]["reason"]
    got, _ = loaded(settings)
    assert bad_id not in got and set(got) == set(live) - {bad_id}
