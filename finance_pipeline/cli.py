"""`finance-pipeline`: the shell entry point.

    finance-pipeline run                      # materialize everything once on the sandbox, print a summary
    finance-pipeline run --platform shopify   # one source, plus everything downstream of it
    finance-pipeline sandbox advance --hours 24
    finance-pipeline sandbox serve            # emulators on fixed ports, one JSON line per platform
    finance-pipeline ui                       # the Dagster UI (dagster dev -w workspace.yaml)
    finance-pipeline docs                     # dbt docs, generated and served
    finance-pipeline report                   # the finance report (HTML with charts) under data/reports/
    finance-pipeline webhooks serve           # the webhook receiver (POST /webhooks/<platform>)
    finance-pipeline looker-endpoint          # the Looker Studio connector endpoint (/connector/…)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from finance_pipeline.settings import PROJECT_ROOT, Settings, SettingsError, get_settings


def _prepare_environment(args: argparse.Namespace) -> Settings:
    """Command-line options become environment settings, so Dagster code sees the same values."""
    if getattr(args, "size", None):
        os.environ["FINANCE_SANDBOX_SIZE"] = str(args.size)
    if getattr(args, "seed", None) is not None:
        os.environ["FINANCE_SANDBOX_SEED"] = str(args.seed)
    if getattr(args, "data_dir", None):
        os.environ["FINANCE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["FINANCE_WAREHOUSE_PATH"] = str(settings.duckdb_file)  # dbt's duckdb profile; unused on Postgres
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return settings


def _money(x: Decimal | None) -> str:
    return f"£{(x or Decimal(0)):,.2f}"


# ------------------------------------------------------------------------------------------ run
def cmd_run(args: argparse.Namespace) -> int:
    settings = _prepare_environment(args)
    started = time.monotonic()
    if settings.mode == "live":
        _check_live_credentials(settings, args.platform)
    if settings.mode == "sandbox":
        from finance_pipeline.sandbox import runtime

        sandbox = runtime.sandbox_for(settings)
        state = sandbox.state()
        t0 = time.monotonic()
        sandbox.ensure_world()
        print(f"sandbox: seed {state.seed}, {state.size:,} orders/year, clock {state.clock:%Y-%m-%d %H:%M} UTC "
              f"(world ready in {time.monotonic() - t0:.1f}s)", flush=True)
        runtime.start_emulators(settings)
        from finance_pipeline.webhooks import receiver as webhook_receiver
        from finance_pipeline.webhooks.inbox import inbox_location

        hooks = webhook_receiver.start(settings)  # takes deliveries while the job runs (the sensor picks them up)
        print(f"webhook receiver: {hooks.url}/webhooks/<platform> ({', '.join(sorted(hooks.app.endpoints))}); "
              f"inbox {inbox_location(settings)}", flush=True)

    from dagster import DagsterInstance

    from finance_pipeline.definitions import defs

    job_name = "hourly_sync" if args.no_publish else "daily_close"
    job = defs.resolve_job_def(job_name)
    selection = None
    if args.platform or args.select:
        selection = _selection(defs, args.platform, args.select)
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False,
                                        tags={"finance/trigger": "cli"})
    elapsed = time.monotonic() - started
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        print(f"\nrun {result.run_id} FAILED in steps: {', '.join(failed)} — open the Dagster UI "
              f"(finance-pipeline ui) to read the logs.", file=sys.stderr)
        return 1
    print(f"\nrun {result.run_id} succeeded in {elapsed:.1f}s\n")
    print(summary(settings))
    published = publish_summary(result)
    if published:
        print(published)
    if settings.mode == "sandbox":
        from finance_pipeline.sandbox import runtime

        served = ", ".join(f"{name} {r.emulator.counters['requests']} requests "
                           f"({r.emulator.counters['over_limit']} over its rate limit)"
                           for name, r in runtime.start_emulators(settings).items())
        print(f"Sandbox emulators served: {served}")
        print(f"Webhook receiver answered: {dict(hooks.app.counters) or 'no deliveries'}")
        from finance_pipeline.notify.sandbox import notifications_dir, read_log

        sent = {sink: len(read_log(settings, sink)) for sink in ("slack", "email", "webhook")}
        if any(sent.values()):
            print(f"Alert messages in the sandbox sinks: {sent} ({notifications_dir(settings)})")
        hooks.stop()
    return 0


def _check_live_credentials(settings: Settings, only: list[str] | None) -> None:
    """Fail before anything runs when a credential is missing (SettingsError names it)."""
    from finance_pipeline.ingest.switches import require_sources
    from finance_pipeline.platforms import registry
    from finance_pipeline.publish.destinations import enabled_destinations

    sources = require_sources(settings)
    unknown = [name for name in only or [] if name not in sources]
    if unknown:
        raise SettingsError(f"--platform {', '.join(unknown)}: not switched on; FINANCE_SOURCES has {', '.join(sources)}.")
    wanted = set(only or sources) | set(enabled_destinations(settings))
    for platform in registry.PLATFORMS:
        if platform.name in wanted:
            registry.Platform.load(platform.live_connection)(settings)


def _selection(defs, platforms: list[str] | None, select: list[str] | None):
    from dagster import AssetKey, AssetSelection

    sel = AssetSelection.keys()
    for name in platforms or []:
        sel = sel | AssetSelection.groups("ingest") & AssetSelection.key_prefixes([f"raw_{name}"])
    if platforms:
        sel = sel.downstream()
    for item in select or []:
        sel = sel | AssetSelection.keys(AssetKey(item.split("/")))
    graph = defs.resolve_asset_graph()
    return list(sel.resolve(graph))


def summary(settings: Settings) -> str:
    """The main job's closing summary, read from the marts."""
    from finance_pipeline.warehouse import connect

    out = []
    with connect(settings, read_only=True) as con:
        # as of the clock the marts were built for (a business without trade invoices has one too)
        as_of = con.execute("select coalesce((select max(as_of_date) from marts.rpt_outstanding_balances), "
                            "(select max(ordered_at)::date from marts.fct_orders))").fetchone()[0]
        out.append(f"Finance summary as of {as_of} (amounts in GBP)")
        out.append("\nOrders and net sales per channel:")
        per_channel = con.execute(
            "select channel, count(*), sum(net_amount_home), sum(gross_amount_home) from marts.fct_orders "
            "where not is_void group by channel order by channel").fetchall()
        width = max([10, *(len(row[0]) for row in per_channel)])  # every channel by its full name, aligned
        for channel, orders, net, gross in per_channel:
            out.append(f"  {channel:<{width}} {orders:>9,} orders   net sales {_money(net):>16}   "
                       f"(gross {_money(gross)})")
        total, customers, b90, oldest = con.execute(
            "select sum(open_amount_home), count(*) filter (where open_amount_home > 0), "
            "sum(days_over_90_home), max(max_days_past_due) from marts.rpt_outstanding_balances").fetchone()
        bucket = con.execute(
            "select oldest_bucket, count(*), sum(open_amount_home) from marts.rpt_outstanding_balances "
            "where oldest_bucket is not null group by oldest_bucket order by "
            "case oldest_bucket when '90+' then 0 when '61-90' then 1 when '31-60' then 2 when '1-30' then 3 else 4 end "
            "limit 1").fetchone()
        out.append(f"\nOutstanding trade balances: {_money(total)} owed by {customers} customers")
        if bucket:
            out.append(f"  oldest bucket {bucket[0]} days past due: {bucket[1]} customer(s), {_money(bucket[2])} "
                       f"(oldest invoice {oldest} days past due; {_money(b90)} over 90 days)")
        month = con.execute(
            "select max(month) from marts.rpt_profit_and_loss where month < date_trunc('month', ?::date)", [as_of]
        ).fetchone()[0]
        if month is not None:
            out.append(f"\nP&L for {month:%B %Y}:")
            out.append(f"  {'channel':<{width}} {'gross sales':>14} {'discounts':>12} {'refunds':>12} {'net sales':>14} "
                       f"{'COGS':>14} {'fees':>10} {'gross margin':>14}")
            for row in con.execute(
                    "select channel, gross_sales, discounts, refunds, net_sales, cogs, fees, gross_margin "
                    "from marts.rpt_profit_and_loss where month = ? order by channel", [month]).fetchall():
                out.append(f"  {row[0]:<{width}} " + " ".join(f"{_money(v):>{w}}" for v, w in
                                                       zip(row[1:], (14, 12, 12, 14, 14, 10, 14))))
        breaks = con.execute("select count(*) from marts.rpt_payout_reconciliation "
                             "where reconciliation_status <> 'matched'").fetchone()[0]
        payouts = con.execute("select count(*) from marts.rpt_payout_reconciliation").fetchone()[0]
        out.append(f"\nPayouts reconciled: {payouts - breaks} of {payouts} ({breaks} break(s))")
        try:
            alerts = con.execute("select count(*) from ops.alerts").fetchone()[0]
            out.append(f"Alerts raised so far: {alerts} (ops.alerts)")
        except Exception:  # noqa: BLE001 - the table appears with the first alert evaluation
            pass
    out.append(f"\nWarehouse: {settings.warehouse_target}  (schemas raw_*, staging, intermediate, marts, ops)")
    out.append("Dagster UI: finance-pipeline ui   ·   dbt docs: finance-pipeline docs")
    return "\n".join(out)


