"""ECB euro foreign exchange reference rates (the ECB Data Portal's EXR dataflow): the day's FX
rates of the business, a public source with no credentials.

Facts used (ECB Data Portal API documentation, data-api.ecb.europa.eu/service/):
- `GET /service/data/EXR/D.GBP+USD+AUD.EUR.SP00.A?startPeriod=YYYY-MM-DD&endPeriod=…&updatedAfter=…
  &format=csvdata`: one row per series and observation date, units of the currency per 1 EUR.
- Answers: 200 with the CSV, 404 "No results found" when nothing matches, 400 for a syntax error,
  406 for a format the service does not offer, 500/503 on its side.
- Rates are published on TARGET business days around 16:00 CET (2:15 pm C.E.T. is the concertation
  time named in the series title); none on weekends or TARGET holidays.  The number of decimals of
  each series is its DECIMALS attribute (GBP 5, USD and AUD 4).
"""

LIVE_API_URL = "https://data-api.ecb.europa.eu"
FLOW = "EXR"
DATA_PATH = f"/service/data/{FLOW}"
# GBP is always asked for: every GBP cross rate goes through it.  The others are the business's
# foreign currencies besides EUR (the euro itself is the base: GBP per EUR is the GBP series).
DEFAULT_CURRENCIES = ("GBP", "USD", "AUD")
DECIMALS = {"GBP": 5, "USD": 4, "AUD": 4, "JPY": 2}
TITLES = {"GBP": "UK pound sterling", "USD": "US dollar", "AUD": "Australian dollar"}
# csvdata columns, in the order the ECB sends them
CSV_COLUMNS = ("KEY", "FREQ", "CURRENCY", "CURRENCY_DENOM", "EXR_TYPE", "EXR_SUFFIX", "TIME_PERIOD", "OBS_VALUE",
               "OBS_STATUS", "OBS_CONF", "OBS_PRE_BREAK", "OBS_COM", "TIME_FORMAT", "BREAKS", "COLLECTION",
               "COMPILING_ORG", "DISS_ORG", "DOM_SER_IDS", "PUBL_ECB", "PUBL_MU", "PUBL_PUBLIC", "UNIT_INDEX_BASE",
               "COMPILATION", "COVERAGE", "DECIMALS", "NAT_TITLE", "SOURCE_AGENCY", "SOURCE_PUB", "TITLE",
               "TITLE_COMPL", "UNIT", "UNIT_MULT")
