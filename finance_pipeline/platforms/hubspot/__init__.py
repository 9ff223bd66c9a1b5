"""HubSpot CRM (deals of the UK/EU trade reps).  Facts: /work/shared/platforms/hubspot.md."""

LIVE_API_URL = "https://api.hubapi.com"
LIST_LIMIT = 100  # GET /crm/v3/objects/deals: limit <= 100
SEARCH_LIMIT = 200  # POST /crm/v3/objects/deals/search: limit <= 200
SEARCH_CAP = 10_000  # a search query pages through at most 10,000 results (then HTTP 400)
BURST_LIMIT, BURST_WINDOW_S = 100, 10.0  # private apps, Free/Starter: 100 requests / 10 s per account
SEARCH_PER_S = 5  # search endpoints: 5 requests / s per account
DAILY_LIMIT = 250_000
DEAL_PROPERTIES = ("dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "createdate",
                   "hs_lastmodifieddate", "hs_object_id", "hubspot_owner_id", "hs_is_closed", "hs_is_closed_won",
                   "hs_deal_stage_probability", "invoice_number", "trade_customer_id", "trade_company")
