"""A local stand-in for Stripe: the Checkout, Subscription and Invoice endpoints the
provider calls, a hosted checkout page, and signed webhook deliveries (see server.py)."""
