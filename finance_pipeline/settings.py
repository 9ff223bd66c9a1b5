"""Typed settings.

Everything has a sandbox default, so the project runs with no configuration at all.  Live mode
reads credentials from the environment (or a `.env` file in the project root); a missing
credential stops with a message naming the variable.  Secrets are held in `Secret` objects whose
repr never shows the value, and every secret value is registered with the log redactor.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOME_CURRENCY = "GBP"
BUSINESS_TIMEZONE = "Europe/London"


SANDBOX_TIME_SCALE = 60.0


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message says which one and how to fix it."""


class Secret:
    """A credential.  `str()`/`repr()` never reveal it; `.value` does, on purpose."""

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str = "secret") -> None:
        from finance_pipeline.http.redaction import register_secret

        self._value = value
        self.name = name
        register_secret(value)

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name}=***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _load_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def env(name: str, default: str | None = None) -> str | None:
    """Environment first, then `.env` in the project root."""
    if name in os.environ:
        return os.environ[name]
    return _load_dotenv(PROJECT_ROOT / ".env").get(name, default)


def require_secret(name: str, how: str) -> Secret:
    value = env(name)
    if not value:
        raise SettingsError(f"{name} is not set. {how} (set it in the environment or in {PROJECT_ROOT / '.env'}).")
    return Secret(value, name)


def _float(name: str, default: float) -> float:
    raw = env(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:  # pragma: no cover - message path
        raise SettingsError(f"{name}={raw!r} is not a number.") from exc


def _int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer.") from exc


def _names(name: str) -> tuple[str, ...] | None:
    """A comma-separated list (`xero,netsuite`); unset = None (the default applies), `none` = empty."""
    raw = env(name)
    if raw is None or raw.strip() == "":
        return None
    if raw.strip().lower() == "none":
        return ()
    return tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))


@dataclass(frozen=True)
class PostgresSettings:
    """Where the warehouse lives when FINANCE_WAREHOUSE=postgres (FINANCE_PG_* variables)."""

    host: str
    port: int
    user: str
    password: Secret
    database: str
    sslmode: str = "prefer"

    def dsn(self) -> str:
        """libpq URL with the password: hand it to a driver, never to a log."""
        from urllib.parse import quote

        return (f"postgresql://{quote(self.user, safe='')}:{quote(self.password.value, safe='')}@{self.host}:"
                f"{self.port}/{quote(self.database, safe='')}?sslmode={self.sslmode}")

    def __repr__(self) -> str:
        return f"PostgresSettings({self.user}@{self.host}:{self.port}/{self.database}, sslmode={self.sslmode})"

    @classmethod
    def from_env(cls) -> "PostgresSettings":
        how = "FINANCE_WAREHOUSE=postgres needs the server's address and a role (docs/deploy.md, 'Postgres warehouse')"
        host = env("FINANCE_PG_HOST")
        user = env("FINANCE_PG_USER")
        if not host:
            raise SettingsError(f"FINANCE_PG_HOST is not set. {how} (set it in the environment or in {PROJECT_ROOT / '.env'}).")
        if not user:
            raise SettingsError(f"FINANCE_PG_USER is not set. {how} (set it in the environment or in {PROJECT_ROOT / '.env'}).")
        sslmode = (env("FINANCE_PG_SSLMODE") or "prefer").strip()
        if sslmode not in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
            raise SettingsError(f"FINANCE_PG_SSLMODE={sslmode!r}: use disable, allow, prefer, require, verify-ca "
                                "or verify-full.")
        return cls(host=host, port=_int("FINANCE_PG_PORT", 5432), user=user,
                   password=require_secret("FINANCE_PG_PASSWORD", how),
                   database=env("FINANCE_PG_DATABASE") or "finance", sslmode=sslmode)


WAREHOUSES = ("duckdb", "postgres")


