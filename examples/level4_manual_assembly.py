"""Level 4 — assemble plan, runner, pipeline and orchestrator yourself.

A 2 models × 2 prompts × 2 sampling configs sweep in one run object with one manifest. Offline
the models are fake ones; replace ``provider="fake"`` specs with litellm ones
(``ModelSpec(identifier="gpt-4o", provider="litellm")``) to run the same sweep for real.
"""

from __future__ import annotations

import tempfile

from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.evaluation.extractors import IdentityExtractor
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.experiment.cache_manager import CacheManager
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.router import ProviderRouter
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.providers import create_provider
from pytest_themis.storage import ExperimentStorage

dataset = [
    {"question_id": 1, "q": "2+2", "expected": "4"},
    {"question_id": 2, "q": "7*6", "expected": "42"},
    {"question_id": 3, "q": "10-3", "expected": "7"},
]

# 1. What to run: the cartesian product of prompts, models and sampling configs.
plan = GenerationPlan(
    templates=[
        PromptTemplate(name="zero_shot", template="{q}"),
        PromptTemplate(name="cot", template="Think step-by-step. {q}"),
    ],
    models=[
        ModelSpec(identifier="fake-oracle", provider="fake"),
        ModelSpec(identifier="fake-math-llm", provider="fake"),
    ],
    sampling_parameters=[
        SamplingConfig(temperature=0.0, max_tokens=256),
        SamplingConfig(temperature=0.7, max_tokens=1024),
    ],
    dataset_id_field="question_id",
    reference_field="expected",
)

# 2. How to run it: which provider serves which model, parallelism and retries.
router = ProviderRouter(
    {
        ("fake", "fake-oracle"): create_provider("fake"),
        ("fake", "fake-math-llm"): create_provider("fake"),
    }
)
runner = GenerationRunner(executor=router, max_parallel=16, max_retries=3)

# 3. How to score it.
pipeline = EvaluationPipeline(extractor=IdentityExtractor(), metrics=[ExactMatch()])

# 4. The orchestrator binds them, with a cache so reruns and resumes are free.
cache = CacheManager(
    storage=ExperimentStorage(tempfile.mkdtemp(prefix="themis-level4-")),
    enable_resume=True,
    enable_cache=True,
)
orchestrator = ExperimentOrchestrator(
    generation_plan=plan,
    generation_runner=runner,
    evaluation_pipeline=pipeline,
    cache_manager=cache,
)

report = orchestrator.run(
    dataset=dataset,
    run_id="model-prompt-temperature-sweep-v1",
    evaluation_batch_size=50,
)

print(f"Total evaluations executed: {len(report.records)}")
for cell_id, cell in report.cells.items():
    print(f"  {cell_id:32s} ExactMatch={cell.metrics['ExactMatch'].mean:.2f}")
print(f"manifest sha256: {report.manifest['manifest_sha256'][:16]}…")
