"""Stripe's webhook signature: t=,v1= HMAC-SHA256 over "t.payload", with a tolerance."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from apps.payments.provider import StripeProvider, parse_event
from apps.payments.signature import SignatureError, sign_header, verify

SECRET = "whsec_test_secret"
PAYLOAD = b'{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1"}}}'
NOW = 1_800_000_000


def test_a_genuine_signature_verifies() -> None:
    verify(PAYLOAD, sign_header(PAYLOAD, SECRET, NOW), SECRET, NOW)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_payload() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert sign_header(PAYLOAD, SECRET, NOW) == f"t={NOW},v1={expected}"


def test_one_matching_v1_among_several_is_enough() -> None:
    good = sign_header(PAYLOAD, SECRET, NOW).split(",")[1]
    verify(PAYLOAD, f"t={NOW},v1={'0' * 64},{good},v0=abc", SECRET, NOW)


@pytest.mark.parametrize("offset", [-300, 300])
def test_within_the_tolerance(offset: int) -> None:
    verify(PAYLOAD, sign_header(PAYLOAD, SECRET, NOW), SECRET, NOW + offset)


@pytest.mark.parametrize("offset", [-301, 301])
def test_outside_the_tolerance(offset: int) -> None:
    with pytest.raises(SignatureError, match="tolerance"):
        verify(PAYLOAD, sign_header(PAYLOAD, SECRET, NOW), SECRET, NOW + offset)


def test_the_wrong_secret_fails() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(PAYLOAD, sign_header(PAYLOAD, "whsec_other", NOW), SECRET, NOW)


def test_a_changed_payload_fails() -> None:
    header = sign_header(PAYLOAD, SECRET, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(PAYLOAD.replace(b"in_1", b"in_2"), header, SECRET, NOW)


@pytest.mark.parametrize("header", [None, "", "garbage", f"t={NOW}", "v1=abc", "t=x,v1=abc"])
def test_malformed_headers_fail(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(PAYLOAD, header, SECRET, NOW)


def test_no_secret_configured_refuses_everything() -> None:
    with pytest.raises(SignatureError):
        verify(PAYLOAD, sign_header(PAYLOAD, "", NOW), "", NOW)


def test_the_provider_verifies_before_parsing_and_hides_its_keys() -> None:
    provider = StripeProvider("http://127.0.0.1:1", "sk_test_hidden", SECRET)
    assert "sk_test_hidden" not in repr(provider) and SECRET not in repr(provider)
    event = provider.parse_webhook(PAYLOAD, sign_header(PAYLOAD, SECRET, NOW), NOW)
    assert (event.id, event.type) == ("evt_1", "invoice.paid")
    with pytest.raises(SignatureError):
        provider.parse_webhook(PAYLOAD, sign_header(PAYLOAD, "whsec_x", NOW), NOW)


def test_a_body_that_is_not_an_event_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Stripe event"):
        parse_event(b"[1, 2]")