def publish_summary(result: Any) -> str:
    """One line per destination the run published to: what was written, and its read-back check."""
    checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()
              if e.asset_key.path[0] == "publish"}
    lines = []
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.path[0] != "publish":
            continue
        name = mat.asset_key.path[-1]
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        if meta.get("skipped") == "destination switched off":
            continue
        counts = ", ".join(f"{meta[k]} {k}" for k in ("created", "updated", "voided", "failed") if meta.get(k))
        check = checks.get(name)
        verdict = ("read-back clean" if check is not None and check.passed else
                   f"read-back: {meta.get('mismatches', '?')} mismatch(es) — see the asset check in the Dagster UI")
        lines.append(f"  {name:<30} {counts or 'nothing to write'}; {verdict}")
    return ("Published (each destination read back against the marts):\n" + "\n".join(lines)) if lines else ""


# ------------------------------------------------------------------------------------------ sandbox
def cmd_sandbox(args: argparse.Namespace) -> int:
    settings = _prepare_environment(args)
    from finance_pipeline.sandbox import runtime
    from finance_pipeline.sandbox.store import Sandbox

    sandbox = Sandbox(settings.sandbox_dir)
    if args.action in ("init", "reset"):
        state = sandbox.init(settings.sandbox_seed, settings.sandbox_size, reset=args.action == "reset")
        t0 = time.monotonic()
        path = sandbox.ensure_world()
        print(f"sandbox seed {state.seed}, size {state.size:,}, clock {state.clock.isoformat()} "
              f"(world {path.name} ready in {time.monotonic() - t0:.1f}s)")
        return 0
    sandbox = runtime.sandbox_for(settings)
    if args.action == "advance":
        state = sandbox.advance(args.hours)
        sandbox.ensure_world()
        print(f"sandbox clock is now {state.clock.isoformat()}")
        return 0
    if args.action == "status":
        state = sandbox.state()
        print(json.dumps({"seed": state.seed, "size": state.size, "clock": state.clock.isoformat(),
                          "world": str(sandbox.world_path())}, indent=2))
        return 0
    if args.action == "serve":
        ports = {}
        if args.port_base:
            from finance_pipeline.platforms import registry

            ports = {p.name: args.port_base + i for i, p in enumerate(registry.PLATFORMS)}
        import signal

        def _stop(*_: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        running = runtime.start_emulators(settings, ports=ports)
        runtime.write_endpoints(settings, running)
        for entry in runtime.describe(running):
            print(json.dumps(entry), flush=True)
        print("emulators running; Ctrl-C to stop", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            (settings.sandbox_dir / "endpoints.json").unlink(missing_ok=True)
            runtime.stop_emulators()
        return 0
    raise AssertionError(args.action)


# ------------------------------------------------------------------------------------------ ui / docs
def cmd_ui(args: argparse.Namespace) -> int:
    _prepare_environment(args)
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.call([str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                            "-p", str(args.port)], cwd=PROJECT_ROOT)


def cmd_docs(args: argparse.Namespace) -> int:
    settings = _prepare_environment(args)
    from finance_pipeline.defs.transform import DBT_DIR, dbt_env, dbt_target

    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, **dbt_env(settings)}
    base = [str(dbt), "--quiet"]
    # a folder of its own: generating the docs rewrites manifest.json, which the Dagster definitions
    # read from target/ (see transform.ensure_manifest)
    site = DBT_DIR / "target" / "docs"
    common = ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path", str(site),
              *dbt_target(settings)]
    rc = subprocess.call(base + ["docs", "generate", *common], env=env, cwd=DBT_DIR)
    if rc or args.no_serve:
        print(f"dbt docs written to {site / 'index.html'}" if not rc else "dbt docs generate failed")
        return rc
    return subprocess.call([str(dbt), "docs", "serve", "--port", str(args.port), *common], env=env, cwd=DBT_DIR)


