"""What the plugin keeps for one pytest run once themis is in use, and the hooks that need it.

Created by ``pytest_themis.plugin`` the first time a run needs it: at configure time when a
``--themis-*`` flag or ini key is set, on the xdist controller when it starts a worker, otherwise
when the first test marked ``themis`` (or requesting a themis fixture) is collected. The state
registers itself as a plugin, so its hooks (preset collection, gates, result reporting) cost a
run that never uses themis nothing: such a run never imports this module.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import CASE_FIXTURE, WORKER_USAGE_ERROR, is_xdist_worker
from .options import ThemisOptions, resolve_options

if TYPE_CHECKING:  # pragma: no cover
    from .baseline import RunRecorder
    from .session import ThemisSession

__all__ = ["RESULT_PROPERTY", "ThemisState", "start_state"]

_RECORDER = "themis-runs"
#: Options that need the baseline loaded when the run starts.
_COMPARISON_OPTIONS = ("baseline", "fail_on_regression", "require_noninferior")

#: Name of the report ``user_properties`` entry that carries a cell result to the controller.
RESULT_PROPERTY = "themis_result"


class ThemisState:
    """Options, run id, collected results and (on demand) the engine session of one run.

    Registered as a plugin object, so its hooks see this run's state.
    """

    def __init__(self, config: pytest.Config, options: ThemisOptions, run_id: str) -> None:
        self.config = config
        self.options = options
        self.run_id = run_id
        self.usage_errors: list[str] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.manifest_path: Path | None = None
        self.manifest_error: str | None = None
        #: "where it went" lines of the HTML/Markdown/plot outputs, printed in the summary.
        self.output_lines: list[str] = []
        self.interrupted = False
        self.started = time.time()
        self._session: ThemisSession | None = None
        #: Whether this state prestarted generation worker processes (stopped in :meth:`close`).
        self.owns_worker_pool = False

    @property
    def session(self) -> ThemisSession:
        if self._session is None:
            from .session import ThemisSession

            self._session = ThemisSession(self.config, self.options, self.run_id)
            self.ensure_recorder()
        return self._session

    @property
    def outcomes(self) -> list[Any]:
        """The cells this process evaluated (empty before the engine session starts)."""
        return list(self._session.outcomes.values()) if self._session is not None else []

    def ensure_recorder(self) -> RunRecorder:
        """Register the per-sample results and baseline hooks (once themis evaluates)."""
        manager = self.config.pluginmanager
        recorder: RunRecorder | None = manager.get_plugin(_RECORDER)
        if recorder is None:
            from .baseline import RunRecorder

            recorder = RunRecorder(self)
            manager.register(recorder, _RECORDER)
        return recorder

    # -- hooks ----------------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """``pytest --themis-preset=NAME`` with no paths runs the benchmark alone, not testpaths."""
        if not self.options.presets or config.args_source == pytest.Config.ArgsSource.ARGS:
            return None
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> None:
        """Report every bad marker at once; add the items of ``--themis-preset`` benchmarks.

        An xdist worker also hands its usage error to the controller, which exits 4 with it.
        """
        try:
            if self.usage_errors:
                raise pytest.UsageError("\n".join(self.usage_errors))
            if self.options.presets:
                from .preset_items import preset_items

                items.extend(preset_items(session, self.session))
            if self._session is not None and not self.config.option.collectonly:
                from .preflight import preflight

                preflight(self._session, items)  # configuration mistakes: exit 4, no request
        except pytest.UsageError as exc:
            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[WORKER_USAGE_ERROR] = [str(arg) for arg in exc.args]
            raise

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Apply the error budget before a themis test body runs and the gates after it passed."""
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get(CASE_FIXTURE) if callspec is not None else None
        if case is None:
            return (yield)
        from .items import OUTCOME_KEY, check_errors, check_gates

        outcome = item.stash.get(OUTCOME_KEY, None)
        if outcome is None:
            return (yield)

        if not case.per_sample:
            check_errors(outcome, self.options.max_errors)
        result = yield
        if not case.per_sample and self.options.fail_under:
            check_gates(outcome, self.options.fail_under, self.options.gate)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Ship cell results computed during this phase to the controller inside the report."""
        report = yield
        if not _is_themis_item(item):
            return report
        from .items import PENDING_KEY

        pending = item.stash.get(PENDING_KEY, None)
        if pending:
            report.user_properties.extend((RESULT_PROPERTY, text) for text in pending)
            pending.clear()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect cell results attached to reports (by this process or an xdist worker)."""
        for prop in report.user_properties:
            if len(prop) == 2 and prop[0] == RESULT_PROPERTY:
                result = json.loads(str(prop[1]))
                self.ensure_recorder()  # the xdist controller: collects the workers' samples
                known = self.results.get(result["key"])
                # a second xdist worker re-reading a cell from the cache does not replace the
                # result of the worker that generated it
                if known is None or result.get("generated", 0) > known.get("generated", 0):
                    self.results[result["key"]] = result
                if known is None and not is_xdist_worker(self.config):
                    self.config.hook.pytest_themis_cell_finished(
                        cell=result["cell_id"], report=result
                    )

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C: make reporting and exiting cheap before pytest formats the interrupt."""
        from .interrupt import settle_interrupt

        settle_interrupt(self.config, excinfo)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._session is not None:
            self._session.close()
        self.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED and self._session is not None
        if is_xdist_worker(self.config) or not (self.results or self.interrupted):
            return
        # One end step: the recorder builds, hashes, checks and writes the final manifest.
        written = self.ensure_recorder().finish(interrupted=self.interrupted)
        self.manifest_path, self.manifest_error = written.path, written.error or self.manifest_error
        if written.manifest is not None:
            self.config.hook.pytest_themis_session_finished(manifest=written.manifest)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.results or self.interrupted) or is_xdist_worker(self.config):
            return
        from .summary import format_table, interrupted_lines

        terminalreporter.section("themis")
        ordered = sorted(self.results.values(), key=lambda r: (r["experiment"], r["cell_id"]))
        for line in format_table(ordered):
            terminalreporter.write_line(line)
        if self.interrupted:
            for line in interrupted_lines(ordered):
                terminalreporter.write_line(line)
        if self.manifest_path is not None:
            terminalreporter.write_line(f"themis manifest: {self.manifest_path}")
        if self.manifest_error:
            terminalreporter.write_line(f"themis manifest not written: {self.manifest_error}")
        for line in self.output_lines:
            terminalreporter.write_line(line)

    def close(self) -> None:
        """Unregister the hooks and stop the prestarted workers at the end of the run."""
        manager = self.config.pluginmanager
        recorder = manager.get_plugin(_RECORDER)
        if recorder is not None:
            manager.unregister(recorder)
        if manager.is_registered(self):
            manager.unregister(self)
        if self.owns_worker_pool:
            from ..generation.pool import shutdown_pool

            shutdown_pool()
            self.owns_worker_pool = False


def _is_themis_item(item: pytest.Item) -> bool:
    """A marked or fixture-parametrized themis test, or a ``--themis-preset`` item."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and CASE_FIXTURE in callspec.params:
        return True
    return item.get_closest_marker("themis") is not None


