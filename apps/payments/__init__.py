"""Paid subscriptions: the payment provider's protocol, Stripe over its real HTTP API, the
subscription's payment lifecycle as a pure state machine, and a local Stripe stand-in."""
