"""The pytest door of pytest-themis: options, the ``themis`` marker, fixtures and reporting.

Registered through the ``pytest11`` entry point, so every pytest run imports this module: it holds
only thin hooks and the fixtures (which pytest must see to list and override them). Plain runs
import nothing more than the option table (``_pytest/flags.py``) and the specs of themis' own
pytest hooks (``_pytest/newhooks.py``). Everything else, from option
parsing to the engine, is imported the first time a run uses themis: a ``--themis-*`` flag or ini
key, a test marked ``@pytest.mark.themis`` or one requesting a ``themis_*`` result fixture. A test
suite that does not use themis gets no engine import, no folder and no output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ._pytest import RESULT_FIXTURES, WORKER_USAGE_ERROR

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from ._pytest.items import ThemisCase
    from ._pytest.spec import EvalSpec
    from ._pytest.state import ThemisState
    from .backends.execution import ExecutionBackend
    from .backends.storage import StorageBackend
    from .core.entities import CellSpec, EvaluationRecord
    from .core.protocols import EvaluationPipelineProtocol
    from .core.reports import EvaluationReport
    from .evaluation.extractors import Extractor
    from .evaluation.metrics.base import Metric

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

_MARKER_HELP = (
    "themis(dataset=..., prompts=..., models=..., sampling=..., pipeline=..., metrics=..., "
    "extractor=..., reference_field=..., id_field=..., limit=..., epochs=..., per_sample=False): "
    "evaluate an LLM; the test is parametrized per model x prompt x sampling cell"
)

STATE_KEY = pytest.StashKey["ThemisState"]()


def _state(config: pytest.Config) -> ThemisState:
    """This run's :class:`ThemisState`, started on first use."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        from ._pytest.state import start_state

        state = config.stash[STATE_KEY] = start_state(config)
    return state


