"""``python -m apps.brokers.deriv.simulator``: the simulator as its own process."""

from apps.brokers.deriv.simulator.server import main

main()
