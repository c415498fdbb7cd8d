"""Level 1 — one call: a benchmark name and a model.

Offline it runs the shipped ``demo`` benchmark against the built-in fake model. Point it at a real
model and benchmark with arguments, e.g. ``python level1_evaluate.py gsm8k openai/gpt-4o-mini``.
"""

from __future__ import annotations

import sys

from pytest_themis import evaluate

benchmark = sys.argv[1] if len(sys.argv) > 1 else "demo"
model = sys.argv[2] if len(sys.argv) > 2 else "fake:fake-math-llm"

report = evaluate(benchmark, model=model, limit=50)

accuracy = report.metric("NumericMatch" if benchmark in ("demo", "gsm8k") else "MathVerifyAccuracy")
print(
    f"{benchmark} / {model}: {accuracy.mean:.3f} "
    f"[95% CI {accuracy.ci_low:.3f}-{accuracy.ci_high:.3f}] n={accuracy.count}"
)
print(f"records: {len(report.records)}  errors: {len(report.failures)}  run: {report.run_id}")