# -- hooks: setup ---------------------------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add themis' own hooks (``pytest_themis_cell_finished`` …) for conftest files."""
    from ._pytest import newhooks

    pluginmanager.add_hookspecs(newhooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    from ._pytest.flags import add_options

    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; start themis now only if a flag or ini key asks for it."""
    config.addinivalue_line("markers", _MARKER_HELP)
    from ._pytest.flags import options_given

    if options_given(config):
        _state(config)  # checks ini values, prestarts generation workers for litellm models


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker writes results under the controller's run id."""
    node.workerinput["themis_run_id"] = _state(node.config).run_id


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: a worker's usage error (found at collection, before any request) ends
    the run with exit 4 and the same message as a run without xdist."""
    messages = getattr(node, "workeroutput", {}).get(WORKER_USAGE_ERROR)
    if messages:
        raise pytest.UsageError(*messages)


# -- hooks: collection ----------------------------------------------------------------------------


def _marked(node: Any) -> bool:
    """Whether ``node`` or a parent carries the ``themis`` marker.

    What ``node.get_closest_marker("themis") is not None`` answers, without its generator
    chain: this runs for every test function of every run, themis or not.
    """
    while node is not None:
        for mark in node.own_markers:
            if mark.name == "themis":
                return True
        node = node.parent
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if RESULT_FIXTURES.isdisjoint(metafunc.fixturenames) and not _marked(metafunc.definition):
        return
    state = _state(metafunc.config)
    from ._pytest.parametrize import parametrize

    try:
        parametrize(metafunc, state.session)
    except pytest.UsageError as exc:
        state.usage_errors.append(str(exc))


# -- hooks: session end ---------------------------------------------------------------------------


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        state.close()  # also ends its prestarted generation workers (not at interpreter exit)


# -- fixtures -------------------------------------------------------------------------------------


def _require_case(request: pytest.FixtureRequest, case: ThemisCase | None) -> ThemisCase:
    if case is None:
        pytest.fail(
            f"{request.fixturename} is only available to themis tests: mark the test with "
            "@pytest.mark.themis(...) and request themis_report, themis_cell or themis_sample",
            pytrace=False,
        )
    return case


def _spec(request: pytest.FixtureRequest, case: ThemisCase | None) -> EvalSpec:
    case = _require_case(request, case)
    return _state(request.config).session.specs[case.spec_key]


@pytest.fixture
def _themis_case(request: pytest.FixtureRequest) -> ThemisCase | None:
    """The item's cell (and row); parametrized by ``pytest_generate_tests``."""
    return getattr(request, "param", None)


@pytest.fixture
def themis_dataset(
    request: pytest.FixtureRequest, _themis_case: ThemisCase | None
) -> Sequence[dict[str, Any]]:
    """Rows to evaluate (list of dicts): the marker's ``dataset``. Override to supply your own."""
    spec = _spec(request, _themis_case)
    return _state(request.config).session.load_rows(spec.source)


@pytest.fixture
def themis_extractor(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> Extractor:
    """Answer extractor: the marker's ``extractor``, the preset's, or identity."""
    spec = _spec(request, _themis_case)
    return _state(request.config).session.default_extractor(spec)


@pytest.fixture
def themis_metrics(
    request: pytest.FixtureRequest, _themis_case: ThemisCase | None
) -> Sequence[Metric]:
    """Metric objects: the marker's ``metrics`` (names or instances) or the preset's."""
    spec = _spec(request, _themis_case)
    return _state(request.config).session.default_metrics(spec)


@pytest.fixture
def themis_pipeline(
    request: pytest.FixtureRequest, _themis_case: ThemisCase | None
) -> EvaluationPipelineProtocol:
    """The marker's ``pipeline``, else one built from ``themis_extractor`` + ``themis_metrics``."""
    spec = _spec(request, _themis_case)
    if spec.pipeline is not None:
        return spec.pipeline
    extractor = request.getfixturevalue("themis_extractor")
    metrics = request.getfixturevalue("themis_metrics")
    return _state(request.config).session.build_pipeline(extractor, metrics)


@pytest.fixture(scope="session")
def themis_execution_backend(request: pytest.FixtureRequest) -> ExecutionBackend | None:
    """The ``--themis-backend`` engine (None: the runner's own event loop and processes)."""
    return _state(request.config).session.default_backend()


@pytest.fixture(scope="session")
def themis_storage(request: pytest.FixtureRequest) -> StorageBackend | None:
    """Generation cache: the ``--themis-storage`` store, else ExperimentStorage in the cache dir
    (None with ``--themis-cache=off``)."""
    return _state(request.config).session.default_storage()


@pytest.fixture
def themis_cell(request: pytest.FixtureRequest, _themis_case: ThemisCase | None) -> CellSpec:
    """This item's CellSpec: ``.model``, ``.template_name``, ``.sampling``, ``.cell_id``."""
    return _require_case(request, _themis_case).cell


@pytest.fixture
def themis_report(
    request: pytest.FixtureRequest,
    _themis_case: ThemisCase | None,
    themis_dataset: Sequence[dict[str, Any]],
    themis_pipeline: EvaluationPipelineProtocol,
    themis_execution_backend: ExecutionBackend | None,
    themis_storage: StorageBackend | None,
) -> EvaluationReport:
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
    request: pytest.FixtureRequest,
    _themis_case: ThemisCase | None,
    themis_report: EvaluationReport,
) -> EvaluationRecord:
    """Per-sample mode: this item's scored EvaluationRecord (``.scores``, ``.prediction`` ...)."""
    from ._pytest.items import OUTCOME_KEY, check_sample

    case = _require_case(request, _themis_case)
    if not case.per_sample:
        pytest.fail(
            "themis_sample needs @pytest.mark.themis(..., per_sample=True); use themis_report "
            "for the cell's aggregate metrics",
            pytrace=False,
        )
    outcome = request.node.stash[OUTCOME_KEY]
    return check_sample(outcome, case, _state(request.config).options.max_errors)
