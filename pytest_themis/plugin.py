"""The pytest door of pytest-themis: options, the ``themis`` marker, fixtures and reporting.

Registered through the ``pytest11`` entry point. This module imports only pytest and the standard
library; the engine is imported the first time a run uses themis (``--themis-preset``, a test
marked ``@pytest.mark.themis`` or one requesting a ``themis_*`` result fixture). A test suite that
does not use themis pays for two small module imports and nothing else: no engine import, no
folder, no output.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from ._pytest.items import ThemisCase
    from ._pytest.options import ThemisOptions
    from ._pytest.session import ThemisSession

__all__ = [
    "themis_cell",
    "themis_dataset",
    "themis_execution_backend",
    "themis_extractor",
    "themis_metrics",
    "themis_pipeline",
    "themis_report",
    "themis_sample",
    "themis_storage",
]

_CASE = "_themis_case"
_RESULT_FIXTURES = ("themis_cell", "themis_report", "themis_sample")
_RESULT_PROPERTY = "themis_result"
_MARKER_HELP = (
    "themis(dataset=..., prompts=..., models=..., sampling=..., pipeline=..., metrics=..., "
    "extractor=..., reference_field=..., id_field=..., limit=..., epochs=..., per_sample=False): "
    "evaluate an LLM; the test is parametrized per model x prompt x sampling cell"
)


class _State:
    """What the plugin keeps in ``config.stash``; the heavy session is created on demand."""

    def __init__(self, config: pytest.Config, options: ThemisOptions, run_id: str) -> None:
        self.config = config
        self.options = options
        self.run_id = run_id
        self.usage_errors: list[str] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.manifest_path: Path | None = None
        self.manifest_error: str | None = None
        self._session: ThemisSession | None = None

    @property
    def session(self) -> ThemisSession:
        if self._session is None:
            from ._pytest.session import ThemisSession

            self._session = ThemisSession(self.config, self.options, self.run_id)
        return self._session

    # Registered as a plugin object, so these hooks see this run's state.

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect cell results attached to reports (by this process or an xdist worker)."""
        for prop in report.user_properties:
            if len(prop) == 2 and prop[0] == _RESULT_PROPERTY:
                result = json.loads(str(prop[1]))
                known = self.results.get(result["key"])
                # a second xdist worker re-reading a cell from the cache does not replace the
                # result of the worker that generated it
                if known is None or result.get("generated", 0) > known.get("generated", 0):
                    self.results[result["key"]] = result

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._session is not None:
            self._session.close()
        if hasattr(self.config, "workerinput") or not self.results:
            return
        from ._pytest.summary import write_manifest

        self.manifest_path, self.manifest_error = write_manifest(
            list(self.results.values()), self.run_id, self.options.manifest_path
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results or hasattr(self.config, "workerinput"):
            return
        from ._pytest.summary import format_table

        terminalreporter.section("themis")
        ordered = sorted(self.results.values(), key=lambda r: (r["experiment"], r["cell_id"]))
        for line in format_table(ordered):
            terminalreporter.write_line(line)
        if self.manifest_path is not None:
            terminalreporter.write_line(f"themis manifest: {self.manifest_path}")
        if self.manifest_error:
            terminalreporter.write_line(f"themis manifest not written: {self.manifest_error}")


_STATE = pytest.StashKey[_State]()
#: The cell outcome an item read, and result JSON waiting to be attached to its next report.
OUTCOME_KEY = pytest.StashKey[Any]()
PENDING_KEY = pytest.StashKey[list[str]]()


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE]


def _new_run_id() -> str:
    return time.strftime("pytest-%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


# -- hooks: setup ---------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    from ._pytest.options import add_options

    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from ._pytest.options import resolve_options

    config.addinivalue_line("markers", _MARKER_HELP)
    options = resolve_options(config)
    workerinput = getattr(config, "workerinput", None)
    run_id = options.cli.get("run_id")
    if workerinput is not None and workerinput.get("themis_run_id"):
        run_id = workerinput["themis_run_id"]
    state = _State(config, options, run_id or _new_run_id())
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "themis-state")
    _prestart_generation_workers(config, options)


def _prestart_generation_workers(config: pytest.Config, options: ThemisOptions) -> None:
    """Start litellm worker processes now, so their imports overlap with collection.

    Only for a run that names litellm models on the command line or in the ini file, in a
    process that will generate itself (not under xdist, which spreads the work already) and
    that may send requests (not ``--themis-cache=replay``).
    """
    if hasattr(config, "workerinput") or config.getoption("numprocesses", None):
        return
    models = options.cli_models or options.ini_models
    litellm_models = [m for m in models if not m.startswith(("fake:", "python:"))]
    if not litellm_models or options.cache_mode == "replay":
        return
    from .generation.processes import default_processes, prestart

    if default_processes() > 1:
        prestart(default_processes())


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker writes results under the controller's run id."""
    node.workerinput["themis_run_id"] = _state(node.config).run_id