def _new_run_id() -> str:
    return time.strftime("pytest-%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def start_state(config: pytest.Config) -> ThemisState:
    """Resolve the options (ini values are checked here), pick the run id, register the hooks.

    An xdist worker takes the controller's run id, so all results land in one manifest.
    """
    options = resolve_options(config)
    run_id = options.cli.get("run_id")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("themis_run_id"):
        run_id = workerinput["themis_run_id"]
    state = ThemisState(config, options, run_id or _new_run_id())
    config.pluginmanager.register(state, "themis-state")
    if any(options.get(name) is not None for name in _COMPARISON_OPTIONS):
        state.ensure_recorder()  # a bad baseline is a usage error now, before any generation
    state.owns_worker_pool = _prestart_generation_workers(config, options)
    return state


def _prestart_generation_workers(config: pytest.Config, options: ThemisOptions) -> bool:
    """Give the runs a pool of litellm worker processes, started when a first request is due
    (a fully cached session starts none).

    Only for a run that names litellm models on the command line or in the ini file, in a
    process that will generate itself (not under xdist, which spreads the work already) and
    that may send requests (not ``--themis-cache=replay``). True when workers were started.
    """
    if is_xdist_worker(config) or config.getoption("numprocesses", None):
        return False
    models = options.cli_models or options.ini_models
    litellm_models = [m for m in models if not m.startswith(("fake:", "python:"))]
    if not litellm_models or options.cache_mode == "replay":
        return False
    from ..providers.clients import all_native

    if all_native(litellm_models, options.get("api_base"), options.get("client")):
        return False  # the native client runs in this process: no workers to start
    from ..generation.pool import default_processes, prestart

    if default_processes() <= 1:
        return False
    prestart(default_processes(), deferred=True)  # started when a request is due
    return True
