"""One dlt multi-asset per source platform, built from the registry."""
from __future__ import annotations

from typing import Any

from dagster import AssetKey, AssetSpec, MaterializeResult
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from finance_pipeline.defs.common import WAREHOUSE_POOL
from finance_pipeline.ingest.pipeline import (create_missing_tables, loader_file_format, make_pipeline,
                                              save_quarantine, warehouse_connection)
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms import registry
from finance_pipeline.settings import get_settings


class RawTableTranslator(DagsterDltTranslator):
    """Asset key = where the table lands: ["raw_<platform>", "<table>"], group "ingest"."""

    def __init__(self, platform: registry.Platform) -> None:
        self.platform = platform

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        table = data.resource.table_name if isinstance(data.resource.table_name, str) else data.resource.name
        return spec.replace_attributes(
            key=AssetKey([f"raw_{self.platform.name}", table]),
            group_name="ingest",
            deps=[],
            description=f"{self.platform.title} {data.resource.name}, loaded by dlt into raw_{self.platform.name}.{table}.",
            kinds={"dlt", get_settings().warehouse},
        )


def _build(platform: registry.Platform) -> Any:
    source_fn = registry.Platform.load(platform.source)
    settings = get_settings()

    @dlt_assets(
        dlt_source=source_fn(None, None),
        dlt_pipeline=make_pipeline(settings, platform.name),
        name=f"ingest_{platform.name}",
        dagster_dlt_translator=RawTableTranslator(platform),
        pool=WAREHOUSE_POOL,
    )
    def _ingest(context, dlt: DagsterDltResource):
        from finance_pipeline.sandbox.runtime import connection

        run_settings = get_settings()
        quarantine = Quarantine(platform.name)
        source = source_fn(connection(run_settings, platform.name), quarantine)
        with warehouse_connection(run_settings) as con:
            pipeline = make_pipeline(run_settings, platform.name, connection=con)
            results = list(dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline,
                                   loader_file_format=loader_file_format(run_settings)))
            loaded = [r.asset_key.path[-1] for r in results
                      if isinstance(r, MaterializeResult) and r.asset_key is not None]
            created = create_missing_tables(run_settings, pipeline, platform.name, source, loaded)
            if created:
                context.log.info(f"{platform.title}: no rows yet for {', '.join(created)}; created empty")
            saved = save_quarantine(run_settings, quarantine, con)
        if saved:
            context.log.warning(f"{platform.title}: {saved} bad record(s) quarantined in ops.quarantine")
        by_entity: dict[str, int] = {}
        for row in quarantine.rows:
            by_entity[row["entity"]] = by_entity.get(row["entity"], 0) + 1
        for result in results:
            if isinstance(result, MaterializeResult) and result.asset_key is not None:
                entity = result.asset_key.path[-1]
                yield MaterializeResult(
                    asset_key=result.asset_key,
                    metadata={**(result.metadata or {}), "quarantined": by_entity.get(entity, 0)},
                )
            else:
                yield result

    return _ingest


def _enabled() -> list[registry.Platform]:
    from finance_pipeline.ingest.switches import enabled_sources

    on = set(enabled_sources(get_settings()))
    return [p for p in registry.sources() if p.name in on]


# a source switched off (FINANCE_SOURCES) has no asset at all: nothing to run, nothing to show
ingest_assets = [_build(p) for p in _enabled()]
