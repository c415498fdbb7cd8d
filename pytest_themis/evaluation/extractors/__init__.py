"""Extractors: pull the answer a metric should score out of a model response.

An extractor raises :class:`~pytest_themis.errors.ExtractionError` when the response holds no
answer; the pipeline then records an extraction failure (scored 0, counted separately).
All built-in extractors run in time linear in the response length, so hostile responses
(hundreds of kilobytes, thousands of unbalanced braces) cannot stall an evaluation.
"""

from ...errors import ExtractionError  # re-exported: importable from here before the split
from .answers import (
    BoxedExtractor,
    GSM8KExtractor,
    MathVerifyExtractor,
    MultipleChoiceExtractor,
    find_last_boxed,
    find_last_math,
    gsm8k_answer,
)
from .base import Extractor, strip_reasoning
from .text import IdentityExtractor, JsonFieldExtractor, RegexExtractor

__all__ = [
    "BoxedExtractor",
    "ExtractionError",
    "Extractor",
    "GSM8KExtractor",
    "IdentityExtractor",
    "JsonFieldExtractor",
    "MathVerifyExtractor",
    "MultipleChoiceExtractor",
    "RegexExtractor",
    "find_last_boxed",
    "find_last_math",
    "gsm8k_answer",
    "strip_reasoning",
]
