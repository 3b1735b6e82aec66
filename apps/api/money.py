"""Money in request bodies: one written form, exact values, never float.

An amount is a JSON number or a JSON string holding a canonical decimal, and either way
its text must read as digits with an optional fraction: ``10``, ``10.5``, ``0.01``,
``"10"``, ``"10.5"``. Refused, with a 400 naming the field in words and saying what to
write (a negative amount "must be a positive amount", too many decimals "has too many
decimals"): an exponent (``1e3``,
``"1e3"``), a sign (``-1``, ``"+1"``), leading zeros (``"01"``), surrounding spaces, ``_``
separators, ``"NaN"``/``"Infinity"``, booleans, more than :data:`MAX_PLACES` decimals (a
field may allow fewer, e.g. a signal's stake two) and more than :data:`MAX_DIGITS` digits
before the point. JSON numbers are read from their text, never through float, so ``10.5``
and ``"10.5"`` are the same amount.

Body fields are typed :data:`Money`: the body decoders (:mod:`apps.api.bodies`) send them
through :func:`parse_money`; ranges are checked by :func:`check_amount` after decoding.
"""

from __future__ import annotations

import abc
import re
from decimal import Decimal
from typing import TYPE_CHECKING

MAX_PLACES = 8
MAX_DIGITS = 15
CANONICAL = rf"^(0|[1-9][0-9]{{0,{MAX_DIGITS - 1}}})(\.[0-9]{{1,{MAX_PLACES}}})?$"
_canonical = re.compile(CANONICAL)
RULE = (
    'a JSON number or a decimal string such as "10" or "10.5": digits with an optional '
    f"fraction of at most {MAX_PLACES} decimals; no exponent, sign, spaces, separators "
    "or leading zeros"
)

if TYPE_CHECKING:
    Money = Decimal
else:

    class Money(abc.ABC):  # noqa: B024 - a marker the decoders recognise, not a base class
        """Statically a Decimal; at run time the type that routes a field to parse_money.

        Decimal is registered as a virtual subclass because msgspec accepts a decode hook's
        result only when it is an instance of the field's type, and the value must stay a
        plain Decimal that every encoder already knows."""

    Money.register(Decimal)


_NEGATIVE = re.compile(r"^-[0-9]+(\.[0-9]+)?$")
_DIGITS = re.compile(r"^[0-9]+(\.[0-9]+)?$")
EXAMPLE = "e.g. 10.00"


def parse_money(value: object) -> Decimal:
    """The exact amount ``value`` writes, or ValueError saying in words what to write
    instead (a predicate the field's name goes before: "must be a positive amount, …").

    ``value`` is what the JSON held: an int, or a str — a JSON string, or the text of a
    JSON number with a fraction or exponent (the body decoders' ``float_hook``)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be an amount, {EXAMPLE}")
    text = str(value)
    if _canonical.fullmatch(text) is not None:
        return Decimal(text)
    if not any(c.isdigit() for c in text):
        raise ValueError(f"must be a number, {EXAMPLE}")
    if _NEGATIVE.fullmatch(text):
        raise ValueError(f"must be a positive amount, {EXAMPLE}")
    if _DIGITS.fullmatch(text):
        whole, _, fraction = text.partition(".")
        if len(fraction) > MAX_PLACES:
            raise ValueError(f"has too many decimals (at most {MAX_PLACES}), {EXAMPLE}")
        if len(whole) > MAX_DIGITS:
            raise ValueError(f"is too large ({MAX_DIGITS} digits at most before the point)")
    raise ValueError(
        f"must be an amount written as plain digits, {EXAMPLE} (no exponent, sign, "
        "spaces, separators or leading zeros)"
    )


def check_amount(
    field: str,
    value: Decimal,
    *,
    minimum: Decimal = Decimal(0),
    inclusive_minimum: bool = False,
    maximum: Decimal,
) -> None:
    """Raise ValueError starting with ``field`` (the API puts it in words) unless
    ``value`` is finite, in range and has at most ``MAX_PLACES`` decimals
    (the last two hold for whatever parse_money returns)."""
    if not value.is_finite():
        raise ValueError(f"{field} must be an amount, {EXAMPLE}")
    too_small = value < minimum if inclusive_minimum else value <= minimum
    if too_small and minimum == 0:
        relation = "must not be negative" if inclusive_minimum else "must be a positive amount"
        raise ValueError(f"{field} {relation}, {EXAMPLE}")
    if too_small:
        relation = "at least" if inclusive_minimum else "more than"
        raise ValueError(f"{field} must be {relation} {minimum}")
    if value > maximum:
        raise ValueError(f"{field} must be at most {maximum}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PLACES:
        raise ValueError(f"{field} has too many decimals (at most {MAX_PLACES}), {EXAMPLE}")
