"""The ECB source: the emulator's csvdata answers (TARGET days only, 16:00 CET publication, the ECB's
status codes), a load equal to the world's published rates, the incremental cursor with its 5-day
lookback picking up a revised rate, injected faults changing nothing, a bad row quarantined."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.ecb import CSV_COLUMNS, LIVE_API_URL
from finance_pipeline.platforms.ecb.client import currencies, live_connection, parse_csv
from finance_pipeline.platforms.ecb.emulator import EcbEmulator
from finance_pipeline.platforms.ecb.rates import is_target_day, observations
from finance_pipeline.platforms.ecb.source import LOOKBACK_DAYS, ecb_source
from tests.source_helpers import load_clean_and_faulty, load_source, query, raw_snapshot

KEY = "/service/data/EXR/D.GBP+USD+AUD.EUR.SP00.A"


def truth(sandbox) -> dict[tuple[str, date], Decimal]:
    with sandbox.connect() as con:
        return {(c, d): v for c, d, v in observations(con, sandbox.clock)}


def loaded(settings) -> dict[tuple[str, date], Decimal]:
    rows = query(settings, "select currency, rate_date, obs_value from raw_ecb.rates")
    assert len(rows) == len({(c, d) for c, d, _ in rows})
    return {(c, d): Decimal(v) for c, d, v in rows}


def load(settings, running, quarantine=None):
    return load_source(settings, "ecb", ecb_source, running, quarantine)


def get(running, path=KEY, **params) -> httpx.Response:
    return httpx.get(running.url + path, params={"format": "csvdata", **params}, timeout=10)


def test_csvdata_wire_format_business_days_and_status_codes(sandbox, start_emulator):
    running = start_emulator(EcbEmulator, sandbox, time_scale=30)
    r = get(running, startPeriod="2025-12-20", endPeriod="2025-12-31")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert tuple(table[0]) == CSV_COLUMNS
    rows = [dict(zip(table[0], row)) for row in table[1:]]
    days = sorted({row["TIME_PERIOD"] for row in rows})
    # 24 Dec is a TARGET day; 25/26 Dec and the weekends are not
    assert days == ["2025-12-22", "2025-12-23", "2025-12-24", "2025-12-29", "2025-12-30", "2025-12-31"]
    assert [row["CURRENCY"] for row in rows] == ["AUD"] * 6 + ["GBP"] * 6 + ["USD"] * 6  # series by series
    for row in rows:
        assert row["KEY"] == f"EXR.D.{row['CURRENCY']}.EUR.SP00.A" and row["CURRENCY_DENOM"] == "EUR"
        places = int(row["DECIMALS"])
        assert places == (5 if row["CURRENCY"] == "GBP" else 4)
        assert len(row["OBS_VALUE"].split(".")[1]) == places
    want = truth(sandbox)
    assert {(row["CURRENCY"], date.fromisoformat(row["TIME_PERIOD"])): Decimal(row["OBS_VALUE"]) for row in rows} \
        == {k: v for k, v in want.items() if date(2025, 12, 20) <= k[1] <= date(2025, 12, 31)}
    assert all(is_target_day(d) for _, d in want) and date(2025, 4, 18) not in {d for _, d in want}  # Good Friday

    assert get(running, path="/service/data/EXR/D.JPY.EUR.SP00.A").status_code == 404
    assert get(running, path="/service/data/EXR/D.USD.EUR").status_code == 400
    assert get(running, startPeriod="2025-13-01").status_code == 400
    assert get(running, format="jsondata").status_code == 406
    assert get(running, path="/service/data/ECB,EXR,1.0/D.USD.EUR.SP00.A", startPeriod="2025-12-31").text.count("\n") == 2
    # updatedAfter: only what was published after that moment
    after = get(running, updatedAfter="2025-12-30T16:30:00+01:00")
    assert {line.split(",")[6] for line in after.text.splitlines()[1:]} == {"2025-12-31"}


def test_a_day_is_served_from_16_00_cet(sandbox, start_emulator):
    running = start_emulator(EcbEmulator, sandbox, time_scale=30)
    sandbox.advance(hours=(datetime(2026, 1, 2, 14, 59, tzinfo=timezone.utc) - sandbox.clock).total_seconds() / 3600)
    assert get(running, startPeriod="2026-01-02").status_code == 404  # 15:59 CET: not yet published
    assert get(running, startPeriod="2026-01-01").status_code == 404  # New Year's Day: never
    sandbox.advance(hours=0.05)
    r = get(running, startPeriod="2026-01-02")
    assert r.status_code == 200 and {line.split(",")[6] for line in r.text.splitlines()[1:]} == {"2026-01-02"}


def test_load_then_incremental_with_lookback_picks_up_a_revision(settings, sandbox, start_emulator):
    running = start_emulator(EcbEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox) and len(truth(sandbox)) == 3 * 255  # 2025's TARGET days
    assert running.emulator.queries[-1]["startPeriod"] == "2025-01-01"
    last = max(d for _, d in loaded(settings))

    sandbox.advance(hours=24 * 10)
    revised_day = last - timedelta(days=1)  # inside the lookback: the ECB corrects yesterday's USD rate
    old = truth(sandbox)[("USD", revised_day)]
    running.emulator.revisions[("USD", revised_day)] = (old + Decimal("0.0100"), sandbox.clock)
    load(settings, running)
    assert running.emulator.queries[-1]["startPeriod"] == (last - timedelta(days=LOOKBACK_DAYS)).isoformat()
    got = loaded(settings)
    want = {**truth(sandbox), ("USD", revised_day): old + Decimal("0.0100")}
    assert got == want and max(d for _, d in got) > last


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    def load_twice(settings, running):
        load(settings, running)
        load(settings, running)

    clean, faulty, running = load_clean_and_faulty(tmp_path, small_world_dir, start_emulator, EcbEmulator,
                                                   load_twice, fault_rate=0.5, fault_seed=3)
    assert sum(running.emulator.faults.values()) > 0, running.emulator.faults
    assert raw_snapshot(faulty, "raw_ecb", ["rates"]) == raw_snapshot(clean, "raw_ecb", ["rates"])


def test_a_body_cut_at_a_line_end_is_not_taken_for_a_whole_answer():
    body = ("KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n"
            "EXR.D.GBP.EUR.SP00.A,D,GBP,EUR,SP00,A,2025-12-30,0.85000\n"
            "EXR.D.GBP.EUR.SP00.A,D,GBP,EUR,SP00,A,2025-12-31,0.85100\n"
            "EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2025-12-30,1.0900\n")
    with pytest.raises(ValueError, match="header"):
        parse_csv(body.replace("KEY,FREQ", "KEY,CURRENCY", 1).encode())  # not the ECB's header
    whole = body + "EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2025-12-31,1.0910\n"
    assert [r["OBS_VALUE"] for r in parse_csv(whole.encode())] == ["0.85000", "0.85100", "1.0900", "1.0910"]
    with pytest.raises(ValueError, match="different days"):
        parse_csv(body.encode())
    with pytest.raises(ValueError, match="newline"):
        parse_csv(body[:-1].encode())
    assert parse_csv(b"No results found.") == []


def test_a_bad_rate_is_quarantined(settings, sandbox, start_emulator):
    running = start_emulator(EcbEmulator, sandbox, time_scale=30)
    running.emulator.corruptions[("USD", date(2025, 6, 3))] = {"OBS_VALUE": "NaN"}
    quarantine = Quarantine("ecb")
    result = load(settings, running, quarantine)
    assert result.quarantined == 1 and quarantine.rows[0]["record_id"] == "USD:2025-06-03"
    assert "OBS_VALUE" in quarantine.rows[0]["reason"]
    got = loaded(settings)
    assert ("USD", date(2025, 6, 3)) not in got and len(got) == len(truth(sandbox)) - 1


def test_live_connection_needs_no_credential(monkeypatch, settings):
    monkeypatch.delenv("ECB_API_URL", raising=False)
    monkeypatch.delenv("ECB_CURRENCIES", raising=False)
    monkeypatch.chdir(settings.data_dir)
    conn = live_connection(settings)
    assert conn.base_url == LIVE_API_URL and conn.get("currencies") == "GBP,USD,AUD"
    monkeypatch.setenv("ECB_API_URL", "https://mirror.example/ecb/")
    monkeypatch.setenv("ECB_CURRENCIES", "usd,chf")
    conn = live_connection(settings)
    assert conn.base_url == "https://mirror.example/ecb" and currencies(conn) == ("GBP", "USD", "CHF")
