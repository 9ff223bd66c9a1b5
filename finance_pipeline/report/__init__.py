"""The finance report: one self-contained HTML page under data/reports/ with the P&L by month and
channel, receivables aging, tax owed per jurisdiction, sales trends and payout exceptions.

    from finance_pipeline.report import build_report
    result = build_report(settings.warehouse_target, reports_dir)

The marts are read from the DuckDB file or, under FINANCE_WAREHOUSE=postgres, from the server.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from finance_pipeline.report.data import ReportData, load
from finance_pipeline.report.render import money, render
from finance_pipeline.warehouse import WarehouseTarget

LATEST = "finance-report.html"


@dataclass
class ReportResult:
    path: Path  # the dated report
    latest: Path  # data/reports/finance-report.html, a copy of the newest
    data: ReportData


def build_report(warehouse: WarehouseTarget, reports_dir: Path) -> ReportResult:
    """Read the marts and write finance-report-<as of>.html (and finance-report.html) atomically."""
    data = load(warehouse)
    page = render(data)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"finance-report-{data.as_of.isoformat()}.html"
    latest = reports_dir / LATEST
    for target in (path, latest):
        tmp = target.with_suffix(".html.tmp")
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, target)
    return ReportResult(path=path, latest=latest, data=data)


__all__ = ["ReportResult", "build_report", "money"]
