"""The copier's canonical asset names and expiry: the vocabulary every broker adapter maps from.

A signal names an asset once (``EURUSD``, ``R_100``) and states one expiry (seconds or
ticks); each broker adapter maps these to its own legal form, or rejects the order with a
clear reason when no legal form exists. Unknown names are rejected, never guessed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgspec


class AssetClass(StrEnum):
    FOREX = "forex"
    COMMODITY = "commodity"
    SYNTHETIC = "synthetic"


# Canonical name → asset class. Forex and metals use the ISO pair; synthetic indices keep
# the names their only issuer (Deriv) gives them, since no other naming exists.
CANONICAL_ASSETS: dict[str, AssetClass] = {
    "EURUSD": AssetClass.FOREX,
    "GBPUSD": AssetClass.FOREX,
    "USDJPY": AssetClass.FOREX,
    "AUDUSD": AssetClass.FOREX,
    "USDCAD": AssetClass.FOREX,
    "EURGBP": AssetClass.FOREX,
    "XAUUSD": AssetClass.COMMODITY,
    "R_10": AssetClass.SYNTHETIC,
    "R_25": AssetClass.SYNTHETIC,
    "R_50": AssetClass.SYNTHETIC,
    "R_75": AssetClass.SYNTHETIC,
    "R_100": AssetClass.SYNTHETIC,
    "1HZ10V": AssetClass.SYNTHETIC,
    "1HZ25V": AssetClass.SYNTHETIC,
    "1HZ50V": AssetClass.SYNTHETIC,
    "1HZ75V": AssetClass.SYNTHETIC,
    "1HZ100V": AssetClass.SYNTHETIC,
    "BOOM500": AssetClass.SYNTHETIC,
}


class Expiry(msgspec.Struct, frozen=True, kw_only=True):
    """How long a contract runs: a number of seconds or of ticks (price updates)."""

    amount: int
    unit: Literal["seconds", "ticks"] = "seconds"


def is_canonical_asset(name: str) -> bool:
    return name in CANONICAL_ASSETS
