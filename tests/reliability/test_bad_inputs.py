"""Bad input, Python door and pytest door: a clear error naming the offender, no lost work."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability_support import TEMPLATE, rows

from pytest_themis import evaluate
from pytest_themis.errors import ThemisError
from pytest_themis.evaluation.extractors import RegexExtractor
from pytest_themis.evaluation.metrics.base import Metric
from pytest_themis.testing import OpenAIServer

pytestmark = pytest.mark.timeout(120)

ROWS = [{"id": "a1", "q": "1+1", "a": "2"}, {"id": "b2", "q": "2+2", "a": "4"}]


def _base(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        dataset=ROWS, model="fake:fake-oracle", prompt="{q}", reference_field="a",
        metrics=["exact_match"], storage=None,
    )  # fmt: skip
    kwargs.update(changes)
    return kwargs


def _files(tmp: Path) -> dict[str, Path]:
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    files = {
        "latin1": b'{"id": "a1", "q": "1+1", "a": "2"}\n{"id": "b2", "q": "caf\xe9", "a": "4"}\n',
        "truncated": b'{"id": "a1", "q": "1+1", "a": "2"}\n{"id": "b2", "q": "2+',
        "list_line": b'{"id": "a1", "q": "1+1", "a": "2"}\n[1, 2]\n',
        "empty": b"",
    }
    for name, content in files.items():
        (data / f"{name}.jsonl").write_bytes(content)
    return {name: data / f"{name}.jsonl" for name in files} | {"dir": data}


@dataclass(frozen=True)
class Case:
    name: str
    kwargs: Callable[[dict[str, Path]], dict[str, Any]]
    fragments: tuple[str, ...]


def _case(name: str, fragments: tuple[str, ...], **changes: Any) -> Case:
    return Case(name, lambda files: _base(**changes), fragments)


def _file_case(name: str, file: str, fragments: tuple[str, ...]) -> Case:
    return Case(name, lambda files: _base(dataset=str(files[file])), fragments)


API_CASES = [
    _case("missing template field", ("needs field 'answer_text'", "row 'a1'"),
          prompt="{q} {answer_text}"),
    _case("reference absent in some rows", ("row 'b2'", "no reference field 'a'"),
          dataset=[ROWS[0], {"id": "b2", "q": "2+2"}]),
    _case("duplicate ids", ("duplicate id 'a1'", "field 'id'"), dataset=[ROWS[0], ROWS[0]]),
    _case("empty dataset", ("dataset is empty",), dataset=[]),
    _file_case("non-UTF-8 JSONL", "latin1", ("not valid UTF-8", "line 2", "latin1.jsonl")),
    _file_case("truncated JSONL", "truncated", ("line 2 is not valid JSON", "truncated")),
    _file_case("JSONL line that is not an object", "list_line", ("line 2", "not an object")),
    _file_case("empty JSONL file", "empty", ("empty.jsonl", "empty")),
    Case("unknown preset", lambda f: {"benchmark_or_dataset": "no_such_bench",
                                      "model": "fake:m", "storage": None},
         ("unknown benchmark 'no_such_bench'", "gsm8k")),
    _case("unknown metric", ("unknown metric 'no_such_metric'", "exact_match"),
          metrics=["no_such_metric"]),
    _case("unknown extractor", ("unknown extractor 'no_such_extractor'", "regex"),
          extractor="no_such_extractor"),
    _case("unknown provider", ("'nosuchprovider:x'", "provider prefix"),
          model="nosuchprovider:x"),
    _case("model string without provider", ("'gpt-themis-unknown'", "openai/gpt-themis-unknown"),
          model="gpt-themis-unknown"),
    _case("negative limit", ("limit", "-1"), limit=-1),
    _case("template with an unclosed brace", ("template 'prompt' is malformed", "{{"),
          prompt="{q"),
    _case("template with a stray closing brace", ("template 'prompt' is malformed", "}}"),
          prompt="q}"),
    _case("row that is not a mapping", ("dataset row 1", "str", "mapping"),
          dataset=[ROWS[0], "2+2=4"]),
    _case("unknown provider option", ("unknown option(s) temprature", "'litellm'", "api_base"),
          model="openai/x", api_base="http://127.0.0.1:9/v1", temprature=0.5),
    Case("extractor regex that does not compile",
         lambda files: _base(extractor=RegexExtractor("(unclosed")),
         ("'(unclosed'", "does not compile")),
    Case("data dir without the preset's file",
         lambda f: {"benchmark_or_dataset": "gsm8k", "model": "fake:m", "storage": None,
                    "data_dir": str(f["dir"])},
         ("gsm8k.jsonl", "data directory")),
    _case("metrics need a reference, none given", ("ExactMatch", "reference_field"),
          reference_field=None),
    _case("temperature that is not a number", ("temperature", "'hot'"), temperature="hot"),
    _case("num_samples zero", ("num_samples", "0"), num_samples=0),
    _case("max_parallel zero", ("max_parallel", "0"), max_parallel=0),
    _case("negative max_retries", ("max_retries", "-2"), max_retries=-2),
    Case("unknown cache mode",
         lambda f: _base(cache="sometimes", storage=str(f["dir"] / "cache")),
         ("unknown cache mode 'sometimes'", "replay")),
    _case("empty model string", ("model must be a non-empty string",), model=""),
    _case("python model that cannot be imported", ("no_such_module_xyz",),
          model="python:no_such_module_xyz:answer"),
    _case("no prompt for custom rows", ("no prompt",), prompt=None),
    _case("no model", ("no model given",), model=None),
]  # fmt: skip


def test_the_table_is_big_enough() -> None:
    assert len(API_CASES) + len(DOOR_CASES) >= 25
    assert len({c.name for c in API_CASES}) == len(API_CASES)


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.name.replace(" ", "-"))
def test_python_api_rejects_bad_input(case: Case, tmp_path: Path) -> None:
    files = _files(tmp_path)
    with pytest.raises(ThemisError) as caught:
        evaluate(**case.kwargs(files))
    message = str(caught.value)
    for fragment in case.fragments:
        assert fragment in message, f"{case.name}: {fragment!r} not in {message!r}"


# -- errors after generation: the finished work is kept -------------------------------------------


class ExplodingMetric(Metric):
    """A user metric with a bug."""

    name = "Exploding"

    def compute(self, prediction: str, reference: Any) -> float:
        raise ZeroDivisionError("the metric's own bug")


def test_raising_metric_names_itself_and_keeps_the_generations(tmp_path: Path) -> None:
    kwargs = dict(
        dataset=rows(6), model="openai/fake-chat", prompt=TEMPLATE, reference_field="gold",
        metrics=[ExplodingMetric()], storage=tmp_path / "cache",
    )  # fmt: skip
    with OpenAIServer() as server:
        with pytest.raises(ThemisError) as caught:
            evaluate(api_base=server.url, **kwargs)
        assert server.stats.request_count == 6
        message = str(caught.value)
        assert "Exploding" in message and "ZeroDivisionError" in message and "row" in message
        server.reset_stats()
        kwargs["metrics"] = ["exact_match"]
        report = evaluate(api_base=server.url, **kwargs)
        assert server.stats.request_count == 0  # every generation was cached before scoring
    assert all(r.generation.cached for r in report.records)


def test_unreachable_api_base_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    port = _closed_port()
    started = time.perf_counter()
    report = evaluate(
        dataset=rows(3), model="openai/fake-chat", api_base=f"http://127.0.0.1:{port}/v1",
        prompt=TEMPLATE, reference_field="gold", metrics=["exact_match"], max_retries=1,
        timeout=5, storage=tmp_path / "cache",
    )  # fmt: skip
    assert time.perf_counter() - started < 30
    assert report.evaluation_report.errors == 3
    for record in report.records:
        error = record.generation.error
        assert error is not None and error.type == "ProviderConnectionError"
        assert f"127.0.0.1:{port}" in error.message and "server is running" in error.message


# -- the pytest door ------------------------------------------------------------------------------

GOOD_TEST = """
import pytest

