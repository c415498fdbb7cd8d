"""Scoring on the engine: MathVerify and the humaneval sandbox scored on real Ray / Dask workers.

Generations are made locally first and cached; the engine runs reuse the cache, so what runs on
the cluster is the scoring alone (the model callables never leave this process).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dask_cluster import local_cluster, poll, subprocess_cluster
from support.ray_cluster import local_ray

from pytest_themis import evaluate
from pytest_themis.backends.dask import DaskExecutionBackend
from pytest_themis.backends.ray import RayExecutionBackend
from pytest_themis.core.entities import GenerationRecord, MetricScore, ModelSpec, SamplingConfig
from pytest_themis.core.reports import ExperimentReport
from pytest_themis.errors import ConfigurationError, MetricError
from pytest_themis.evaluation.metrics.base import Metric
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.metrics.math_verify import MathVerifyAccuracy
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.templates import PromptTemplate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STUCK = "9^{9^{9^{9}}}"  # math-verify never finishes this one: a per-sample timeout
MATH = [
    ("\\frac{2}{4}", "\\frac{1}{2}"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
    ("(x+1)^2", "x^2+2x+1"),
    ("\\frac{1}{3}", "\\frac{1}{2}"),
    ("(1,2)", "(1,2]"),
    ("0.5", "\\frac{1}{2}"),
    (STUCK, "2"),
    ("x^2+1", "x^2-1"),
    ("", "1"),
    ("\\pi \\cdot 3", "3\\pi"),
] * 2
MATH_ROWS = [{"id": f"m{i}", "pred": p, "gold": g} for i, (p, g) in enumerate(MATH)]

HUMANEVAL_ROWS = [
    {
        "task_id": f"HumanEval/{i}",
        "prompt": f'def f{i}(x: int) -> int:\n    """Add {i}."""\n',
        "canonical_solution": f"    return x + {i}\n",
        "test": f"def check(candidate):\n    assert candidate(1) == {1 + i}\n",
        "entry_point": f"f{i}",
    }
    for i in range(6)
]
LOOP = "    while True:\n        pass\n"


def echo(prompt: str) -> str:
    return prompt


def _per_sample(report: ExperimentReport, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """task id -> {metric: (value, details)} (only the ``keep`` details when given)."""
    out: dict[str, Any] = {}
    for record in report.records:
        assert record.generation.task.task_id not in out, "a record came back twice"
        out[record.generation.task.task_id] = {
            name: (s.value, {k: v for k, v in s.details.items() if not keep or k in keep})
            for name, s in record.scores.items()
        }
    return out


@pytest.fixture(scope="module")
def dask_backend() -> Iterator[DaskExecutionBackend]:
    with local_cluster(2, {"distributed.scheduler.allowed-failures": 0}) as client:
        backend = DaskExecutionBackend(client)
        yield backend
        backend.shutdown()


@pytest.fixture(scope="module")
def ray_backend() -> Iterator[RayExecutionBackend]:
    with local_ray():
        backend = RayExecutionBackend(actors=2)
        yield backend
        backend.shutdown()


@pytest.fixture(params=["dask", "ray"])
def engine(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_backend")


# --------------------------------------------------------------------------- math-verify


@pytest.fixture(scope="module")
def math_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The store of a local run (every generation cached) and its per-sample scores."""
    store = tmp_path_factory.mktemp("math-store")
    metric = MathVerifyAccuracy(timeout=1.5, workers=1)
    try:
        report = _math_run(store, metric)
    finally:
        metric.close()
    return store, _per_sample(report)


def _math_eval(*, model: Any = echo, **options: Any) -> ExperimentReport:
    """``evaluate`` of ``model`` on :data:`MATH_ROWS` (prompt: the prediction; reference: gold)."""
    return evaluate(
        dataset=MATH_ROWS, model=model, prompt="{pred}", reference_field="gold", **options
    )


def _math_run(store: Path, metric: Metric, **options: Any) -> ExperimentReport:
    return _math_eval(metrics=[metric], storage=str(store), **options)


