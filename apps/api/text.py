"""Text people name things with (channel names and descriptions, display names, account
labels, e-mail addresses): what other users are shown must read as what it is.

Refused, with a 400 naming the field and the character: control characters (Unicode
category Cc; a multi-line field still takes tab, CR and LF), surrogates, line and
paragraph separators, and invisible format characters (category Cf) — among them the
bidirectional embeddings, overrides and isolates U+202A to U+202E and U+2066 to U+2069, the
direction marks, zero-width spaces and the byte-order mark, which reorder or hide text
(CVE-2021-42574, "Trojan Source"). Zero-width (non-)joiners stay allowed: emoji sequences
and Persian and Indic spelling need them. A single-line field must not be blank either.
"""

from __future__ import annotations

import unicodedata

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})
_LINE_BREAKS = frozenset({"\t", "\r", "\n"})


def check_plain_text(field: str, value: str, *, multiline: bool = False) -> None:
    """Raise ValueError (a 400 naming ``field``) when ``value`` may not be shown as is."""
    for position, char in enumerate(value):
        if unicodedata.category(char) not in _REFUSED_CATEGORIES or char in _JOINERS:
            continue
        if multiline and char in _LINE_BREAKS:
            continue
        raise ValueError(
            f"{field} must not contain control or invisible formatting characters "
            f"(U+{ord(char):04X} at position {position})"
        )
    if not multiline and not value.strip():
        raise ValueError(f"{field} must not be blank")
