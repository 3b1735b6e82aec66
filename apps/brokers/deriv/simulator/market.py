"""The Deriv simulator's prices: a reproducible random walk per symbol."""

from __future__ import annotations

import random
import time
import zlib

from apps.brokers.deriv.simulator.config import SymbolConfig


class PriceFeed:
    """A deterministic random walk per symbol, advanced lazily as (scaled) time passes.

    Seeded from the config seed and the symbol name, so a run is reproducible and no
    background task burns CPU while nobody trades.
    """

    def __init__(self, symbols: dict[str, SymbolConfig], seed: int, time_scale: float) -> None:
        self._symbols = symbols
        self._seed = seed
        self._time_scale = time_scale
        self._origin = time.monotonic()
        self._walks: dict[str, list[float]] = {}
        self._rngs: dict[str, random.Random] = {}

    def tick_index(self, symbol: str, at: float | None = None) -> int:
        elapsed = (time.monotonic() if at is None else at) - self._origin
        return int(elapsed * self._time_scale / self._symbols[symbol].tick_seconds)

    def price_at(self, symbol: str, index: int) -> float:
        cfg = self._symbols[symbol]
        walk = self._walks.get(symbol)
        if walk is None:
            walk = self._walks[symbol] = [cfg.start_price]
            # Not for security: a reproducible market, seeded per symbol.
            self._rngs[symbol] = random.Random(self._seed ^ zlib.crc32(symbol.encode()))  # noqa: S311
        rng = self._rngs[symbol]
        while len(walk) <= index:
            walk.append(round(walk[-1] * (1 + rng.gauss(0.0, cfg.volatility)), cfg.decimals))
        return walk[index]

    def spot(self, symbol: str) -> float:
        return self.price_at(symbol, self.tick_index(symbol))
