"""Which sources are switched on, and what that means for dbt.

`FINANCE_SOURCES=shopify,stripe,xero` (or `none`) names them; unset, the sandbox turns every
registered source on, while live mode turns none on and the run stops asking for the setting
(a live source needs credentials, so it is switched on deliberately — the same rule as
`FINANCE_DESTINATIONS`).  A source switched off has no ingest asset, and dbt gets the channel list
without it (`vars.channels`, `vars.sources`), so its staging and channel models are disabled and
the marts are built from the channels that are on.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from finance_pipeline.settings import PROJECT_ROOT, Settings, SettingsError


def source_names() -> list[str]:
    from finance_pipeline.platforms import registry

    return [p.name for p in registry.sources()]


def enabled_sources(settings: Settings) -> list[str]:
    known = source_names()
    if settings.sources is None:
        return known if settings.mode == "sandbox" else []
    unknown = [n for n in settings.sources if n not in known]
    if unknown:
        raise SettingsError(f"FINANCE_SOURCES names unknown source(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [n for n in known if n in settings.sources]


def require_sources(settings: Settings) -> list[str]:
    """The enabled sources, or a SettingsError saying how to switch some on (live mode)."""
    names = enabled_sources(settings)
    if not names:
        raise SettingsError(
            "No source is switched on: set FINANCE_SOURCES to the platforms this business uses, e.g. "
            f"FINANCE_SOURCES=shopify,stripe (known: {', '.join(source_names())}), in the environment or .env.")
    return names


@lru_cache(maxsize=1)
def _project_channels() -> dict[str, list[str]]:
    import yaml

    project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    return dict(project.get("vars", {}).get("channels") or {})


def dbt_vars(settings: Settings, **extra: Any) -> dict[str, Any]:
    """`--vars` for dbt: the project's channels restricted to the enabled sources.  Empty when every
    source is on, so the project's own defaults (and a parse without --vars) apply unchanged."""
    enabled = enabled_sources(settings)
    out: dict[str, Any] = dict(extra)
    if set(enabled) != set(source_names()):
        out["channels"] = {ch: entities for ch, entities in _project_channels().items() if ch in enabled}
        out["sources"] = enabled
    return out


def vars_json(settings: Settings, **extra: Any) -> str:
    return json.dumps(dbt_vars(settings, **extra), sort_keys=True)


def outside_sources(key: Any, sources: set[str]) -> bool:
    """Whether an asset key is the ingest of a source not in `sources` (`["raw_<platform>", table]`):
    what a run for those sources only leaves out of its selection; dbt then builds their channels."""
    schema = key.path[0]
    return schema.startswith("raw_") and schema[4:] not in sources
