"""The program in a response: a fenced code block, or the whole text when there is none."""

from __future__ import annotations

import re

from ..errors import ExtractionError
from .extractors import Extractor, strip_reasoning

__all__ = ["CodeExtractor"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_LANGS = ("", "python", "py", "python3")


class CodeExtractor(Extractor):
    """The code a response commits to.

    Reasoning traces are removed first. With fenced blocks, the last Python (or unlabelled) block
    that defines ``entry_point`` wins, else the last such block; without fences the whole response
    is the code (a bare completion of the prompt). An empty response has no code.
    """

    def __init__(self, entry_point: str | None = None) -> None:
        self.entry_point = entry_point

    def extract(self, text: str) -> str:
        body = strip_reasoning(text)
        blocks = [
            code
            for lang, code in _FENCE.findall(body)
            if lang.lower() in _CODE_LANGS and code.strip()
        ]
        if blocks:
            if self.entry_point:
                defining = [b for b in blocks if re.search(rf"\bdef\s+{self.entry_point}\b", b)]
                if defining:
                    return defining[-1]
            return blocks[-1]
        if not body.strip():
            raise ExtractionError("the response holds no code")
        return body