ROWS = [{"id": "a1", "q": "1+1", "a": "2"}, {"id": "b2", "q": "2+2", "a": "4"}]


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models="fake:fake-oracle", reference_field="a",
                    metrics=["exact_match"]KWARGS)
def test_eval(themis_report):
    assert themis_report.total == 2
"""


@dataclass(frozen=True)
class DoorCase:
    name: str
    args: tuple[str, ...]
    fragments: tuple[str, ...]
    usage_error: bool  # True: pytest usage error (exit 4); False: the item fails or errors
    marker_kwargs: str = ""


def _closed_port() -> int:
    """A local port with nothing listening (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_PORT = _closed_port()
EXPLODING = """
from pytest_themis.evaluation.metrics.base import Metric


class ExplodingMetric(Metric):
    name = "Exploding"

    def compute(self, prediction, reference):
        raise ZeroDivisionError("the metric's own bug")
"""

DOOR_CASES = [
    DoorCase("unknown marker keyword", (), ("unknown themis marker keyword(s) modles",), True,
             ", modles=['x']"),
    DoorCase("malformed --themis-fail-under", ("--themis-fail-under=ExactMatch>0.8",),
             ("--themis-fail-under", "[METRIC=]VALUE"), True),
    DoorCase("negative --themis-limit", ("--themis-limit=-3",),
             ("--themis-limit", "integer >= 1", "-3"), True),
    DoorCase("bad --themis-max-parallel", ("--themis-max-parallel=none",),
             ("--themis-max-parallel", "'auto'"), True),
    DoorCase("unknown --themis-cache mode", ("--themis-cache=sometimes",),
             ("--themis-cache", "replay"), True),
    DoorCase("unknown preset", ("--themis-preset=no_such_bench",),
             ("no_such_bench", "gsm8k"), True),
    DoorCase("model without provider", ("--themis-model=gpt-themis-unknown",),
             ("gpt-themis-unknown", "provider prefix"), True),
    # Configuration mistakes found before any request: exit 4 (checked at collection).
    DoorCase("unknown metric in the marker", (), ("unknown metric 'no_such_metric'",), True),
    DoorCase("--themis-cache=replay miss", ("--themis-cache=replay",),
             ("replay", "no cached generation", "--themis-cache=use"), False),
    DoorCase("data dir without the preset's file",
             ("--themis-preset=gsm8k", "--themis-data-dir=.", "--themis-model=fake:fake-oracle"),
             ("gsm8k.jsonl", "data directory"), True),
    DoorCase("dataset file that does not exist", (), ("nowhere.jsonl", "neither a preset"), True),
    DoorCase("unreachable api base",
             (f"--themis-api-base=http://127.0.0.1:{_PORT}/v1", "--themis-max-retries=0"),
             ("could not connect", f"127.0.0.1:{_PORT}", "server is running"), False),
    DoorCase("metric that raises", (), ("Exploding", "ZeroDivisionError", "row"), False),
]  # fmt: skip


def _door_source(case: DoorCase) -> str:
    source = GOOD_TEST.replace("KWARGS", case.marker_kwargs)
    if case.name == "unknown metric in the marker":
        source = source.replace('metrics=["exact_match"]', 'metrics=["no_such_metric"]')
    if case.name == "dataset file that does not exist":
        source = source.replace("dataset=ROWS", 'dataset="nowhere.jsonl"')
    if case.name == "unreachable api base":
        # The model is named on the marker, not with --themis-model: a command-line litellm
        # model prestarts worker processes (seconds of litellm imports) this case does not need.
        source = source.replace('models="fake:fake-oracle"', 'models="openai/fake-chat"')
    if case.name == "metric that raises":
        source = EXPLODING + source.replace(
            'metrics=["exact_match"]', "metrics=[ExplodingMetric()]"
        )
    return source


@pytest.mark.parametrize("case", DOOR_CASES, ids=lambda c: c.name.replace(" ", "-"))
def test_pytest_door_rejects_bad_input(case: DoorCase, door: pytest.Pytester) -> None:
    door.makepyfile(test_case=_door_source(case))
    result = door.runpytest("-p", "no:cacheprovider", "--themis-cache-dir=cache", *case.args)
    output = "\n".join(result.outlines + result.errlines)
    if case.usage_error:
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED, output
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, output
    for fragment in case.fragments:
        assert fragment in output, f"{case.name}: {fragment!r} missing:\n{output}"
    assert "Traceback (most recent call last)" not in output
    assert "pytest_themis/" not in output  # no engine frames: the message is the report
