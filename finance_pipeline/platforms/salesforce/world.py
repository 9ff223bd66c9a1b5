"""The US and hotel accounts team's Salesforce Opportunities: the deal generator shared with
HubSpot (`platforms/hubspot/world.py:crm_deals`) with Salesforce's standard sales process stages,
18-character Opportunity ids (006…) and User ids (005…) as owners."""
from __future__ import annotations

from typing import Any

from finance_pipeline.platforms.hubspot.world import crm_deals
from finance_pipeline.sandbox.world import ChannelWorld

OPEN_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
               "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review")
WON, LOST = "Closed Won", "Closed Lost"
STAGE_PROBABILITY = {**{s: p for s, p in zip(OPEN_STAGES, (10, 10, 20, 50, 60, 70, 75, 90))}, WON: 100, LOST: 0}
OWNERS = ("005Dn000001RepAIAS", "005Dn000001RepBIAS", "005Dn000001RepCIAS")


def opportunity_id(num: int) -> str:
    return f"006Dn{num:010d}IAQ"


def account_id(customer_id: str) -> str:
    return f"001Dn{int(customer_id[1:]):010d}IAV"


def generate(world: ChannelWorld) -> dict[str, list[dict[str, Any]]]:
    return crm_deals(world, "salesforce", deal_id=opportunity_id, owners=OWNERS,
                     open_stages=OPEN_STAGES, won=WON, lost=LOST)
