"""The official stripe-python SDK, pointed at the emulator, lists, pages, expands, errors and writes
exactly as it would against api.stripe.com."""
from __future__ import annotations

import pytest
import stripe

from finance_pipeline.platforms.stripe.emulator import StripeEmulator


@pytest.fixture
def sdk(sandbox, start_emulator):
    running = start_emulator(StripeEmulator, sandbox, time_scale=30.0)
    client = stripe.StripeClient(running.emulator.api_key, base_addresses={"api": running.url},
                                 max_network_retries=2)
    return client, running, sandbox


def test_sdk_auto_paging_matches_the_world(sdk):
    client, _, sandbox = sdk
    clock = sandbox.clock
    with sandbox.connect() as con:
        n_charges = con.execute("select count(*) from stripe_charges where created <= ?", [clock]).fetchone()[0]
        n_bts, net = con.execute("select count(*), sum(net) from stripe_balance_transactions where created <= ?",
                                 [clock]).fetchone()

    charges = list(client.v1.charges.list(params={"limit": 37}).auto_paging_iter())
    assert len(charges) == n_charges and len({c.id for c in charges}) == n_charges
    assert all(isinstance(c, stripe.Charge) and isinstance(c.amount, int) for c in charges)
    succeeded = [c for c in charges if c.status == "succeeded"]
    assert succeeded and all(c.metadata["invoice_number"].startswith("INV-") for c in succeeded)

    bts = list(client.v1.balance_transactions.list(params={"limit": 100}).auto_paging_iter())
    assert len(bts) == n_bts and sum(b.net for b in bts) == net
    assert all(isinstance(b, stripe.BalanceTransaction) for b in bts)
    assert {b.type for b in bts} >= {"charge", "payout"}

    window = list(client.v1.charges.list(params={"created": {"gte": charges[50].created}}).auto_paging_iter())
    assert {c.id for c in window} == {c.id for c in charges if c.created >= charges[50].created}


def test_sdk_expand_payout_filter_and_errors(sdk):
    client, running, _ = sdk
    charge = next(c for c in client.v1.charges.list(params={"limit": 50}).auto_paging_iter()
                  if c.status == "succeeded")
    expanded = client.v1.charges.retrieve(charge.id, params={"expand": ["balance_transaction"]})
    assert isinstance(expanded.balance_transaction, stripe.BalanceTransaction)
    assert expanded.balance_transaction.source == charge.id
    payout = client.v1.payouts.list(params={"limit": 1}).data[0]
    assert isinstance(payout, stripe.Payout) and payout.automatic
    carried = list(client.v1.balance_transactions.list(params={"payout": payout.id}).auto_paging_iter())
    assert sum(b.net for b in carried) == 0 and payout.balance_transaction in {b.id for b in carried}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.charges.retrieve("ch_missing")
    assert err.value.code == "resource_missing" and err.value.http_status == 404
    bad = stripe.StripeClient("sk_test_not_the_key", base_addresses={"api": running.url})
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.charges.list()
    events = client.v1.events.list(params={"type": "payout.*", "limit": 5})
    assert events.data and all(isinstance(e, stripe.Event) for e in events.data)
    assert events.data[0].data.object["object"] == "payout"


def test_sdk_refund_create_is_idempotent(sdk):
    client, running, _ = sdk
    charge = next(c for c in client.v1.charges.list(params={"limit": 100}).auto_paging_iter()
                  if c.status == "succeeded" and not c.refunded)
    refund = client.v1.refunds.create(params={"charge": charge.id, "amount": 150, "reason": "duplicate"},
                                      options={"idempotency_key": "sdk-key-1"})
    assert isinstance(refund, stripe.Refund) and refund.amount == 150 and refund.status == "succeeded"
    again = client.v1.refunds.create(params={"charge": charge.id, "amount": 150, "reason": "duplicate"},
                                     options={"idempotency_key": "sdk-key-1"})
    assert again.id == refund.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create(params={"charge": charge.id, "amount": 151}, options={"idempotency_key": "sdk-key-1"})
    assert client.v1.refunds.retrieve(refund.id).id == refund.id
    assert len(running.emulator.posted_refunds) == 1
