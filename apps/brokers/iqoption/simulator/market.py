"""The IQ Option simulator's prices: a reproducible random walk per active."""

from __future__ import annotations

import random
import time

from apps.brokers.iqoption.simulator.config import ActiveConfig


class PriceFeed:
    """A deterministic random walk per active, advanced lazily as (scaled) time passes.

    Seeded from the config seed and the active id, so a run is reproducible and no
    background task burns CPU while nobody trades.
    """

    def __init__(self, actives: dict[int, ActiveConfig], seed: int, time_scale: float) -> None:
        self._actives = actives
        self._seed = seed
        self._time_scale = time_scale
        self._origin = time.monotonic()
        self._walks: dict[int, list[float]] = {}
        self._rngs: dict[int, random.Random] = {}

    def spot(self, active_id: int) -> float:
        cfg = self._actives[active_id]
        elapsed = time.monotonic() - self._origin
        index = int(elapsed * self._time_scale / cfg.tick_seconds)
        walk = self._walks.get(active_id)
        if walk is None:
            walk = self._walks[active_id] = [cfg.start_price]
            # Not for security: a reproducible market, seeded per active.
            self._rngs[active_id] = random.Random(self._seed * 1_000_003 + active_id)  # noqa: S311
        rng = self._rngs[active_id]
        while len(walk) <= index:
            walk.append(round(walk[-1] * (1 + rng.gauss(0.0, cfg.volatility)), cfg.decimals))
        return walk[index]

    def pip(self, active_id: int) -> float:
        return float(10 ** -self._actives[active_id].decimals)
