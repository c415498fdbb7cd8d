"""Finding numbers in free text and writing them in one canonical decimal form.

Everything here is linear in the input length: the regexes have no nested quantifiers that can
backtrack, and canonicalisation is plain string work (no ``int()`` of huge digit strings).
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "NUMBER_RE",
    "canonical_number",
    "find_numbers",
    "first_number",
    "last_number",
    "to_fraction",
]

# A number token: optional sign, optional currency sign, digits with optional thousands separators
# and an optional decimal part. It may not start inside a word or right after a digit/dot, so
# "x2", "1.2.3" and "v10" do not yield stray numbers; "2-3" yields 2 and 3 (not -3).
NUMBER_RE = re.compile(
    r"(?<![\w.])"
    r"(?P<sign>[-\u2212]\s?)?"
    r"(?:\\?\$\s?)?"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)",
    re.ASCII,
)


def canonical_number(sign: str, digits: str) -> str:
    """``("-", "1,234.500")`` → ``"-1234.5"``; trailing ``.0…`` zeros and ``-0`` are removed."""
    digits = digits.replace(",", "")
    whole, _, frac = digits.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    body = f"{whole}.{frac}" if frac else whole
    if body == "0":
        return "0"
    return f"-{body}" if sign else body


def find_numbers(text: str) -> list[str]:
    """Every number in ``text`` in canonical form, in order of appearance."""
    return [
        canonical_number(m.group("sign") or "", m.group("num")) for m in NUMBER_RE.finditer(text)
    ]


def first_number(text: str) -> str | None:
    """The first number in ``text`` (canonical), or None."""
    match = NUMBER_RE.search(text)
    return canonical_number(match.group("sign") or "", match.group("num")) if match else None


def last_number(text: str) -> str | None:
    """The last number in ``text`` (canonical), or None."""
    match = None
    for match in NUMBER_RE.finditer(text):  # noqa: B007 - keep the last one
        pass
    return canonical_number(match.group("sign") or "", match.group("num")) if match else None


def to_fraction(canonical: str) -> Fraction | None:
    """Exact value of a canonical number string; None when it is too long to convert."""
    try:
        return Fraction(canonical)
    except (ValueError, ZeroDivisionError):
        return None
