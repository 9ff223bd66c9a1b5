"""The curtain business's reference data: products with dated costs, markets, tax rates.

Prices are list prices per market currency.  Retail prices in GBP, EUR and AUD markets include
VAT/GST (`taxes_included`), US retail prices exclude sales tax, trade prices exclude tax
everywhere.  Fabric is sold in "per 10 cm" variants (platforms take integer quantities): 25 units
is 2.5 metres (scenario S4).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from finance_pipeline.settings import PROJECT_ROOT

D = Decimal
CENT = D("0.01")


@dataclass(frozen=True)
class Product:
    sku: str
    title: str
    category: str  # fabric | curtains | tracks | poles | blinds | accessories
    unit: str  # "10cm" for fabric, "piece" otherwise
    price_gbp: Decimal  # retail, VAT-inclusive, per unit
    cost_gbp: Decimal  # unit cost on 2024-01-01 (the dated list is seeds/product_costs.csv)


PRODUCTS: tuple[Product, ...] = (
    Product("FAB-LIN-NAT", "Belgian linen, natural, 140 cm wide", "fabric", "10cm", D("2.60"), D("0.98")),
    Product("FAB-LIN-OAT", "Belgian linen, oatmeal, 140 cm wide", "fabric", "10cm", D("2.60"), D("0.98")),
    Product("FAB-VEL-EMR", "Cotton velvet, emerald, 137 cm wide", "fabric", "10cm", D("3.40"), D("1.32")),
    Product("FAB-VEL-NAV", "Cotton velvet, navy, 137 cm wide", "fabric", "10cm", D("3.40"), D("1.32")),
    Product("FAB-BLK-WHT", "Blackout lining, white, 150 cm wide", "fabric", "10cm", D("0.95"), D("0.31")),
    Product("FAB-SHR-IVY", "Voile sheer, ivory, 300 cm drop", "fabric", "10cm", D("1.45"), D("0.52")),
    Product("FAB-JAC-GLD", "Damask jacquard, gold, 140 cm wide", "fabric", "10cm", D("4.20"), D("1.71")),
    Product("FAB-WOL-CHR", "Wool plaid, charcoal, 145 cm wide", "fabric", "10cm", D("3.90"), D("1.58")),
    Product("CUR-EYE-168", "Eyelet curtains, lined, 168x183 cm pair", "curtains", "piece", D("89.00"), D("33.50")),
    Product("CUR-EYE-229", "Eyelet curtains, lined, 229x229 cm pair", "curtains", "piece", D("129.00"), D("48.20")),
    Product("CUR-PLT-168", "Pencil pleat curtains, 168x229 cm pair", "curtains", "piece", D("99.00"), D("36.80")),
    Product("CUR-VEL-229", "Velvet curtains, thermal, 229x229 cm pair", "curtains", "piece", D("179.00"), D("64.10")),
    Product("CUR-SHR-140", "Sheer voile panels, 140x229 cm pair", "curtains", "piece", D("39.00"), D("12.40")),
    Product("TRK-CEI-200", "Ceiling curtain track, 200 cm", "tracks", "piece", D("45.00"), D("15.90")),
    Product("TRK-CEI-300", "Ceiling curtain track, 300 cm", "tracks", "piece", D("59.00"), D("21.30")),
    Product("TRK-BAY-400", "Bendable bay window track, 400 cm", "tracks", "piece", D("85.00"), D("31.00")),
    Product("TRK-MOT-300", "Motorised track with remote, 300 cm", "tracks", "piece", D("349.00"), D("142.00")),
    Product("POL-WOD-240", "Oak curtain pole, 28 mm, 240 cm", "poles", "piece", D("39.00"), D("13.20")),
    Product("POL-MET-300", "Antique brass pole, 35 mm, 300 cm", "poles", "piece", D("75.00"), D("27.40")),
    Product("POL-CHR-180", "Chrome pole, 19 mm, 180 cm", "poles", "piece", D("29.00"), D("9.10")),
    Product("BLD-ROL-120", "Blackout roller blind, 120 cm", "blinds", "piece", D("55.00"), D("19.40")),
    Product("BLD-ROM-090", "Linen roman blind, 90 cm", "blinds", "piece", D("95.00"), D("35.60")),
    Product("BLD-VEN-150", "Wooden venetian blind, 150 cm", "blinds", "piece", D("119.00"), D("44.80")),
    Product("ACC-TIE-BRS", "Brass tieback hooks, pair", "accessories", "piece", D("12.00"), D("3.60")),
    Product("ACC-RNG-28", "Curtain rings 28 mm, pack of 10", "accessories", "piece", D("8.50"), D("2.20")),
    Product("ACC-HOK-50", "Curtain hooks, pack of 50", "accessories", "piece", D("4.50"), D("1.05")),
    Product("ACC-TAP-3", "Pencil pleat tape, 3 inch, per metre", "accessories", "piece", D("2.20"), D("0.55")),
)

ACCESSORIES = tuple(p for p in PRODUCTS if p.category == "accessories")

# Market multipliers turn the GBP retail list into rounded local list prices.
MARKET_MULTIPLIER = {"GBP": D("1"), "EUR": D("1.17"), "USD": D("1.05"), "AUD": D("1.98")}
TRADE_FACTOR = D("0.55")  # trade price = retail ex-VAT x 0.66 in practice; kept simple as 55 % of the VAT-inclusive list

CURRENCY_OF_COUNTRY = {"GB": "GBP", "IE": "EUR", "FR": "EUR", "DE": "EUR", "NL": "EUR", "US": "USD", "AU": "AUD"}

# VAT / GST rates for consumers (retail) by country
VAT_RATES = {"GB": D("0.20"), "IE": D("0.23"), "FR": D("0.20"), "DE": D("0.19"), "NL": D("0.21"), "AU": D("0.10")}
VAT_TITLES = {"GB": "GB VAT", "IE": "IE VAT", "FR": "FR TVA", "DE": "DE MwSt", "NL": "NL BTW", "AU": "AU GST"}

# US states: list of (title, rate) tax components as Shopify reports them (state, county, city)
US_STATE_TAX: dict[str, tuple[tuple[str, Decimal], ...]] = {
    "NY": (("NY State Tax", D("0.04")), ("New York City Tax", D("0.045")), ("Metropolitan Commuter Transportation District", D("0.00375"))),
    "CA": (("CA State Tax", D("0.0725")), ("Los Angeles County Tax", D("0.025"))),
    "TX": (("TX State Tax", D("0.0625")), ("Austin City Tax", D("0.01"))),
    "WA": (("WA State Tax", D("0.065")),),
    "NJ": (("NJ State Tax", D("0.06625")),),
    "FL": (("FL State Tax", D("0.06")), ("Miami-Dade County Tax", D("0.01"))),
    "OR": (),  # no sales tax
}
US_STATES = tuple(US_STATE_TAX)

SHIPPING = {  # (standard retail shipping, free-shipping threshold, trade freight, trade free threshold)
    "GBP": (D("4.95"), D("150"), D("25.00"), D("1000")),
    "EUR": (D("9.95"), D("180"), D("35.00"), D("1200")),
    "USD": (D("14.95"), D("200"), D("60.00"), D("1500")),
    "AUD": (D("24.95"), D("300"), D("80.00"), D("2000")),
}

DISCOUNT_CODES = (("WELCOME10", D("0.10")), ("CURTAIN15", D("0.15")), ("TRADESHOW5", D("0.05")))

# FX: GBP per unit of currency, a seeded random walk around these centres
FX_CENTRE = {"EUR": D("0.8500"), "USD": D("0.7800"), "AUD": D("0.5100")}


def market_price(product: Product, currency: str) -> Decimal:
    return (product.price_gbp * MARKET_MULTIPLIER[currency]).quantize(CENT)


def trade_price(product: Product, currency: str) -> Decimal:
    return (product.price_gbp * MARKET_MULTIPLIER[currency] * TRADE_FACTOR).quantize(CENT)


COSTS_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "product_costs.csv"


@lru_cache(maxsize=1)
def product_costs() -> tuple[tuple[str, date, Decimal], ...]:
    """The dated purchase-cost list (sku, valid_from, unit cost in GBP), kept as a dbt seed."""
    with COSTS_SEED.open(newline="") as f:
        return tuple((r["sku"], date.fromisoformat(r["valid_from"]), Decimal(r["unit_cost_gbp"]))
                     for r in csv.DictReader(f))
