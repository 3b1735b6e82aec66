"""The IQ Option simulator's configuration: actives and their prices, payout, timing.

Loaded from a JSON file (``--config``; ``config.example.json`` beside this module shows
one); every field has a default, so an empty file (or none) gives the actives of
:data:`apps.core.brokers.iqoption.ACTIVE_IDS` with IQ Option's usual 85 % payout.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from apps.brokers.simulation import RateLimits
from apps.core.brokers.iqoption import ASSET_OF_ACTIVE


class ActiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    start_price: float = 1.0
    volatility: float = 0.0001  # relative standard deviation of one tick
    decimals: int = 6
    tick_seconds: float = 1.0
    payout_percent: int = 85  # an option won pays price * (100 + this) / 100


_START_PRICES: dict[str, tuple[float, int]] = {
    "EURUSD": (1.08, 6),
    "EURGBP": (0.85, 6),
    "GBPJPY": (191.5, 3),
    "EURJPY": (163.2, 3),
    "GBPUSD": (1.27, 6),
    "USDJPY": (151.2, 3),
    "AUDUSD": (0.66, 6),
    "USDCAD": (1.36, 6),
    "XAUUSD": (2350.0, 2),
}


def _default_actives() -> dict[int, ActiveConfig]:
    return {
        active: ActiveConfig(
            start_price=_START_PRICES.get(asset, (1.0, 6))[0],
            decimals=_START_PRICES.get(asset, (1.0, 6))[1],
        )
        for active, asset in ASSET_OF_ACTIVE.items()
    }


class SimConfig(msgspec.Struct, kw_only=True):
    actives: dict[int, ActiveConfig] = msgspec.field(default_factory=_default_actives)
    # (limit, window seconds) pairs on each user's ``sendMessage`` calls; none by default,
    # since IQ Option documents none (PUT /admin/limits sets them).
    rate_limits: RateLimits = msgspec.field(default_factory=dict)
    # Options run this many times faster than their nominal length: an option still
    # carries its real whole-minute ``expired`` and settles (expired - created) / scale
    # real seconds after it was bought.
    time_scale: float = 1.0
    time_sync_seconds: float = 1.0
    heartbeat_seconds: float = 5.0
    heartbeat_misses: int = 3  # a socket is closed after this many unanswered in a row
    login_window_seconds: float = 60.0  # the window of the login limit fault switch
    idle_timeout_seconds: float = 120.0
    seed: int = 42
    ws_compression: bool = False


def load_config(path: Path | None) -> SimConfig:
    if path is None:
        return SimConfig()
    return msgspec.json.decode(path.read_bytes(), type=SimConfig, strict=False)
