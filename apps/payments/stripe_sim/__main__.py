"""``python -m apps.payments.stripe_sim``: the Stripe stand-in as its own process."""

from apps.payments.stripe_sim.server import main

main()