def _echo_run(rows: list[dict[str, Any]], *, model: Any = echo, **options: Any) -> ExperimentReport:
    """``evaluate`` of ``model`` on ``rows`` whose ``q`` is both the prompt and the reference."""
    return evaluate(dataset=rows, model=model, prompt="{q}", reference_field="q", **options)


def test_math_verify_on_the_engine_scores_like_local(engine: Any, math_store: Any) -> None:
    store, local = math_store
    stuck = [v for v in local.values() if v["MathVerifyAccuracy"][1] == {"timeout": True}]
    assert len(stuck) == 2  # the timeout holds locally ...
    assert {v["MathVerifyAccuracy"][0] for v in local.values()} == {0.0, 1.0}
    metric = MathVerifyAccuracy(timeout=1.5, workers=1)
    report = _math_run(store, metric, execution_backend=engine, score_on_engine=True)
    assert all(c.cached == len(MATH_ROWS) for c in report.cells.values())
    assert _per_sample(report) == local  # ... and on the engine, sample for sample
    assert not metric.pool.started  # nothing was scored in this process


# --------------------------------------------------------------------------- humaneval


def _humaneval_model(solutions: dict[str, str]) -> Any:
    def model(prompt: str) -> str:
        for row in HUMANEVAL_ROWS:
            if row["prompt"] in prompt:
                return f"```python\n{row['prompt']}{solutions[row['task_id']]}```"
        return ""

    return model


