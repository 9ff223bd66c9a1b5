"""Stripe-Signature verification, cross-checked against the official SDK's own signer and verifier."""
from __future__ import annotations

import time

import orjson
import pytest
import stripe

from finance_pipeline.platforms.stripe import webhooks
from finance_pipeline.platforms.stripe.emulator import StripeEmulator

SECRET = "whsec_test_0123456789abcdef"
BODY = orjson.dumps({"id": "evt_1", "object": "event", "type": "charge.refunded",
                     "data": {"object": {"id": "ch_1", "object": "charge", "amount": 1000}}})


def test_valid_signature_from_the_official_sdk_passes():
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET)
    assert webhooks.verify({"Stripe-Signature": header}, BODY, SECRET)
    # header names are case-insensitive; a list of pairs (ASGI style) works too
    assert webhooks.verify([(b"stripe-signature", header.encode())], BODY, SECRET)


def test_our_signature_passes_the_official_sdk():
    header = webhooks.sign(BODY, SECRET)
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300)
    event = stripe.Webhook.construct_event(BODY, header, SECRET)
    assert event.id == "evt_1"


def test_forged_or_altered_payloads_fail():
    header = webhooks.sign(BODY, SECRET)
    assert not webhooks.verify({"Stripe-Signature": header}, BODY + b" ", SECRET)
    assert not webhooks.verify({"Stripe-Signature": header}, BODY, "whsec_other")
    t = int(time.time())
    forged = f"t={t},v1={'0' * 64}"
    assert not webhooks.verify({"Stripe-Signature": forged}, BODY, SECRET)
    # a signature valid for another timestamp does not carry over
    sig = webhooks.compute_signature(t - 1, BODY, SECRET)
    assert not webhooks.verify({"Stripe-Signature": f"t={t},v1={sig}"}, BODY, SECRET)
    # only v1 counts: a matching v0 entry is ignored
    assert not webhooks.verify({"Stripe-Signature": f"t={t},v0={webhooks.compute_signature(t, BODY, SECRET)}"},
                               BODY, SECRET)
    assert not webhooks.verify({}, BODY, SECRET)
    assert not webhooks.verify({"Stripe-Signature": "garbage"}, BODY, SECRET)
    assert not webhooks.verify({"Stripe-Signature": "t=abc,v1=00"}, BODY, SECRET)


def test_stale_timestamps_fail_fresh_ones_pass():
    now = 1_767_225_600
    old = webhooks.sign(BODY, SECRET, timestamp=now - 301)
    assert not webhooks.verify({"Stripe-Signature": old}, BODY, SECRET, now=now)
    edge = webhooks.sign(BODY, SECRET, timestamp=now - 300)
    assert webhooks.verify({"Stripe-Signature": edge}, BODY, SECRET, now=now)
    assert webhooks.verify({"Stripe-Signature": old}, BODY, SECRET, now=now, tolerance_s=None)
    # the SDK agrees on the stale one
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY, old, SECRET, tolerance=300)


def test_any_of_several_v1_signatures_passes_while_a_secret_rolls():
    t = int(time.time())
    good = webhooks.compute_signature(t, BODY, SECRET)
    other = webhooks.compute_signature(t, BODY, "whsec_old_secret")
    header = f"t={t},v1={other},v1={good},v0=deadbeef"
    assert webhooks.verify({"Stripe-Signature": header}, BODY, SECRET)
    assert webhooks.verify({"Stripe-Signature": header}, BODY, "whsec_old_secret")
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300)
    assert not webhooks.verify({"Stripe-Signature": f"t={t},v1={other}"}, BODY, SECRET)


def test_delivery_id_is_the_event_id():
    assert webhooks.delivery_id(BODY) == "evt_1"


def test_emulator_deliveries_verify_with_its_webhook_secret(sandbox):
    emulator = StripeEmulator(sandbox)
    headers, body = emulator.webhook_delivery({"id": "evt_x", "object": "event", "type": "payout.paid"})
    secret = emulator.credentials()["webhook_secret"]
    assert secret.startswith("whsec_")
    assert webhooks.verify(headers, body, secret)
    assert stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret).type == "payout.paid"
