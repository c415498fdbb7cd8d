"""Cheap exact checks that let :class:`MathVerifyAccuracy` accept obvious matches without sympy.

Only *acceptance* is decided here: when these checks cannot prove equality the pair goes to
math-verify as usual, so the fast path never turns a right answer into a wrong one. All regexes
are linear; inputs longer than a few hundred characters are not examined.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["normalise_latex", "quick_match", "simple_rational"]

_MAX_LEN = 400
_NOISE = re.compile(r"\\left|\\right|\\[!,;: ]|\\displaystyle|\s+")
_TEXT_WRAP = re.compile(r"^\$+|\$+$")
_BOXED_WRAP = re.compile(r"\\boxed\{(.*)\}", re.DOTALL)
_FRAC_ALIASES = re.compile(r"\\[dt]frac")
_RATIONAL = re.compile(
    r"(?P<sign>-?)(?:"
    r"\\frac\{(?P<fn>\d+)\}\{(?P<fd>\d+)\}"
    r"|\\frac(?P<sn>\d)(?P<sd>\d)"
    r"|(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<dec>\d+))?(?:/(?P<den>\d+))?"
    r")",
    re.ASCII,
)


def normalise_latex(text: str) -> str:
    """Drop presentation-only LaTeX (spacing, ``\\left``/``\\right``, ``$``, an enclosing
    ``\\boxed{}``) and whitespace."""
    text = _TEXT_WRAP.sub("", text.strip())
    boxed = _BOXED_WRAP.fullmatch(text)
    if boxed is not None and "}" not in boxed.group(1) and "{" not in boxed.group(1):
        text = boxed.group(1)
    text = _FRAC_ALIASES.sub(r"\\frac", text)
    return _NOISE.sub("", text)


def simple_rational(text: str) -> Fraction | None:
    """Value of an integer, decimal, ``a/b`` or ``\\frac{a}{b}`` written alone, else None."""
    match = _RATIONAL.fullmatch(text)
    if match is None or len(text) > 60:
        return None
    g = match.groupdict()
    try:
        if g["fn"] is not None:
            value = Fraction(int(g["fn"]), int(g["fd"]))
        elif g["sn"] is not None:
            value = Fraction(int(g["sn"]), int(g["sd"]))
        else:
            whole = g["n"].replace(",", "")
            value = Fraction(f"{whole}.{g['dec']}" if g["dec"] else whole)
            if g["den"] is not None:
                value /= int(g["den"])
    except ZeroDivisionError:
        return None
    return -value if g["sign"] else value


def quick_match(gold: str, prediction: str) -> bool:
    """True when ``prediction`` is provably equal to ``gold`` by string or exact rational value."""
    if len(gold) > _MAX_LEN or len(prediction) > _MAX_LEN:
        return False
    left, right = normalise_latex(gold), normalise_latex(prediction)
    if not left or not right:
        return False
    if left == right:
        return True
    a, b = simple_rational(left), simple_rational(right)
    return a is not None and b is not None and a == b