# -- hooks: collection ----------------------------------------------------------------------------


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest --themis-preset=NAME`` with no paths runs the benchmark alone, not testpaths."""
    state = config.stash.get(_STATE, None)
    if state is None or not state.options.presets:
        return None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return None
    return True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if metafunc.definition.get_closest_marker("themis") is None and not any(
        name in names for name in _RESULT_FIXTURES
    ):
        return
    state = _state(metafunc.config)
    from ._pytest.parametrize import parametrize

    try:
        parametrize(metafunc, state.session)
    except pytest.UsageError as exc:
        state.usage_errors.append(str(exc))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = _state(config)
    if state.usage_errors:
        raise pytest.UsageError("\n".join(state.usage_errors))
    if not state.options.presets:
        return
    from ._pytest.preset_items import preset_items

    items.extend(preset_items(session, state.session))


# -- hooks: running -------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Apply the error budget before a themis test body runs and the gates after it passed."""
    from_marker = _CASE in getattr(item, "fixturenames", ())
    if not from_marker:
        return (yield)
    outcome = item.stash.get(OUTCOME_KEY, None)
    case = item.callspec.params.get(_CASE) if hasattr(item, "callspec") else None
    if outcome is None or case is None:
        return (yield)
    from ._pytest import items as themis_items

    options = _state(item.config).options
    if not case.per_sample:
        themis_items.check_errors(outcome, options.max_errors)
    result = yield
    if not case.per_sample and options.fail_under:
        themis_items.check_gates(outcome, options.fail_under, options.gate)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Ship cell results computed during this phase to the controller inside the report."""
    report = yield
    pending = item.stash.get(PENDING_KEY, None)
    if pending:
        report.user_properties.extend((_RESULT_PROPERTY, text) for text in pending)
        pending.clear()
    return report


# -- hooks: session end ---------------------------------------------------------------------------


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None and config.pluginmanager.is_registered(state):
        config.pluginmanager.unregister(state)
    # Prestarted generation workers end with the session, not at interpreter exit.
    processes = sys.modules.get("pytest_themis.generation.processes")
    if processes is not None:
        processes.shutdown_pool()


# -- fixtures -------------------------------------------------------------------------------------


def _require_case(request: pytest.FixtureRequest, case: ThemisCase | None) -> ThemisCase:
    if case is None:
        pytest.fail(
            f"{request.fixturename} is only available to themis tests: mark the test with "
            "@pytest.mark.themis(...) and request themis_report, themis_cell or themis_sample",
            pytrace=False,
        )
    return case


def _spec(request: pytest.FixtureRequest, case: ThemisCase | None) -> Any:
    case = _require_case(request, case)
    return _state(request.config).session.specs[case.spec_key]


@pytest.fixture
def _themis_case(request: pytest.FixtureRequest) -> ThemisCase | None:
    """The item's cell (and row); parametrized by ``pytest_generate_tests``."""
    return getattr(request, "param", None)


@pytest.fixture
def themis_dataset(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> Any:
    """Rows to evaluate (list of dicts): the marker's ``dataset``. Override to supply your own."""
    spec = _spec(request, _themis_case)
    return _state(request.config).session.load_rows(spec.source)


@pytest.fixture
def themis_extractor(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> Any:
    """Answer extractor: the marker's ``extractor``, the preset's, or identity."""
    spec = _spec(request, _themis_case)
    return _state(request.config).session.default_extractor(spec)


@pytest.fixture
def themis_metrics(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> Any:
    """Metric objects: the marker's ``metrics`` (names or instances) or the preset's."""
    spec = _spec(request, _themis_case)
    return _state(request.config).session.default_metrics(spec)


@pytest.fixture
def themis_pipeline(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> Any:
    """The marker's ``pipeline``, else one built from ``themis_extractor`` + ``themis_metrics``."""
    spec = _spec(request, _themis_case)
    if spec.pipeline is not None:
        return spec.pipeline
    extractor = request.getfixturevalue("themis_extractor")
    metrics = request.getfixturevalue("themis_metrics")
    return _state(request.config).session.build_pipeline(extractor, metrics)


@pytest.fixture(scope="session")
def themis_execution_backend() -> Any:
    """ExecutionBackend for blocking provider calls (None: the runner's own event loop/threads)."""
    return None


@pytest.fixture(scope="session")
def themis_storage(request: pytest.FixtureRequest) -> Any:
    """Generation cache: ExperimentStorage in the cache dir (None with ``--themis-cache=off``)."""
    return _state(request.config).session.default_storage()


@pytest.fixture
def themis_cell(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> Any:
    """This item's CellSpec: ``.model``, ``.template_name``, ``.sampling``, ``.cell_id``."""
    return _require_case(request, _themis_case).cell


@pytest.fixture
def themis_report(
    request: pytest.FixtureRequest,
    _themis_case: ThemisCase | None,
    themis_dataset: Any,
    themis_pipeline: Any,
    themis_execution_backend: Any,
    themis_storage: Any,
) -> Any:
    """The cell's EvaluationReport (generated once per session, shared by every reader)."""
    from ._pytest.items import attach_outcome

    case = _require_case(request, _themis_case)
    session = _state(request.config).session
    spec = session.specs[case.spec_key]
    outcome, fresh = session.run_cell(
        spec,
        case.cell,
        themis_dataset,
        themis_pipeline,
        backend=themis_execution_backend,
        storage=themis_storage,
        label=f"{request.node.name}",
    )
    attach_outcome(request.node, outcome, fresh)
    return outcome.report


@pytest.fixture
def themis_sample(
    request: pytest.FixtureRequest, _themis_case: ThemisCase | None, themis_report: Any
) -> Any:
    """Per-sample mode: this item's scored EvaluationRecord (``.scores``, ``.prediction`` ...)."""
    from ._pytest.items import check_sample

    case = _require_case(request, _themis_case)
    if not case.per_sample:
        pytest.fail(
            "themis_sample needs @pytest.mark.themis(..., per_sample=True); use themis_report "
            "for the cell's aggregate metrics",
            pytrace=False,
        )
    outcome = request.node.stash[OUTCOME_KEY]
    return check_sample(outcome, case, _state(request.config).options.max_errors)
