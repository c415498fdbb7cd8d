"""CodeExecution: run a candidate program against the problem's tests in the sandbox."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...core.entities import MetricScore
from ...errors import ConfigurationError
from ..code_sandbox import SandboxLimits, run_programs
from .base import Metric

__all__ = ["CodeExecution", "assemble_program"]

_IMPORT = re.compile(r"^(?:from\s+\S+\s+)?import\s+.+$", re.MULTILINE)


def assemble_program(code: str, reference: Mapping[str, Any]) -> str:
    """The program to run: the candidate (completing the prompt when it does not define the
    entry point itself), then the tests, then ``check(entry_point)``.

    ``reference`` holds ``prompt``, ``test`` and ``entry_point`` (HumanEval's fields).
    """
    prompt = str(reference.get("prompt") or "")
    entry = str(reference["entry_point"])
    if re.search(rf"^\s*def\s+{re.escape(entry)}\b", code, re.MULTILINE):
        # A whole function: keep the prompt's imports (helpers models often omit them).
        head = "\n".join(_IMPORT.findall(prompt))
        program = f"{head}\n{code}" if head else code
    else:
        program = prompt + code
    return f"{program}\n\n{reference['test']}\n\ncheck({entry})\n"


class CodeExecution(Metric):
    """1.0 when the candidate passes the problem's tests, run in its own sandboxed process.

    The reference is a mapping with ``test`` and ``entry_point`` (and the ``prompt`` the candidate
    completes). Each program gets ``timeout`` seconds of wall clock and the other
    :class:`SandboxLimits`; a crash, hang, fork bomb or forbidden write scores 0 with the reason in
    the score's details. ``workers`` programs run at a time (default: one per CPU).
    """

    value_range = (0.0, 1.0)

    def __init__(
        self,
        timeout: float = 5.0,
        memory_mb: int = 1024,
        workers: int | None = None,
    ) -> None:
        self.limits = SandboxLimits(timeout=timeout, memory_mb=memory_mb)
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigurationError(f"CodeExecution workers must be >= 1, got {workers!r}")
        self.workers = workers

    def params(self) -> dict[str, Any]:
        return {"memory_mb": self.limits.memory_mb}

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        return self.score_batch([(prediction, reference)])[0]

    def score_batch(self, items: Sequence[tuple[str, Any]]) -> list[MetricScore]:
        programs = []
        for prediction, reference in items:
            if not isinstance(reference, Mapping) or not {"test", "entry_point"} <= set(reference):
                raise ConfigurationError(
                    "CodeExecution needs a reference mapping with 'test' and 'entry_point' "
                    f"(HumanEval's fields), got {type(reference).__name__}"
                )
            programs.append(assemble_program(prediction, reference))
        results = run_programs(programs, self.limits, self.workers)
        return [
            MetricScore(
                name=self.name,
                value=1.0 if result.passed else 0.0,
                details={"status": result.status, "output": result.output[-500:]},
            )
            for result in results
        ]
