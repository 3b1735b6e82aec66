"""Decimal amounts in request bodies: finite, in range, sensibly precise — never float.

msgspec's numeric constraints do not apply to Decimal, so bodies call :func:`check_amount`
from ``__post_init__``; the ValueError becomes a 400 naming the field.
"""

from __future__ import annotations

from decimal import Decimal

MAX_PLACES = 8


def check_amount(
    field: str,
    value: Decimal,
    *,
    minimum: Decimal = Decimal(0),
    inclusive_minimum: bool = False,
    maximum: Decimal,
) -> None:
    if not value.is_finite():
        raise ValueError(f"{field} must be a finite number")
    too_small = value < minimum if inclusive_minimum else value <= minimum
    if too_small:
        relation = "at least" if inclusive_minimum else "greater than"
        raise ValueError(f"{field} must be {relation} {minimum}")
    if value > maximum:
        raise ValueError(f"{field} must be at most {maximum}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PLACES:
        raise ValueError(f"{field} has more than {MAX_PLACES} decimal places")
