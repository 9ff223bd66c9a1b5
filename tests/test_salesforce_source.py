"""The Salesforce dlt source: queryAll load, merge on rerun, incremental by SystemModstamp after
`sandbox advance` (stages moved, invoice numbers set, deletions flagged), a new session mid-sync,
injected faults change nothing, a bad Opportunity is quarantined with its reason."""
from __future__ import annotations

import pytest

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.salesforce.emulator import SalesforceEmulator
from finance_pipeline.platforms.salesforce.source import salesforce_source
from tests import crm_helpers
from tests.conftest import make_settings

CRM = "salesforce"


def truth(sandbox):
    return crm_helpers.truth(sandbox, CRM)


def loaded(settings):
    return crm_helpers.loaded(settings, "raw_salesforce.opportunities",
                              "id, stage_name, amount, invoice_number__c, is_deleted")


def run(settings, running, quarantine=None):
    return crm_helpers.run(settings, CRM, salesforce_source, running, quarantine)


def test_source_builds_without_a_connection():
    source = salesforce_source()
    assert set(source.resources) == {"opportunities"}
    with pytest.raises(Exception, match="without a connection"):
        list(source.resources["opportunities"])


def test_load_rerun_and_advance(settings, sandbox, start_emulator):
    running = start_emulator(SalesforceEmulator, sandbox, time_scale=settings.time_scale)
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    before, gone_before = loaded(settings)
    sandbox.advance(hours=24 * 21)
    running.emulator.expire_sessions()  # the next sync starts on a dead session
    run(settings, running)
    after, gone = loaded(settings)
    assert (after, gone) == truth(sandbox)
    assert len(after) > len(before) and gone >= gone_before
    assert any(before[k] != after[k] for k in before if k in after), "no opportunity moved in three weeks"


def test_faults_change_nothing(settings, sandbox, tmp_path, start_emulator):
    faulty_settings = make_settings(tmp_path / "faulty")
    running = start_emulator(SalesforceEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.2,
                             timeout_delay_s=1.5)
    running.emulator.min_batch = 40  # several batches, so faults land mid-query
    import finance_pipeline.platforms.salesforce.source as src
    saved, src.BATCH_SIZE = src.BATCH_SIZE, 40
    try:
        run(faulty_settings, running)
    finally:
        src.BATCH_SIZE = saved
    assert loaded(faulty_settings) == truth(sandbox)
    assert sum(running.emulator.faults.values()) > 0


def test_a_bad_opportunity_is_quarantined(settings, sandbox, start_emulator):
    running = start_emulator(SalesforceEmulator, sandbox, time_scale=settings.time_scale)
    live, _ = truth(sandbox)
    bad_id = sorted(live)[5]
    running.emulator.corruptions[bad_id] = {"CurrencyIsoCode": "XX1"}
    quarantine = Quarantine(CRM)
    result = run(settings, running, quarantine)
    assert result.quarantined == 1 and quarantine.rows[0]["record_id"] == bad_id
    assert "CurrencyIsoCode" in quarantine.rows[0]["reason"]
    got, _ = loaded(settings)
    assert bad_id not in got and set(got) == set(live) - {bad_id}