@dataclass(frozen=True)
class Settings:
    mode: Literal["sandbox", "live"] = "sandbox"
    data_dir: Path = PROJECT_ROOT / "data"
    # sandbox world
    sandbox_seed: int = 42
    sandbox_size: int = 20_000
    # emulator behaviour (sandbox only)
    fault_rate: float = 0.0
    # >1 compresses the platforms' rate limits (sandbox only; live mode always runs at 1.0): the
    # sandbox default of 60 lets a minute of allowance pass in a second, so a year's backfill
    # against Amazon's or QuickBooks' documented limits fits in the demo.
    time_scale: float = 1.0
    # HTTP client behaviour
    http_timeout_s: float = 30.0
    http_max_attempts: int = 8
    # alerting
    payment_failure_threshold: float = 0.25
    payment_failure_min_attempts: int = 4
    payment_failure_window_hours: int = 72
    # (more alert rules: finance_pipeline/alerts/rules.py; sinks: finance_pipeline/notify/config.py)
    alert_payment_failure_p: float = 0.001  # binomial tail of the failures under the processor's own rate …
    alert_payment_baseline_days: int = 28  # … measured over this many days before the window
    alert_volume_window_hours: int = 24  # orders counted in this trailing window per channel …
    alert_volume_baseline_weeks: int = 8  # … against the same hours of the week in this many past weeks
    alert_volume_z: float = 4.0  # robust z (median / MAD) beyond which volume is a spike or a drop
    alert_volume_min_orders: int = 10  # spikes need this many orders, drops this baseline median
    alert_overdue_days: tuple[int, ...] = (30, 60, 90)  # days past due that raise, worsen, go critical
    alert_overdue_min_home: float = 0.0  # ignore customers with less than this overdue (home currency)
    alert_payout_missing_days: int = 5  # transactions not paid out after this many days
    alert_stale_sync_hours: int = 6  # a source not loaded successfully for this long
    alert_worsen_factor: float = 1.5  # an open alert is re-sent when its value grows by this factor
    # publishing: destinations switched on (None = every registered destination in sandbox mode,
    # none in live mode) and dry run (show what would be sent, write nothing)
    destinations: tuple[str, ...] | None = None
    publish_dry_run: bool = False
    # ingest: sources switched on (None = every registered source in sandbox mode; live mode needs
    # FINANCE_SOURCES, so a business names the platforms it really uses)
    sources: tuple[str, ...] | None = None
    # the warehouse: the embedded DuckDB file under data_dir (default) or a PostgreSQL server
    warehouse: Literal["duckdb", "postgres"] = "duckdb"
    postgres: PostgresSettings | None = None
    # Shopify orders through the REST Admin API (default) or the GraphQL Admin API (bulk
    # operation for a backfill, paged `orders` for incremental runs); FINANCE_SHOPIFY_API
    shopify_api: Literal["rest", "graphql"] = "rest"
    extra: dict = field(default_factory=dict)

    @property
    def warehouse_path(self) -> Path:
        """The embedded DuckDB warehouse file. Every step reads the warehouse through
        `warehouse_target` (`finance_pipeline.warehouse.open_warehouse`), which names the Postgres
        server instead when FINANCE_WAREHOUSE=postgres; code that asks for the DuckDB file by name
        under postgres stops here rather than read an empty local file."""
        if self.warehouse != "duckdb":
            raise SettingsError(
                "FINANCE_WAREHOUSE=postgres, but this step asked for the embedded DuckDB file: it should read the "
                "warehouse through Settings.warehouse_target. Run it with FINANCE_WAREHOUSE=duckdb, or report it.")
        return self.duckdb_file

    @property
    def warehouse_target(self) -> "Path | PostgresSettings":
        """What `finance_pipeline.warehouse.open_warehouse` opens: the DuckDB file, or the server."""
        if self.warehouse == "postgres":
            if self.postgres is None:
                raise SettingsError("FINANCE_WAREHOUSE=postgres but no FINANCE_PG_* settings were read")
            return self.postgres
        return self.duckdb_file

    @property
    def duckdb_file(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandbox"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"

    @property
    def dlt_dir(self) -> Path:
        return self.data_dir / "dlt"

    @classmethod
    def from_env(cls) -> "Settings":
        mode = (env("FINANCE_MODE", "sandbox") or "sandbox").lower()
        if mode not in ("sandbox", "live"):
            raise SettingsError(f"FINANCE_MODE={mode!r}: use 'sandbox' (default) or 'live'.")
        data_dir = Path(env("FINANCE_DATA_DIR") or (PROJECT_ROOT / "data")).resolve()
        fault_rate = _float("FINANCE_SANDBOX_FAULT_RATE", 0.0)
        if not 0.0 <= fault_rate < 1.0:
            raise SettingsError(f"FINANCE_SANDBOX_FAULT_RATE={fault_rate}: must be in [0, 1).")
        warehouse = (env("FINANCE_WAREHOUSE") or "duckdb").strip().lower()
        if warehouse not in WAREHOUSES:
            raise SettingsError(f"FINANCE_WAREHOUSE={warehouse!r}: use 'duckdb' (default, the embedded file) or "
                                "'postgres' (with FINANCE_PG_HOST, FINANCE_PG_USER, FINANCE_PG_PASSWORD, ...).")
        shopify_api = (env("FINANCE_SHOPIFY_API") or "rest").strip().lower()
        if shopify_api not in ("rest", "graphql"):
            raise SettingsError(f"FINANCE_SHOPIFY_API={shopify_api!r}: use 'rest' (default, the REST Admin API) or "
                                "'graphql' (the GraphQL Admin API: bulk operations for backfills).")
        return cls(
            shopify_api=shopify_api,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            warehouse=warehouse,  # type: ignore[arg-type]
            postgres=PostgresSettings.from_env() if warehouse == "postgres" else None,
            data_dir=data_dir,
            sandbox_seed=_int("FINANCE_SANDBOX_SEED", 42),
            sandbox_size=_int("FINANCE_SANDBOX_SIZE", 20_000),
            fault_rate=fault_rate,
            time_scale=_float("FINANCE_SANDBOX_TIME_SCALE", SANDBOX_TIME_SCALE) if mode == "sandbox" else 1.0,
            http_timeout_s=_float("FINANCE_HTTP_TIMEOUT_S", 30.0),
            http_max_attempts=_int("FINANCE_HTTP_MAX_ATTEMPTS", 8),
            payment_failure_threshold=_float("FINANCE_ALERT_PAYMENT_FAILURE_RATE", 0.25),
            payment_failure_min_attempts=_int("FINANCE_ALERT_PAYMENT_FAILURE_MIN_ATTEMPTS", 4),
            payment_failure_window_hours=_int("FINANCE_ALERT_PAYMENT_FAILURE_WINDOW_HOURS", 72),
            alert_payment_failure_p=_float("FINANCE_ALERT_PAYMENT_FAILURE_P", 0.001),
            alert_payment_baseline_days=_int("FINANCE_ALERT_PAYMENT_BASELINE_DAYS", 28),
            alert_volume_window_hours=_int("FINANCE_ALERT_VOLUME_WINDOW_HOURS", 24),
            alert_volume_baseline_weeks=_int("FINANCE_ALERT_VOLUME_BASELINE_WEEKS", 8),
            alert_volume_z=_float("FINANCE_ALERT_VOLUME_Z", 4.0),
            alert_volume_min_orders=_int("FINANCE_ALERT_VOLUME_MIN_ORDERS", 10),
            alert_overdue_days=tuple(sorted(int(x) for x in (env("FINANCE_ALERT_OVERDUE_DAYS") or "30,60,90").split(",")
                                            if x.strip())),
            alert_overdue_min_home=_float("FINANCE_ALERT_OVERDUE_MIN_HOME", 0.0),
            alert_payout_missing_days=_int("FINANCE_ALERT_PAYOUT_MISSING_DAYS", 5),
            alert_stale_sync_hours=_int("FINANCE_ALERT_STALE_SYNC_HOURS", 6),
            alert_worsen_factor=_float("FINANCE_ALERT_WORSEN_FACTOR", 1.5),
            destinations=_names("FINANCE_DESTINATIONS"),
            sources=_names("FINANCE_SOURCES"),
            publish_dry_run=(env("FINANCE_PUBLISH_DRY_RUN") or "").strip().lower() in ("1", "true", "yes"),
        )


def get_settings() -> Settings:
    return Settings.from_env()
