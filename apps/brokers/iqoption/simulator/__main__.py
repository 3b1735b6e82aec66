"""``python -m apps.brokers.iqoption.simulator``: the simulator as its own process."""

from apps.brokers.iqoption.simulator.server import main

main()