def cmd_webhooks(args: argparse.Namespace) -> int:
    """`webhooks serve`: the receiver in the foreground; `webhooks status`: what the inbox holds."""
    settings = _prepare_environment(args)
    from finance_pipeline.webhooks import receiver
    from finance_pipeline.webhooks.inbox import open_inbox

    if args.action == "status":
        with open_inbox(settings) as inbox:
            print(json.dumps({"inbox": inbox.where, "events": inbox.count(),
                              "consumed": inbox.count("consumed_at is not null"),
                              "pending": {p: n for p, (n, _) in inbox.pending_by_platform().items()},
                              "in_runs": {b: n for b, (_, _, n) in inbox.open_batches().items()}}, indent=2))
        return 0
    import signal

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        receiver.serve_forever(settings, args.port, args.host, announce=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_looker_endpoint(args: argparse.Namespace) -> int:
    from finance_pipeline.platforms.looker_studio.endpoint import run_from_cli

    return run_from_cli(_prepare_environment(args), args.host, args.port)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the finance report from the marts as they are (run the pipeline first)."""
    settings = _prepare_environment(args)
    from finance_pipeline.report import build_report, money

    from finance_pipeline.warehouse import missing_table_errors

    if settings.warehouse == "duckdb" and not settings.duckdb_file.exists():
        print(f"no warehouse at {settings.duckdb_file}: run `finance-pipeline run` first", file=sys.stderr)
        return 1
    out = Path(args.out).resolve() if args.out else settings.data_dir / "reports"
    try:
        result = build_report(settings.warehouse_target, out)
    except missing_table_errors() as exc:
        print(f"the marts are not built yet ({str(exc).splitlines()[0]}): run `finance-pipeline run` first",
              file=sys.stderr)
        return 1
    d = result.data
    print(f"finance report as of {d.as_of}: {result.path}")
    print(f"  (also {result.latest}; open it in a browser, no server needed)")
    print(f"  owed to us {money(d.ar_open_home)} · tax owed {d.tax_period} {money(d.tax_owed_home)} · "
          f"payout exceptions {len(d.payout_breaks)} of {d.payouts_total} · ledger "
          f"{'balanced' if d.gl_unbalanced_entries == 0 else f'{d.gl_unbalanced_entries} unbalanced entries'}")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    settings = _prepare_environment(args)
    from finance_pipeline.warehouse import connect, table_exists

    with connect(settings, read_only=True) as con:
        if not table_exists(con, "ops", "alerts"):
            print("no alerts yet")
            return 0
        has_event = con.execute("select count(*) from information_schema.columns where table_schema = 'ops' "
                                "and table_name = 'alerts' and column_name = 'event'").fetchone()[0]
        event = "coalesce(event, 'raised')" if has_event else "'raised'"  # a table from before alert events
        for row in con.execute(f"select as_of, severity, rule, title, {event} from ops.alerts "
                               "order by as_of desc, raised_at desc limit ?", [args.limit]).fetchall():
            print(f"{row[0]:%Y-%m-%d %H:%M}  {row[4]:<9} {row[1]:<8} {row[2]:<22} {row[3]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finance-pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="runtime state folder (default: ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize everything once (the main job) and print a summary")
    run.add_argument("--platform", action="append", help="only this source (repeatable) and what is downstream")
    run.add_argument("--select", action="append", help="an asset key like marts/fct_orders (repeatable)")
    run.add_argument("--no-publish", action="store_true", help="ingest + marts + alerts only (the hourly job)")
    run.add_argument("--size", type=int, help="sandbox orders per year for a new sandbox (default 20000)")
    run.add_argument("--seed", type=int, help="sandbox seed for a new sandbox (default 42)")
    run.set_defaults(func=cmd_run)

    sb = sub.add_parser("sandbox", help="the simulated business: init, reset, advance, serve, status")
    sb.add_argument("action", choices=["init", "reset", "advance", "serve", "status"])
    sb.add_argument("--hours", type=float, default=1.0, help="with advance: how far to move the clock")
    sb.add_argument("--size", type=int)
    sb.add_argument("--seed", type=int)
    sb.add_argument("--port-base", type=int, help="with serve: fixed ports from here (else free ports)")
    sb.set_defaults(func=cmd_sandbox)

    ui = sub.add_parser("ui", help="the Dagster UI")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    docs = sub.add_parser("docs", help="generate and serve dbt docs")
    docs.add_argument("--port", type=int, default=8080)
    docs.add_argument("--no-serve", action="store_true")
    docs.set_defaults(func=cmd_docs)

    rep = sub.add_parser("report", help="write the finance report (HTML with charts) from the marts")
    rep.add_argument("--out", help="folder for the report (default: <data dir>/reports)")
    rep.set_defaults(func=cmd_report)

    al = sub.add_parser("alerts", help="the latest alerts")
    al.add_argument("--limit", type=int, default=20)
    al.set_defaults(func=cmd_alerts)

    wh = sub.add_parser("webhooks", help="the webhook receiver: serve it, or show the inbox")
    wh.add_argument("action", choices=["serve", "status"])
    wh.add_argument("--port", type=int, default=8787, help="with serve: 0 picks a free port")
    wh.add_argument("--host", default="127.0.0.1")
    wh.set_defaults(func=cmd_webhooks)

    lk = sub.add_parser("looker-endpoint", help="the Looker Studio connector endpoint over the published snapshot")
    lk.add_argument("--port", type=int, default=8790)
    lk.add_argument("--host", default="127.0.0.1")
    lk.set_defaults(func=cmd_looker_endpoint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
