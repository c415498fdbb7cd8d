"""Per-sample results and baseline comparison for a pytest run.

:class:`RunRecorder` is registered next to the run's state. It loads ``--themis-baseline`` at
configure time (a bad baseline is a usage error before anything is generated), checks gates and
datasets at collection, fails items per ``--themis-fail-on-regression`` /
``--themis-require-noninferior``, and at session end (controller only, :meth:`RunRecorder.finish`)
builds the final manifest — cells, ``samples`` reference, ``comparison`` — and writes it once,
with ``runs/<run_id>.json`` and the samples file, keeps the samples in the store by run id, and
prints the "vs baseline" table. xdist workers hand their cells'
samples to the controller through ``workeroutput``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from ..comparison.baseline import load_baseline, samples_reference
from ..comparison.compare import RunData, compare_runs
from ..comparison.results import Comparison, describe, is_regression, not_noninferior
from ..comparison.samples import (
    rows_digest,
    sample_rows,
    store_run,
    template_hashes,
    write_jsonl,
)
from ..errors import ThemisError
from ..report.formatting import format_comparison, number
from . import CASE_FIXTURE, is_xdist_worker
from .items import OUTCOME_KEY
from .summary import WrittenManifest, session_manifest, write_json

if TYPE_CHECKING:  # pragma: no cover
    from .session import CellOutcome
    from .state import ThemisState

__all__ = ["RunRecorder"]

_WORKER_KEY = "themis_samples"
_EPOCH_GATE = re.compile(r"^(pass|maj)@(\d+)$", re.IGNORECASE)


class RunRecorder:
    """Samples, baseline and regression gates of one pytest run (see the module docstring)."""

    def __init__(self, state: ThemisState) -> None:
        self.state = state
        self.config = state.config
        options = state.options
        self.fail_on_regression: float | None = options.cli.get("fail_on_regression")
        self.require_noninferior: float | None = options.cli.get("require_noninferior")
        self.log_prompts = str(options.get("log_prompts"))
        self.baseline: RunData | None = None
        self.family_cells = 0
        self.comparison: Comparison | None = None
        self.comparison_error: str | None = None
        self.samples: dict[str, list[dict[str, Any]]] = {}
        spec = options.baseline
        if spec is None and (
            self.fail_on_regression is not None or self.require_noninferior is not None
        ):
            flag = (
                "--themis-fail-on-regression"
                if self.fail_on_regression is not None
                else "--themis-require-noninferior"
            )
            raise pytest.UsageError(f"{flag} needs a baseline: add --themis-baseline=PATH|RUN_ID")
        if spec is not None:
            storage = self._storage()
            try:
                self.baseline = load_baseline(
                    spec, storage=storage, latest_manifest=options.manifest_path
                )
            except ThemisError as exc:
                raise pytest.UsageError(f"--themis-baseline: {exc}") from None
            finally:
                if storage is not None:
                    storage.close()

    @property
    def margin(self) -> float:
        """The margin verdicts use: the gate's, else 0."""
        for value in (self.require_noninferior, self.fail_on_regression):
            if value is not None:
                return float(value)
        return 0.0

    def _storage(self) -> Any:
        """The run's store (``--themis-storage`` URL, else the cache folder); None when off."""
        options = self.state.options
        if options.cache_mode == "off":
            return None
        from ..storage import open_storage

        return open_storage(options.storage or options.cache_dir)

    # -- collection -----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Usage errors before any generation: pass@k beyond the epochs, another dataset."""
        cases = {}
        for item in items:
            case = _case(item)
            if case is not None:
                cases[(case.spec_key, case.cell.cell_id)] = case
        self.family_cells = len(cases)
        session = self.state.session if cases else None
        specs = {key: session.specs[key] for key, _ in cases} if session is not None else {}
        errors: list[str] = []
        for gate in self.state.options.fail_under:
            match = _EPOCH_GATE.match(gate.metric or "")
            if match is None:
                continue
            k = int(match.group(2))
            for spec in specs.values():
                if k > spec.epochs:
                    errors.append(
                        f"--themis-fail-under {gate.metric}={gate.value:g}: {spec.name} runs "
                        f"{spec.epochs} epoch(s); {match.group(1)}@{k} needs --themis-epochs>={k}"
                    )
        if self.baseline is not None and session is not None:
            fingerprints = set()
            for spec in specs.values():
                if spec.source.kind == "none":
                    continue
                try:
                    fingerprints.add(session.fingerprint(session.load_rows(spec.source)))
                except (Exception, pytest.fail.Exception):
                    continue  # the item reports the unreadable dataset itself
            known = self.baseline.dataset_fingerprints()
            if fingerprints and known and not fingerprints & known:
                errors.append(
                    f"--themis-baseline: run {self.baseline.run_id} was recorded on another "
                    "dataset (no dataset fingerprint in common); compare runs of the same rows"
                )
        if errors:
            raise pytest.UsageError("\n".join(dict.fromkeys(errors)))

    # -- items ----------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """After a themis test body passed: compare its cell with the baseline and gate it."""
        result = yield
        outcome = item.stash.get(OUTCOME_KEY, None)
        case = _case(item)
        if self.baseline is None or outcome is None or case is None or case.per_sample:
            return result
        __tracebackhide__ = True
        comparison = self._compare_cell(outcome)
        cells = [c for c in comparison.cells if c.cell_id == outcome.cell.cell_id]
        for cell in cells:
            item.user_properties.append(("themis_vs_baseline", cell.verdict))
            for m in cell.metrics.values():
                item.user_properties.append((f"themis_{m.metric}_delta", _junit(m.difference)))
                item.user_properties.append((f"themis_{m.metric}_delta_ci_low", _junit(m.ci_low)))
                item.user_properties.append((f"themis_{m.metric}_delta_ci_high", _junit(m.ci_high)))
                item.user_properties.append((f"themis_{m.metric}_p_holm", _junit(m.p_adjusted)))
        failures = self._gate(comparison, cells)
        if not cells and self.require_noninferior is not None:
            failures.append(
                f"{outcome.spec.name} [{outcome.cell.cell_id}]: no cell of baseline "
                f"{comparison.baseline_run_id} matches (same model, prompt and sampling)"
            )
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)
        return result

    def _compare_cell(self, outcome: CellOutcome) -> Comparison:
        assert self.baseline is not None
        rows = self._rows(outcome)
        # per-sample metrics only: pass@k / maj@k aggregates are not compared
        metrics = max(1, sum(1 for name in outcome.report.metrics if "@" not in name))
        return compare_runs(
            RunData(outcome.result["manifest"]["run_id"], outcome.result["manifest"], rows),
            self.baseline,
            margin=self.margin,
            family_size=max(1, self.family_cells) * metrics,
            check_dataset=False,  # checked for the whole session at collection
        )

    def _gate(self, comparison: Comparison, cells: list[Any]) -> list[str]:
        failures = []
        for cell in cells:
            label = f"{cell.experiment} [{cell.cell_id}] vs baseline {comparison.baseline_run_id}"
            for m in cell.metrics.values():
                if self.fail_on_regression is not None and is_regression(
                    m, comparison.alpha, self.fail_on_regression
                ):
                    failures.append(
                        f"--themis-fail-on-regression={self.fail_on_regression:g}: {label}: "
                        f"{m.metric} {describe(m)}"
                    )
                if self.require_noninferior is not None and not_noninferior(
                    m, self.require_noninferior
                ):
                    failures.append(
                        f"--themis-require-noninferior={self.require_noninferior:g}: {label}: "
                        f"{m.metric} lower bound "
                        f"{number(m.ci_low, signed=True, missing='nan')} is not above "
                        f"-{self.require_noninferior:g}: {describe(m)}"
                    )
        return failures

    def _rows(self, outcome: CellOutcome) -> list[dict[str, Any]]:
        rows = self.samples.get(outcome.key)
        if rows is None:
            rows = sample_rows(
                outcome.report.records,
                self.state.run_id,
                templates=template_hashes(outcome.result["manifest"]),
                experiment=outcome.spec.name,
                log_prompts=self.log_prompts,
            )
            self.samples[outcome.key] = rows
        return rows

    # -- session end ----------------------------------------------------------------------------

    def _collect_local(self) -> None:
        for outcome in self.state.outcomes:
            self._rows(outcome)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: take the samples a worker computed."""
        text = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if text:
            for key, rows in json.loads(text).items():
                self.samples.setdefault(key, rows)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """xdist worker: hand this process's samples to the controller (which calls
        :meth:`finish`)."""
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            self._collect_local()
            workeroutput[_WORKER_KEY] = json.dumps(self.samples, default=str)

    def finish(self, *, interrupted: bool = False) -> WrittenManifest:
        """The session's one end step (controller): build everything, then write once.

        Cells are merged; the samples file is written and the comparison with the baseline
        computed; :func:`finalize_manifest` adds both, hashes and checks the result; then the
        manifest and ``runs/<run_id>.json`` are written, the samples kept in the store and the
        HTML/Markdown/plot outputs written from that final manifest.
        """
        from ..experiment.manifest import finalize_manifest

        state = self.state
        results = sorted(state.results.values(), key=lambda r: r["key"])
        path = state.options.manifest_path
        runs_dir = path.parent / "runs"
        try:
            manifest = session_manifest(
                results, state.run_id, interrupted=interrupted, started=state.started
            )
            if manifest is None:
                return WrittenManifest(None, "no manifest parts were produced", None)
            if not results:  # Ctrl-C before any cell finished: no samples to record
                final = finalize_manifest(manifest, interrupted=interrupted)
                write_json(path, final)
                return WrittenManifest(path, None, final)
            self._collect_local()
            rows = [row for r in results for row in self.samples.get(r["key"], [])]
            samples_path = state.options.samples_path or runs_dir / f"{state.run_id}.samples.jsonl"
            digest = write_jsonl(rows, samples_path)
            content = rows_digest(rows)
            self._compare(manifest, rows)
            final = finalize_manifest(
                manifest,
                samples=samples_reference(samples_path, path.parent, digest, len(rows), content),
                comparison=self.comparison.to_dict() if self.comparison is not None else None,
                interrupted=interrupted,
            )
            write_json(path, final)
            # The run's own copy: the same manifest, its samples path relative to runs/.
            run_copy = dict(
                final, samples=samples_reference(samples_path, runs_dir, digest, len(rows), content)
            )
            write_json(runs_dir / f"{state.run_id}.json", run_copy)
        except (ThemisError, OSError) as exc:
            return WrittenManifest(None, str(exc), None)
        try:
            self._keep(final, rows)
        except (OSError, ThemisError) as exc:
            state.manifest_error = f"per-sample results not kept in the store: {exc}"
        return WrittenManifest(path, None, final)

    def _compare(self, manifest: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """The whole session against the baseline (Holm across every cell × metric)."""
        if self.baseline is None:
            return
        try:
            self.comparison = compare_runs(
                RunData(self.state.run_id, manifest, rows), self.baseline, margin=self.margin
            )
        except ThemisError as exc:  # e.g. a fixture's rows differ from the baseline's
            self.comparison_error = str(exc)

    def _keep(self, manifest: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Keep the samples in the store by run id; write the HTML/Markdown/plot outputs."""
        storage = self._storage()
        if storage is not None:
            try:
                store_run(storage, self.state.run_id, manifest, rows)
            finally:
                storage.close()
        from .outputs import write_outputs

        write_outputs(
            self.state, manifest, rows, self.comparison,
            self.baseline.samples if self.baseline is not None else None,
        )  # fmt: skip

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if is_xdist_worker(self.config):
            return
        if self.comparison is not None:
            terminalreporter.section("themis vs baseline")
            for line in format_comparison(self.comparison):
                terminalreporter.write_line(line)
        elif self.comparison_error:
            terminalreporter.section("themis vs baseline")
            terminalreporter.write_line(f"not compared: {self.comparison_error}")


def _case(item: pytest.Item) -> Any:
    """The item's ThemisCase: a marker test's parameter, or a preset item's ``case``."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(CASE_FIXTURE) if callspec is not None else None
    if case is None:
        case = getattr(item, "case", None)
    return case if hasattr(case, "spec_key") and hasattr(case, "cell") else None


def _junit(value: float) -> str:
    """A comparison number as a JUnit property (four decimals, ``nan`` when absent)."""
    return number(value, digits=4, missing="nan")
