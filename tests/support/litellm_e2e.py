"""A 1,600-generation litellm experiment (200 rows x 2 models x 2 templates x 2 sampling configs).

Imported by the end-to-end test, and run as a script by it to be killed mid-run:
``python litellm_e2e.py API_BASE CACHE_DIR``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROWS = 200
MODELS = ("openai/model-a", "openai/model-b")
MAX_PARALLEL = 64
_QUESTION = re.compile(r"Question (\d+):")


def dataset() -> list[dict[str, Any]]:
    return [
        {"id": f"q{i:03d}", "question": f"Question {i}: what is {i} + {i}?", "gold": str(2 * i)}
        for i in range(ROWS)
    ]


def responder(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    """Answers ``#### <gold>``, except that model-b is wrong on every fourth question."""
    from pytest_themis.testing import default_responder

    answer = default_responder(messages, request)
    match = _QUESTION.search(messages[-1]["content"])
    if request.get("model") == "model-b" and match and int(match.group(1)) % 4 == 0:
        return "#### -1"
    return answer


def build_plan() -> Any:
    from pytest_themis.core.entities import ModelSpec, SamplingConfig
    from pytest_themis.generation.plan import GenerationPlan
    from pytest_themis.generation.templates import PromptTemplate

    return GenerationPlan(
        templates=[
            PromptTemplate(name="direct", template="{question}\nEXPECTED: {gold}"),
            PromptTemplate(name="cot", template="Think step by step. {question}\nEXPECTED: {gold}"),
        ],
        models=[ModelSpec(identifier=m, provider="litellm") for m in MODELS],
        sampling_parameters=[
            SamplingConfig(temperature=0.0, max_tokens=64),
            SamplingConfig(temperature=0.7, max_tokens=64),
        ],
        dataset_id_field="id",
        reference_field="gold",
    )


def build_orchestrator(api_base: str, cache_dir: str | Path) -> Any:
    """Level-4 assembly: plan, router over one litellm provider, runner, pipeline, cache."""
    from pytest_themis.evaluation.extractors import RegexExtractor
    from pytest_themis.evaluation.metrics.exact_match import ExactMatch
    from pytest_themis.evaluation.pipeline import EvaluationPipeline
    from pytest_themis.experiment.cache_manager import CacheManager
    from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
    from pytest_themis.generation.router import ProviderRouter
    from pytest_themis.generation.runner import GenerationRunner
    from pytest_themis.providers import create_provider
    from pytest_themis.storage import ExperimentStorage

    provider = create_provider("litellm", api_base=api_base)
    router = ProviderRouter({("litellm", model): provider for model in MODELS})
    return ExperimentOrchestrator(
        generation_plan=build_plan(),
        generation_runner=GenerationRunner(
            executor=router, max_parallel=MAX_PARALLEL, max_retries=3, timeout=30
        ),
        evaluation_pipeline=EvaluationPipeline(
            extractor=RegexExtractor(r"####\s*(\S+)"), metrics=[ExactMatch()]
        ),
        cache_manager=CacheManager(storage=ExperimentStorage(Path(cache_dir))),
    )


def main(argv: list[str]) -> int:
    api_base, cache_dir = argv
    report = build_orchestrator(api_base, cache_dir).run(
        dataset=dataset(), run_id="litellm-e2e", evaluation_batch_size=100
    )
    print(len(report.records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