def test_humaneval_on_the_engine_scores_like_local(engine: Any, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "humaneval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HUMANEVAL_ROWS))
    canonical = [r["canonical_solution"] for r in HUMANEVAL_ROWS]
    # two canonical, two swapped with a neighbour, two infinite loops
    chosen = [canonical[0], canonical[1], canonical[3], canonical[2], LOOP, LOOP]
    model = _humaneval_model({r["task_id"]: c for r, c in zip(HUMANEVAL_ROWS, chosen, strict=True)})
    run = dict(model=model, data_dir=folder, storage=str(tmp_path / "store"))
    local = _per_sample(evaluate("humaneval", **run), keep=("status",))
    on_engine = evaluate("humaneval", execution_backend=engine, score_on_engine=True, **run)
    assert _per_sample(on_engine, keep=("status",)) == local
    by_row = {r.row_id: r.scores["CodeExecution"] for r in on_engine.records}
    assert [by_row[r["task_id"]].value for r in HUMANEVAL_ROWS] == [1, 1, 0, 0, 0, 0]
    assert [by_row[r["task_id"]].details["status"] for r in HUMANEVAL_ROWS[4:]] == [
        "timeout",
        "timeout",
    ]


# --------------------------------------------------------------------------- the pytest door


def test_preset_items_pass_when_scored_on_a_dask_cluster(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # (Here, not among the plugin tests: after a --themis-backend=dask:// run through pytester,
    # this process's later in-process pytester runs find no plugin entry points.)
    with subprocess_cluster(tmp_path_factory.mktemp("dask"), n_workers=2) as cluster:
        address = cluster.address.replace("tcp://", "dask://")
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--themis-preset=demo",
            "--themis-limit=3",
            f"--themis-backend={address}",
            "--themis-score-on-engine",
        )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- faults


class StallingMetric(Metric):
    """Exact match that logs ``<pid> <prediction>`` per item; in a process for which
    ``directory/stall-<pid>`` exists, its first batch creates ``stalled-<pid>`` and hangs."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        return MetricScore(self.name, float(prediction == reference))

    def score_batch(self, items: Any) -> list[MetricScore]:
        folder, pid = Path(self.directory), os.getpid()
        with (folder / "calls.log").open("a") as log:
            log.writelines(f"{pid} {prediction}\n" for prediction, _ in items)
        if (folder / f"stall-{pid}").exists():
            (folder / f"stalled-{pid}").touch()
            time.sleep(120)  # the test kills this process long before
        return [self.compute(p, r) for p, r in items]


def test_a_killed_dask_worker_mid_scoring_loses_no_record(
    dask_backend: DaskExecutionBackend, tmp_path: Path
) -> None:
    rows = [{"id": f"r{i}", "q": str(i % 3)} for i in range(40)]
    store = str(tmp_path / "store")
    _echo_run(
        rows,
        metrics=["exact_match"],
        storage=store,
    )
    victim = sorted(dask_backend.client.run(os.getpid).values())[0]
    (tmp_path / f"stall-{victim}").touch()
    killed: list[int] = []

    def kill_when_stalled() -> None:
        poll(lambda: (tmp_path / f"stalled-{victim}").exists(), 120, "the victim to score")
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    killer = threading.Thread(target=kill_when_stalled, daemon=True)
    killer.start()
    report = _echo_run(
        rows,
        metrics=[StallingMetric(str(tmp_path))],
        storage=store,
        execution_backend=dask_backend,
        score_on_engine=True,
    )
    killer.join(timeout=10)
    assert killed == [victim]
    scores = _per_sample(report)  # each record exactly once
    assert len(scores) == len(rows)
    assert all(v["StallingMetric"][0] == 1.0 for v in scores.values())
    calls = [line.partition(" ") for line in (tmp_path / "calls.log").read_text().splitlines()]
    stalled = [pred for pid, _, pred in calls if int(pid) == victim]
    assert stalled, "the victim never scored"
    # the victim's batch was scored again on the other worker
    assert Counter(pred for _, _, pred in calls) >= Counter(stalled) + Counter(stalled)


def _records(count: int, text: str, gold: str) -> list[GenerationRecord]:
    """``count`` generation records answering ``text`` to a question whose gold is ``gold``."""
    plan = GenerationPlan(
        [PromptTemplate("p", "{q}")],
        [ModelSpec("echo", "fake")],
        [SamplingConfig()],
        reference_field="gold",
    )
    rows = [{"id": f"r{i}", "q": "?", "gold": gold} for i in range(count)]
    return [GenerationRecord(task=t, text=text) for t in plan.iter_tasks(plan.prepare(rows))]


def test_a_killed_ray_actor_mid_scoring_loses_no_record(ray_backend: RayExecutionBackend) -> None:
    import ray

    # every item runs into the timeout, so batches stay out a while
    records = _records(16, STUCK, "2")
    pipeline = EvaluationPipeline(metrics=[MathVerifyAccuracy(timeout=0.5, workers=1)])
    scorer = ray_backend.open_scoring(pipeline)
    try:
        batches = scorer.score(records, batch_size=2)
        scored = list(next(batches))
        ray.kill(ray_backend.actors[0])
        for batch in batches:
            scored.extend(batch)
        assert scorer.resubmitted >= 1
    finally:
        scorer.close()
    assert sorted(id(r.generation) for r in scored) == sorted(id(r) for r in records)
    assert all(r.scores["MathVerifyAccuracy"].details == {"timeout": True} for r in scored)


def _worker_pids(engine: Any) -> list[int]:
    if isinstance(engine, DaskExecutionBackend):
        return sorted(engine.client.run(os.getpid).values())
    import ray

    return sorted(ray.get([actor.call.remote(os.getpid) for actor in engine.actors]))


def _pool_hosts(engine: Any) -> set[int]:
    """PIDs of math-verify pool hosts started by the engine's worker processes."""
    import psutil

    hosts = set()
    for pid in _worker_pids(engine):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if "host_main" in " ".join(child.cmdline()):
                    hosts.add(child.pid)
    return hosts


def test_worker_pools_serve_every_batch_and_stop_at_close(engine: Any) -> None:
    assert _pool_hosts(engine) == set()
    records = _records(12, "\\sqrt{8}", "2\\sqrt{2}")  # not the fast path: the pool scores it
    scorer = engine.open_scoring(
        EvaluationPipeline(metrics=[MathVerifyAccuracy(timeout=5, workers=1)])
    )
    try:
        first = [r for batch in scorer.score(records, batch_size=2) for r in batch]
        hosts = _pool_hosts(engine)
        assert 1 <= len(hosts) <= 2  # one pool per worker process, whatever its batch count
        second = [r for batch in scorer.score(records, batch_size=3) for r in batch]
        assert _pool_hosts(engine) == hosts  # the same pools served the next batches
    finally:
        scorer.close()
    assert all(r.scores["MathVerifyAccuracy"].value == 1.0 for r in first + second)
    poll(lambda: not _pool_hosts(engine), 30, "the workers' pools to stop")


# --------------------------------------------------------------------------- judges stay here


class LocalOnly(Metric):
    """A records-reading metric holding a lock: it cannot be pickled, so it must stay here."""

    wants_records = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        raise AssertionError("scored through score_records")

    def score_records(self, records: list[Any]) -> list[MetricScore]:
        self.pid = os.getpid()
        return [MetricScore(self.name, float(len(r.generation.text or ""))) for r in records]


def test_records_reading_metrics_stay_in_this_process(dask_backend: DaskExecutionBackend) -> None:
    rows = [{"id": f"r{i}", "q": "x" * i} for i in range(1, 9)]
    judge = LocalOnly()
    pipeline = EvaluationPipeline(metrics=[judge, ExactMatch()])
    report = _echo_run(
        rows,
        evaluation_pipeline=pipeline,
        storage=None,
        execution_backend=dask_backend,
        score_on_engine=True,
    )
    assert judge.pid == os.getpid()
    for record in report.records:
        assert list(record.scores) == ["LocalOnly", "ExactMatch"]  # the pipeline's order
        assert record.scores["LocalOnly"].value == len(record.generation.task.row["q"])
        assert record.scores["ExactMatch"].value == 1.0


# --------------------------------------------------------------------------- bad input


def test_score_on_engine_without_a_cluster_fails_before_any_request() -> None:
    calls: list[str] = []

    def model(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    for backend in (None, "threads"):
        with pytest.raises(ConfigurationError) as info:
            _math_eval(
                model=model,
                metrics=["exact_match"],
                storage=None,
                execution_backend=backend,
                score_on_engine=True,
            )
        message = str(info.value)
        assert "\n" not in message and "score_on_engine needs a Ray or Dask" in message
    assert calls == []
    with pytest.raises(ConfigurationError, match="score_on_engine must be True or False"):
        _math_eval(
            model=model,
            metrics=["exact_match"],
            score_on_engine="yes",
        )


class Unpicklable(Metric):
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def compute(self, prediction: str, reference: Any) -> float:
        return 1.0


def test_a_pipeline_the_engine_cannot_receive_fails_before_any_request(
    dask_backend: DaskExecutionBackend,
) -> None:
    calls: list[str] = []

    def model(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    with pytest.raises(ConfigurationError) as info:
        _math_eval(
            model=model,
            metrics=[Unpicklable()],
            storage=None,
            execution_backend=dask_backend,
            score_on_engine=True,
        )
    message = str(info.value)
    assert "\n" not in message and "cannot be sent to the engine" in message
    assert "score_on_engine off" in message and calls == []


class Exploding(Metric):
    def compute(self, prediction: str, reference: Any) -> float:
        if prediction == "boom":
            raise ValueError("boom")
        return 1.0


def test_a_failing_metric_fails_the_run_as_it_does_locally(
    dask_backend: DaskExecutionBackend,
) -> None:
    rows = [{"id": "fine", "q": "ok"}, {"id": "bad", "q": "boom"}]
    messages = []
    for options in ({}, {"execution_backend": dask_backend, "score_on_engine": True}):
        with pytest.raises(MetricError) as info:
            _echo_run(
                rows,
                metrics=[Exploding()],
                storage=None,
                **options,
            )
        messages.append(str(info.value))
    assert messages[0] == messages[1] == "metric Exploding failed on row 'bad': ValueError: boom"


def test_a_handle_handed_out_stays_ready_until_its_result_is_taken(engine: Any) -> None:
    # A scorer that stops at a failed batch leaves the other finished batches uncollected, then
    # drains them: a second wait must find them (it once waited forever on Dask).
    engine.open()
    adapter = engine.adapter
    first, second = adapter.submit_call(abs, -1), adapter.submit_call(abs, -2)
    seen = set(adapter.wait_any([first, second], 120))
    seen |= set(adapter.wait_any([h for h in (first, second) if h not in seen], 120))
    assert seen == {first, second}, f"not finished within 120 s: {first!r}, {second!r}"
    assert set(adapter.wait_any([first, second], 30)) == {first, second}
    assert adapter.result(first) == 1
    assert adapter.wait_any([second], 30) == [second]
    assert adapter.result(second) == 2
