"""The Deriv simulator's configuration: accounts, symbols and their offerings, limits.

Loaded from a JSON file (``--config``; ``config.example.json`` beside this module shows
one); every field has a default, so an empty file (or none) gives deriv.md's symbols and
limits.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, cast

import msgspec

from apps.brokers.simulation import RateLimits
from apps.core.assets import AssetClass
from apps.core.brokers.deriv import MAX_STAKE, MIN_STAKE, SECONDS_RANGE, TICK_RANGE

# Synthetic indices always have tick contracts, so their range is never None.
_SYNTHETIC_TICKS = cast(tuple[int, int], TICK_RANGE[AssetClass.SYNTHETIC])


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True):
    loginid: str
    token: str
    currency: str = "USD"
    balance: Decimal = Decimal("10000")
    is_virtual: bool = True


class SymbolConfig(msgspec.Struct, frozen=True, kw_only=True):
    market: Literal["synthetic_index", "forex", "commodities"] = "synthetic_index"
    display_name: str = ""
    min_stake: Decimal = MIN_STAKE
    max_stake: Decimal = MAX_STAKE
    start_price: float = 1000.0
    volatility: float = 0.001  # relative standard deviation of one tick
    decimals: int = 2
    tick_seconds: float = 2.0
    # Offerings default to a synthetic index's (apps.core.brokers.deriv's ranges).
    min_ticks: int | None = _SYNTHETIC_TICKS[0]  # None: no tick contracts (forex)
    max_ticks: int = _SYNTHETIC_TICKS[1]
    min_seconds: int = SECONDS_RANGE[AssetClass.SYNTHETIC][0]
    max_seconds: int = SECONDS_RANGE[AssetClass.SYNTHETIC][1]


def _default_symbols() -> dict[str, SymbolConfig]:
    synthetic = {
        name: SymbolConfig(display_name=f"Volatility {name[2:]} Index", start_price=1000.0)
        for name in ("R_10", "R_25", "R_50", "R_75", "R_100")
    }
    one_second = {
        f"1HZ{v}V": SymbolConfig(display_name=f"Volatility {v} (1s) Index", tick_seconds=1.0)
        for v in (10, 25, 50, 75, 100)
    }
    forex = {
        f"frx{pair}": SymbolConfig(
            market="forex",
            display_name=f"{pair[:3]}/{pair[3:]}",
            start_price=price,
            volatility=0.0001,
            decimals=5,
            tick_seconds=1.0,
            min_ticks=None,
            min_seconds=SECONDS_RANGE[AssetClass.FOREX][0],
        )
        for pair, price in (
            ("EURUSD", 1.08),
            ("GBPUSD", 1.27),
            ("USDJPY", 151.2),
            ("AUDUSD", 0.66),
            ("USDCAD", 1.36),
            ("EURGBP", 0.85),
        )
    }
    gold = {
        "frxXAUUSD": SymbolConfig(
            market="commodities",
            display_name="Gold/USD",
            min_stake=Decimal("0.50"),  # deriv.md: 0.50 on frxXAUUSD
            start_price=2350.0,
            decimals=2,
            tick_seconds=1.0,
            min_ticks=None,
            min_seconds=SECONDS_RANGE[AssetClass.COMMODITY][0],
        )
    }
    return (
        synthetic | one_second | {"BOOM500": SymbolConfig(display_name="Boom 500")} | forex | gold
    )


# (limit, window seconds) pairs per call category; deriv.md's fixture values by default.
def _default_rate_limits() -> RateLimits:
    return {
        "general": [(180, 60.0), (14_400, 3_600.0)],
        "outcome": [(25, 60.0), (1_500, 3_600.0)],
        "pricing": [(80, 60.0), (3_600, 3_600.0)],
    }


class SimConfig(msgspec.Struct, kw_only=True):
    accounts: list[AccountConfig] = msgspec.field(default_factory=list)
    symbols: dict[str, SymbolConfig] = msgspec.field(default_factory=_default_symbols)
    rate_limits: RateLimits = msgspec.field(default_factory=_default_rate_limits)
    max_proposal_subscriptions: int = 5
    payout_rate: Decimal = Decimal("0.95")  # payout = stake * (1 + rate)
    time_scale: float = 1.0
    idle_timeout_seconds: float = 120.0
    seed: int = 42
    forex_closed_at_weekends: bool = True
    # permessage-deflate on the WebSocket: off by default, since on the loopback the
    # stack runs on compressing every frame (and the peer inflating it) is CPU spent
    # for nothing; clients negotiate it, so either way they work unchanged.
    ws_compression: bool = False


def load_config(path: Path | None) -> SimConfig:
    if path is None:
        return SimConfig()
    return msgspec.json.decode(path.read_bytes(), type=SimConfig, strict=False)
