"""The Apps Script connector (`connectors/looker_studio/`): its manifest, and `Code.gs` itself run under
Node (stand-ins for DataStudioApp, UrlFetchApp via curl, PropertiesService, Session) against a live
endpoint — auth, config, schema, data with a date range and the connector's own paging, money to
the cent after JavaScript's JSON.parse.  Without node/curl on the machine that part is skipped and
only the static checks run."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from bi_fixtures import build_bi_marts, mart_count, mart_sum
from conftest import make_settings
from finance_pipeline.platforms.looker_studio.endpoint import ConnectorEndpoint, LookerStudioEndpoint
from finance_pipeline.platforms.looker_studio.publish import publish_marts
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import PROJECT_ROOT

CONNECTOR = PROJECT_ROOT / "connectors" / "looker_studio"
HARNESS = Path(__file__).parent / "js" / "looker_connector_harness.js"


def test_manifest_and_paths():
    manifest = json.loads((CONNECTOR / "appsscript.json").read_text())
    ds = manifest["dataStudio"]
    for key in ("name", "company", "logoUrl", "addonUrl", "supportUrl", "description", "authType"):
        assert ds.get(key), key
    assert ds["authType"] == ["KEY"]
    assert "https://www.googleapis.com/auth/script.external_request" in manifest["oauthScopes"]
    code = (CONNECTOR / "Code.gs").read_text()
    for fn in ("getAuthType", "getConfig", "getSchema", "getData", "isAdminUser", "setCredentials", "isAuthValid",
               "resetAuth"):
        assert re.search(rf"^function {fn}\(", code, re.M), fn
    used = set(re.findall(r"'(/connector/\w+)'", code))
    served = {r.path for r in ConnectorEndpoint(Path("/nonexistent"), "x").routes()}
    assert used == served == {"/connector/tables", "/connector/getSchema", "/connector/getData"}
    assert "UrlFetchApp.fetch" in code and "Bearer " in code


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("curl")), reason="no node/curl: Code.gs not run")
def test_code_gs_against_the_endpoint(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path)
    running = serve(LookerStudioEndpoint(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    try:
        runtime.write_endpoints(settings, {"looker_studio": running})
        assert publish_marts(settings, runtime.connection(settings, "looker_studio"), settings.warehouse_path).ok
        key = running.emulator.credentials()["token"]
        fields = [{"name": n} for n in ("payout_date", "amount", "currency", "fees")]
        calls = [
            {"fn": "getAuthType"},
            {"fn": "isAuthValid"},
            {"fn": "setCredentials", "request": {"key": "wrong"}},
            {"fn": "setCredentials", "request": {"key": key}},
            {"fn": "isAuthValid"},
            {"fn": "isAdminUser"},
            {"fn": "getConfig", "request": {"languageCode": "en"}},
            {"fn": "getSchema", "request": {"configParams": {"table": "fct_invoices"}}},
            {"fn": "getData", "request": {"configParams": {"table": "fct_payouts"}, "fields": fields,
                                          "dateRange": {"startDate": "2025-01-01", "endDate": "2025-12-31"},
                                          "scriptParams": {"sampleExtraction": False}}},
            {"fn": "getData", "request": {"configParams": {"table": "fct_payouts"}, "fields": fields[1:2],
                                          "dateRange": {"startDate": "2025-03-01", "endDate": "2025-03-31"},
                                          "pagination": {"startRow": 11, "rowCount": 5}}},
            {"fn": "getData", "request": {"configParams": {"table": "fct_invoices"},
                                          "fields": [{"name": "total_amount"}, {"name": "invoice_number"}],
                                          "dateRange": {"startDate": "2000-01-01", "endDate": "2099-12-31"}}},
            {"fn": "resetAuth"},
            {"fn": "getSchema", "request": {"configParams": {"table": "fct_invoices"}}},
        ]
        requests = tmp_path / "calls.json"
        requests.write_text(json.dumps(calls))
        out = subprocess.run(["node", str(HARNESS), str(CONNECTOR / "Code.gs"), running.url, str(requests)],
                             capture_output=True, timeout=120, check=True)
        results = json.loads(out.stdout, parse_float=Decimal)
        by = [r.get("value", r.get("error")) for r in results]
        assert all("error" not in r for r in results[:-1]), [r for r in results if "error" in r]
        assert by[0] == {"type": "KEY", "helpUrl": "https://finance.example.com/docs/looker-studio"}
        assert by[1] is False and by[2] == {"errorCode": "INVALID_CREDENTIALS"} and by[3] == {"errorCode": "NONE"}
        assert by[4] is True and by[5] is True
        config = by[6]
        assert config["dateRangeRequired"] is True
        (select,) = [p for p in config["configParams"] if p["type"] == "SELECT_SINGLE"]
        assert {o["value"] for o in select["options"]} == {"fct_invoices", "fct_invoice_lines", "fct_payouts"}
        schema = by[7]["schema"]
        assert [f["name"] for f in schema][:3] == ["invoice_number", "channel", "order_id"]
        full = by[8]
        assert [f["name"] for f in full["schema"]] == ["payout_date", "amount", "currency", "fees"]
        assert full["filtersApplied"] is False
        assert len(full["rows"]) == 150  # every payout of the fixture falls in 2025
        got_2025 = [r["values"] for r in full["rows"]]
        assert all(v[0].startswith("2025") for v in got_2025)
        assert sum(v[1] for v in got_2025) == mart_sum(settings.warehouse_path, "fct_payouts", "amount")  # to the cent
        assert sum(v[3] for v in got_2025) == mart_sum(settings.warehouse_path, "fct_payouts", "fees")
        page = by[9]
        assert len(page["rows"]) == 5 and [f["name"] for f in page["schema"]] == ["amount"]
        (paged_fetch,) = results[9]["fetches"]
        assert paged_fetch["payload"]["pagination"] == {"startRow": 11, "rowCount": 5}
        invoices = by[10]
        assert len(invoices["rows"]) == mart_count(settings.warehouse_path, "fct_invoices")
        assert sum(r["values"][0] for r in invoices["rows"]) == mart_sum(settings.warehouse_path, "fct_invoices",
                                                                         "total_amount")
        assert "refused the key" in results[-1]["error"]
        for r in results:
            for f in r["fetches"]:
                assert f["url"].startswith(running.url + "/connector/")
    finally:
        running.stop()
