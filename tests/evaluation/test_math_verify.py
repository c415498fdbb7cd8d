"""MathVerifyAccuracy and its worker pool: verdicts, timeouts, hostile input, lifecycle."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_themis.core.entities import GenerationRecord
from pytest_themis.errors import ConfigurationError, MetricError
from pytest_themis.evaluation._quick_math import quick_match
from pytest_themis.evaluation._sandbox import WorkerPool
from pytest_themis.evaluation.extractors import MathVerifyExtractor
from pytest_themis.evaluation.metrics.base import MetricItemError
from pytest_themis.evaluation.metrics.math_verify import MathVerifyAccuracy
from pytest_themis.evaluation.pipeline import EvaluationPipeline

pytestmark = pytest.mark.timeout(120)
RecordFactory = Callable[..., GenerationRecord]

TIMEOUT = 1.5
SLACK = 2.5  # process bookkeeping on a loaded 2-core machine
HOSTILE = {
    "100 KB of LaTeX": ("\\frac{\\sqrt{x^{2}+1}}{\\left(y-3\\right)^{7}} + " * 2_500)[:100_000],
    "10,000 nested braces": "{" * 10_000 + "1" + "}" * 10_000,
    "power tower": "9^{9^{9^{9}}}",
}


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def metric() -> Iterator[MathVerifyAccuracy]:
    shared = MathVerifyAccuracy(timeout=TIMEOUT)
    yield shared
    shared.close()


@pytest.mark.parametrize(
    ("prediction", "gold", "value"),
    [
        ("\\frac{2}{4}", "\\frac{1}{2}", 1.0),
        ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", 1.0),
        ("\\sqrt{3} \\cdot 2", "2\\sqrt{3}", 1.0),
        ("(1,2]", "(1, 2]", 1.0),
        ("[0, \\infty)", "[0,\\infty)", 1.0),
        ("(x+1)^2", "x^2+2x+1", 1.0),
        ("\\pi \\cdot 3", "3\\pi", 1.0),
        ("$3$", "3", 1.0),
        ("\\boxed{4}", "3", 0.0),
        ("\\frac{1}{3}", "\\frac{1}{2}", 0.0),
        ("(1,2)", "(1,2]", 0.0),
        ("x^2+1", "x^2-1", 0.0),
    ],
)
def test_verdicts(metric: MathVerifyAccuracy, prediction: str, gold: str, value: float) -> None:
    assert metric.compute(prediction, gold).value == value


def test_gold_is_passed_first(metric: MathVerifyAccuracy) -> None:
    # math-verify is asymmetric here: an interval answer matches an inequality gold, not vice versa.
    scores = metric.score_batch([("(1,2)", "1<x<2"), ("1<x<2", "(1,2)")])
    assert [s.value for s in scores] == [1.0, 0.0]


def test_batch_order_details_and_fast_path(metric: MathVerifyAccuracy) -> None:
    items = [("0.5", "\\frac{1}{2}"), ("\\sqrt{8}", "2\\sqrt{2}"), ("7", "8"), ("", "1")]
    scores = metric.score_batch(items)
    assert [s.value for s in scores] == [1.0, 1.0, 0.0, 0.0]
    assert scores[0].details == {"fast_path": True}
    assert scores[1].details.get("parsed") == "\\sqrt{8}"
    assert scores[3].details == {"prediction_unparsed": True}
    assert all(s.name == "MathVerifyAccuracy" for s in scores)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_fails_within_the_timeout(metric: MathVerifyAccuracy, name: str) -> None:
    text = HOSTILE[name]
    metric.pool.start()  # exclude the one-off pool start from the measurement
    start = time.monotonic()
    as_prediction, as_gold = metric.score_batch([(text, "1"), ("1", text)])
    elapsed = time.monotonic() - start
    assert as_prediction.value == 0.0 and as_gold.value == 0.0
    assert elapsed < TIMEOUT + SLACK, f"{name} took {elapsed:.1f}s"
    # ... and the pool keeps working afterwards (stuck workers were replaced).
    assert metric.compute("\\frac{6}{4}", "1.5").value == 1.0
    assert metric.compute("\\sqrt{4}", "2").value == 1.0


def test_stuck_item_is_killed_and_reported_as_timeout(metric: MathVerifyAccuracy) -> None:
    before = metric.pool.restarts
    stuck, fine = metric.score_batch([("9^{9^{9^{9}}}", "2"), ("2\\sqrt{2}", "\\sqrt{8}")])
    assert stuck.value == 0.0 and stuck.details == {"timeout": True}
    assert fine.value == 1.0
    assert metric.pool.restarts == before + 1


def test_extractor_output_feeds_the_metric(metric: MathVerifyAccuracy) -> None:
    answer = MathVerifyExtractor().extract("So the area is \\boxed{\\dfrac{\\sqrt{3}}{4}}.")
    assert metric.compute(answer, "\\frac{\\sqrt3}{4}").value == 1.0


def test_concurrent_callers_are_serialised(metric: MathVerifyAccuracy) -> None:
    results: dict[int, list[float]] = {}

    def score(k: int) -> None:
        pairs = [(f"\\sqrt{{{k * k}}}", str(k)), (f"\\sqrt{{{k}}}", f"{k}^{{1/2}}")]
        results[k] = [s.value for s in metric.score_batch(pairs)]

    threads = [threading.Thread(target=score, args=(k,)) for k in (2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {2: [1.0, 1.0], 3: [1.0, 1.0], 5: [1.0, 1.0]}


def test_pool_is_lazy_and_pipeline_close_stops_every_process(make_record: RecordFactory) -> None:
    metric = MathVerifyAccuracy(timeout=TIMEOUT, workers=1)
    pipeline = EvaluationPipeline(MathVerifyExtractor(), [metric])
    (easy,) = pipeline.evaluate([make_record("So \\boxed{0.5}", "\\frac{1}{2}")])
    assert easy.scores["MathVerifyAccuracy"].value == 1.0
    assert not metric.pool.started  # the fast path needed no worker
    (hard,) = pipeline.evaluate([make_record("It is \\boxed{2\\sqrt{2}}", "\\sqrt{8}")])
    assert hard.scores["MathVerifyAccuracy"].value == 1.0
    pid = metric.pool.host_pid
    assert pid is not None and not _group_gone(pid)
    pipeline.close()
    assert _group_gone(pid)  # host and its forked workers share one process group
    metric.close()  # idempotent
    assert not metric.pool.started  # a later batch would start a fresh pool


def test_prepare_launches_the_pool_in_the_background(make_record: RecordFactory) -> None:
    metric = MathVerifyAccuracy(timeout=TIMEOUT, workers=1)
    pipeline = EvaluationPipeline(MathVerifyExtractor(), [metric])
    try:
        pipeline.prepare()
        pid = metric.pool.host_pid
        assert pid is not None and not _group_gone(pid)
        (hard,) = pipeline.evaluate([make_record("It is \\boxed{2\\sqrt{2}}", "\\sqrt{8}")])
        assert hard.scores["MathVerifyAccuracy"].value == 1.0
        assert metric.pool.host_pid == pid  # the launched host served the batch
    finally:
        pipeline.close()
    assert _group_gone(pid)


def test_missing_reference_names_the_row(make_record: RecordFactory) -> None:
    metric = MathVerifyAccuracy(timeout=TIMEOUT)
    with pytest.raises(MetricItemError):
        metric.score_batch([("1", "1"), ("1", "  ")])
    pipeline = EvaluationPipeline(MathVerifyExtractor(), [metric])
    with pytest.raises(MetricError, match=r"MathVerifyAccuracy.*'q9'.*empty"):
        pipeline.evaluate([make_record("\\boxed{1}", "", row_id="q9")])
    assert not metric.pool.started


def test_configuration_and_pickling() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        MathVerifyAccuracy(timeout=0)
    with pytest.raises(ConfigurationError, match="workers"):
        MathVerifyAccuracy(workers=0)
    metric = MathVerifyAccuracy(timeout=2.0, workers=1)
    clone = pickle.loads(pickle.dumps(metric))
    assert clone.timeout == 2.0 and clone.workers == 1 and not clone.pool.started
    assert metric.to_dict() == {"name": "MathVerifyAccuracy"}


@pytest.mark.parametrize(
    ("gold", "prediction", "accepted"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\dfrac12", "1/2", True),
        ("4,020", "4020", True),
        ("(1, 2]", "\\left(1,2\\right]", True),
        ("12", "\\boxed{12}", True),
        ("-\\frac{3}{4}", "-0.75", True),
        ("3", "4", False),
        ("1,2", "12", False),
        ("\\sqrt{2}", "\\sqrt 2", False),  # left to math-verify
        ("1" * 500, "1" * 500, False),  # too long to examine
    ],
)
def test_fast_path_only_accepts_provable_matches(
    gold: str, prediction: str, accepted: bool
) -> None:
    assert quick_match(gold, prediction) is accepted


# --------------------------------------------------------------------------- the pool itself


def test_worker_pool_outcomes_with_stdlib_handlers() -> None:
    with WorkerPool("math:sqrt", 2) as pool:
        outcomes = pool.map([4.0, -1.0, 9.0], timeout=5.0)
        assert [o.status for o in outcomes] == ["ok", "error", "ok"]
        assert outcomes[0].value == 2.0 and "ValueError" in outcomes[1].message
    with WorkerPool("os:_exit", 1) as pool:
        (crashed,) = pool.map([3], timeout=5.0)
        assert crashed.status == "crashed" and "code 3" in crashed.message
    with WorkerPool("time:sleep", 2) as pool:
        pool.start()
        start = time.monotonic()
        outcomes = pool.map([30.0, 0.0], timeout=0.5)
        assert [o.status for o in outcomes] == ["timeout", "ok"]
        assert time.monotonic() - start < 0.5 + SLACK
        assert pool.restarts == 1
    with pytest.raises(RuntimeError, match="closed"):
        pool.map([1.0], timeout=1.0)


def test_workers_stop_at_interpreter_exit_and_main_is_not_reimported(tmp_path: Path) -> None:
    # A script without a __main__ guard: were workers to re-import it, "started" would repeat.
    script = tmp_path / "score.py"
    script.write_text(
        textwrap.dedent(
            """
            from pytest_themis.evaluation.metrics.math_verify import MathVerifyAccuracy
            print("started", flush=True)
            metric = MathVerifyAccuracy(timeout=5, workers=2)
            print(metric.compute("\\\\sqrt{4}", "2").value, metric.pool.host_pid, flush=True)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.split()
    assert lines.count("started") == 1
    assert lines[1] == "1.0"
    assert _group_gone(int(lines[2]))
