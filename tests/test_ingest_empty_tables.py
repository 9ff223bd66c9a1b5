"""A resource that has found no rows yet still leaves its raw table behind, empty, with its declared
columns: a new account without disputes or refunds must not fail the dbt build.  The table is made
through dlt, so the resource's first real rows merge into it and re-runs change nothing."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import dlt
import pyarrow as pa
import pytest

from finance_pipeline.ingest import pipeline as ingest_pipeline
from finance_pipeline.ingest.arrow import TS, arrow_page
from finance_pipeline.ingest.pipeline import create_missing_tables, raw_tables, run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms import registry
from finance_pipeline.settings import PostgresSettings
from conftest import make_settings
from pg_helpers import pg_env, pg_query, pg_server  # noqa: F401 - pg_server is a fixture
from source_helpers import query

COLUMNS = {"id": pa.string(), "amount": pa.decimal128(18, 2), "created": TS}


def _source(disputes: list[dict]):
    @dlt.resource(name="charges", primary_key="id", write_disposition="merge")
    def charges(created=dlt.sources.incremental("created")):
        yield arrow_page([{"id": "ch_1", "amount": Decimal("10.00"), "created": datetime(2025, 1, 1, tzinfo=timezone.utc)}],
                         COLUMNS)

    @dlt.resource(name="disputes", primary_key="id", write_disposition="merge")
    def disputes_(created=dlt.sources.incremental("created")):
        if disputes:
            yield arrow_page(disputes, COLUMNS)

    @dlt.source(name="emptyish", max_table_nesting=0)
    def emptyish():
        return charges, disputes_

    return emptyish()


def test_a_resource_without_rows_gets_an_empty_table_that_its_first_rows_merge_into(settings, monkeypatch):
    monkeypatch.setattr(ingest_pipeline, "raw_tables", lambda platform: {"charges": COLUMNS, "disputes": COLUMNS})
    run_platform(settings, "emptyish", _source([]), Quarantine("emptyish"))
    assert query(settings, "select count(*) from raw_emptyish.disputes") == [(0,)]
    described = query(settings, "select column_name, data_type, is_nullable from information_schema.columns "
                                "where table_schema = 'raw_emptyish' and table_name = 'disputes' "
                                "order by ordinal_position")
    assert described == [("id", "VARCHAR", "NO"), ("amount", "DECIMAL(18,2)", "YES"),
                         ("created", "TIMESTAMP WITH TIME ZONE", "YES")]
    dispute = {"id": "dp_1", "amount": Decimal("4.50"), "created": datetime(2025, 2, 1, tzinfo=timezone.utc)}
    for _ in range(2):  # the first rows arrive, then a re-run: merged on the primary key, never doubled
        run_platform(settings, "emptyish", _source([dispute]), Quarantine("emptyish"))
        assert query(settings, "select id, cast(amount as varchar) from raw_emptyish.disputes") == [("dp_1", "4.50")]
    assert query(settings, "select count(*) from raw_emptyish.charges") == [(1,)]


def test_nothing_is_created_when_every_table_exists(settings, monkeypatch):
    monkeypatch.setattr(ingest_pipeline, "raw_tables", lambda platform: {"charges": COLUMNS, "disputes": COLUMNS})
    dispute = {"id": "dp_1", "amount": Decimal("4.50"), "created": datetime(2025, 2, 1, tzinfo=timezone.utc)}
    run_platform(settings, "emptyish", _source([dispute]), Quarantine("emptyish"))
    with ingest_pipeline.warehouse_connection(settings) as con:
        pipeline = ingest_pipeline.make_pipeline(settings, "emptyish", connection=con)
        source = _source([])
        assert create_missing_tables(settings, pipeline, "emptyish", source, source.resources) == []


@pytest.mark.parametrize("platform", [p.name for p in registry.sources()])
def test_every_source_declares_the_columns_of_each_of_its_tables(platform):
    source = registry.Platform.load(registry.get(platform).source)(None, None)
    declared = raw_tables(platform)
    assert set(declared) == set(source.resources), "RAW_TABLES must name every resource of the source"
    for name, columns in declared.items():
        assert columns and all(isinstance(t, pa.DataType) for t in columns.values()), name


def test_on_postgres_the_empty_table_is_made_without_a_data_file(pg_server, tmp_path, monkeypatch):  # noqa: F811
    """PostgreSQL loads parquet through ADBC, which refuses a file with no record batch: the empty
    table must still be made, and its first rows merge into it."""
    database = pg_server.create_database("empty_tables")
    for key, value in {**pg_env(pg_server, database), "FINANCE_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    settings = make_settings(tmp_path, warehouse="postgres", postgres=PostgresSettings.from_env())
    monkeypatch.setattr(ingest_pipeline, "raw_tables", lambda platform: {"charges": COLUMNS, "disputes": COLUMNS})
    run_platform(settings, "emptyish", _source([]), Quarantine("emptyish"))
    assert pg_query(pg_server, database, "select count(*) from raw_emptyish.disputes") == [(0,)]
    assert pg_query(pg_server, database, "select column_name, data_type, is_nullable from information_schema.columns "
                    "where table_schema = 'raw_emptyish' and table_name = 'disputes' order by ordinal_position") == [
        ("id", "character varying", "NO"), ("amount", "numeric", "YES"), ("created", "timestamp with time zone", "YES")]
    dispute = {"id": "dp_1", "amount": Decimal("4.50"), "created": datetime(2025, 2, 1, tzinfo=timezone.utc)}
    for _ in range(2):
        run_platform(settings, "emptyish", _source([dispute]), Quarantine("emptyish"))
        assert pg_query(pg_server, database, "select id, amount from raw_emptyish.disputes") == [("dp_1", Decimal("4.50"))]
