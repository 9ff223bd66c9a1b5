"""dbt staging for Shopify: built on what the source loaded, its tests pass, and every staged
amount equals the world's truth (presentment and shop money, tax lines, refunds, payouts)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.shopify.emulator import ShopifyEmulator
from finance_pipeline.platforms.shopify.source import shopify_source
from finance_pipeline.settings import PROJECT_ROOT

DBT_DIR = PROJECT_ROOT / "dbt_project"

# staged rows that are not in the world's truth at the clock (EXCEPT), per model
CHECKS = {
    "stg_shopify__orders": """
        select order_id, order_number, customer_id, customer_email, customer_type, currency, shop_currency,
               ordered_at, cancelled_at, taxes_included, source_name, ship_country,
               case when ship_country = 'US' then ship_province end, terms_days, due_on, discount_codes,
               shipping_price, shipping_tax, shipping_price_shop, shipping_tax_shop, tax_treatment, channel
          from staging.stg_shopify__orders
        except
        select order_id, name, shopify_customer_id::varchar, email, kind, currency, 'GBP',
               created_at, date_trunc('second', case when cancelled_at <= $clock then cancelled_at end),
               taxes_included, source_name, country, region, terms_days, due_on, discount_code,
               shipping_price, shipping_tax, shipping_price_shop, shipping_tax_shop, tax_treatment, 'shopify'
          from w.shopify_orders where created_at <= $clock""",
    "stg_shopify__order_lines": """
        select order_id, line_id, sku, quantity, price, price_shop, discount, discount_shop, tax, tax_shop, tax_rate,
               is_gift_card
          from staging.stg_shopify__order_lines
        except
        select l.order_id, l.line_id, l.sku, l.quantity, l.price, l.price_shop, l.discount, l.discount_shop,
               l.tax, l.tax_shop, coalesce((select sum(rate) from w.shopify_tax_lines t
                                             where t.owner = 'line' and t.owner_id = l.line_id), 0),
               coalesce(l.gift_card, false)
          from w.shopify_order_lines l join w.shopify_orders o using (order_id)
         where o.created_at <= $clock and coalesce(l.added_at, o.created_at) <= $clock""",
    "stg_shopify__tax_lines": """
        select order_id, owner, coalesce(line_id, 0), position, title, rate, amount, amount_shop
          from staging.stg_shopify__tax_lines
        except
        select t.order_id, t.owner, t.owner_id, t.position, t.title, t.rate, t.amount, t.amount_shop
          from w.shopify_tax_lines t join w.shopify_orders o using (order_id)
          left join w.shopify_order_lines l on t.owner = 'line' and l.line_id = t.owner_id
         where o.created_at <= $clock and coalesce(l.added_at, o.created_at) <= $clock""",
    "stg_shopify__refunds": """
        select refund_id, order_id, refunded_at, note, restock, shipping_amount, shipping_tax,
               shipping_amount_shop, shipping_tax_shop
          from staging.stg_shopify__refunds
        except
        select refund_id, order_id, date_trunc('second', created_at), note, restock, shipping_amount, shipping_tax,
               shipping_amount_shop, shipping_tax_shop
          from w.shopify_refunds where created_at <= $clock""",
    "stg_shopify__refund_lines": """
        select refund_line_id, refund_id, order_id, line_id, quantity, subtotal, total_tax, subtotal_shop,
               total_tax_shop, restock_type
          from staging.stg_shopify__refund_lines
        except
        select rl.refund_line_id, rl.refund_id, rl.order_id, rl.line_id, rl.quantity, rl.subtotal, rl.total_tax,
               rl.subtotal_shop, rl.total_tax_shop, rl.restock_type
          from w.shopify_refund_lines rl join w.shopify_refunds r using (refund_id) where r.created_at <= $clock""",
    # every transaction of an order a gift card paid for (scenario S12), with the card it names
    "stg_shopify__transactions": """
        select transaction_id, order_id, kind, gateway, status, currency, amount, created_at, gift_card_id
          from staging.stg_shopify__transactions
        except
        select t.txn_id, t.order_id, t.kind, t.gateway, t.status, t.currency, t.amount,
               date_trunc('second', t.created_at), t.gift_card_id
          from w.shopify_transactions t where t.created_at <= $clock""",
    "stg_shopify__payouts": """
        select payout_id, payout_date, status, currency, amount, charges_gross_amount, charges_fee_amount,
               refunds_gross_amount
          from staging.stg_shopify__payouts
        except
        select payout_id, payout_date, 'paid', currency, amount, charges_gross, fees, refunds_gross
          from w.shopify_payouts where visible_at <= $clock""",
    "stg_shopify__balance_transactions": """
        select balance_transaction_id, payout_id, payout_status, type, currency, amount, fee, net,
               source_order_id, source_order_transaction_id, processed_at
          from staging.stg_shopify__balance_transactions
        except
        select b.bt_id, case when p.visible_at <= $clock then b.payout_id end,
               case when p.visible_at <= $clock then 'paid' else 'pending' end, b.type, b.currency, b.amount,
               b.fee, b.net, b.order_id, b.txn_id, date_trunc('second', b.processed_at)
          from w.shopify_balance_transactions b left join w.shopify_payouts p using (payout_id)
         where b.processed_at <= $clock""",
}
# how many rows each model should have at the clock
COUNTS = {
    "stg_shopify__orders": "select count(*) from w.shopify_orders where created_at <= $clock",
    "stg_shopify__order_lines": """select count(*) from w.shopify_order_lines l join w.shopify_orders o using (order_id)
                                   where o.created_at <= $clock and coalesce(l.added_at, o.created_at) <= $clock""",
    "stg_shopify__refunds": "select count(*) from w.shopify_refunds where created_at <= $clock",
    "stg_shopify__refund_lines": """select count(*) from w.shopify_refund_lines rl join w.shopify_refunds r
                                    using (refund_id) where r.created_at <= $clock""",
    "stg_shopify__payouts": "select count(*) from w.shopify_payouts where visible_at <= $clock",
    "stg_shopify__transactions": """select count(*) from w.shopify_transactions t join w.shopify_orders o using (order_id)
                                     where t.created_at <= $clock and o.created_at <= $clock and t.order_id in (
                                       select order_id from w.shopify_transactions
                                        where gateway = 'gift_card' and created_at <= $clock)""",
    "stg_shopify__balance_transactions": "select count(*) from w.shopify_balance_transactions where processed_at <= $clock",
}


def dbt_build(warehouse: Path, work: Path) -> subprocess.CompletedProcess:
    profiles = work / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text(
        "finance:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        f"      path: '{warehouse}'\n      threads: 2\n")
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run(
        [str(dbt), "build", "--select", "staging.shopify", "source:shopify", "--project-dir", str(DBT_DIR),
         "--profiles-dir", str(profiles), "--target-path", str(work / "target"), "--log-path", str(work / "logs")],
        capture_output=True, text=True, timeout=300, cwd=work,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "FINANCE_WAREHOUSE_PATH": str(warehouse)},
    )


@pytest.fixture
def staged(settings, sandbox, start_emulator, tmp_path):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    sandbox.advance(hours=24 * 10)  # some pending balance transactions, edits, refunds at an odd clock
    quarantine = Quarantine("shopify")
    connection = Connection("shopify", running.url, running.emulator.credentials(), settings)
    run_platform(settings, "shopify", shopify_source(connection, quarantine), quarantine)
    result = dbt_build(settings.warehouse_path, tmp_path / "dbt")
    assert result.returncode == 0, result.stdout[-4000:]
    return settings.warehouse_path


def test_staging_equals_the_world(staged, sandbox):
    con = duckdb.connect(str(staged), read_only=True)
    try:
        con.execute(f"attach '{sandbox.world_path()}' as w (read_only)")
        params = {"clock": sandbox.clock}
        for model, sql in CHECKS.items():
            assert con.execute(f"select count(*) from ({sql})", params).fetchone()[0] == 0, model
        for model, sql in COUNTS.items():
            got = con.execute(f"select count(*) from staging.{model}").fetchone()[0]
            assert got == con.execute(sql, params).fetchone()[0], model
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_schema = 'staging' and table_name = 'stg_shopify__orders'").fetchall())
        assert types["total_price"] == "DECIMAL(18,2)" and types["ordered_at"] == "TIMESTAMP WITH TIME ZONE"
        assert types["due_on"] == "DATE" and types["order_id"] == "BIGINT"
        # money identities hold on the staged orders
        bad = con.execute("""
            select count(*) from staging.stg_shopify__orders o
            left join (select order_id, sum(price * quantity - discount) as goods, sum(tax) as tax
                         from staging.stg_shopify__order_lines group by 1) l using (order_id)
            where o.subtotal_price <> coalesce(l.goods, 0)
               or o.total_tax <> o.order_tax_lines_amount""").fetchone()[0]
        assert bad == 0
        # the order-level tax is the world's: its own row where it was rounded once per order (S13),
        # else the line and shipping tax lines; a few orders differ, by a cent or two
        wrong, differ = con.execute("""
            with world as (
                select t.order_id,
                       coalesce(sum(t.amount) filter (where t.owner = 'order'),
                                sum(t.amount) filter (where t.owner <> 'order')) as tax,
                       coalesce(sum(t.amount_shop) filter (where t.owner = 'order'),
                                sum(t.amount_shop) filter (where t.owner <> 'order')) as tax_shop
                from w.shopify_tax_lines t
                left join w.shopify_order_lines l on t.owner = 'line' and l.line_id = t.owner_id
                where coalesce(l.added_at, $clock) <= $clock group by 1)
            select count(*) filter (where o.order_tax_lines_amount <> coalesce(w.tax, 0)
                                       or o.order_tax_lines_amount_shop <> coalesce(w.tax_shop, 0)),
                   count(*) filter (where o.order_tax_lines_amount <> coalesce(l.tax, 0) + o.shipping_tax)
            from staging.stg_shopify__orders o left join world w using (order_id)
            left join (select order_id, sum(tax) as tax from staging.stg_shopify__order_lines group by 1) l using (order_id)
            """, params).fetchone()
        assert wrong == 0 and differ > 0
        # gift card sales and tenders reached staging (S12)
        (cards, tenders), = con.execute("""select (select count(*) from staging.stg_shopify__order_lines where is_gift_card),
                                                  (select count(*) from staging.stg_shopify__transactions
                                                    where gateway = 'gift_card' and gift_card_id is not null)""").fetchall()
        assert cards > 0 and tenders > 0
    finally:
        con.close()
