"""Option and marker validation: bad input is a usage error (exit code 4) naming the culprit."""

from __future__ import annotations

import pytest
from plugin_support import base_args

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--themis-limit", "abc"),
        ("--themis-limit", "0"),
        ("--themis-epochs", "-1"),
        ("--themis-max-parallel", "many"),
        ("--themis-max-retries", "-2"),
        ("--themis-timeout", "0"),
        ("--themis-cache", "sometimes"),
        ("--themis-fail-under", "ExactMatch=high"),
        ("--themis-gate", "upper"),
        ("--themis-max-errors", "x"),
        ("--themis-api-base", "localhost:8000"),
        ("--themis-max-cost-usd", "-1"),
        ("--themis-run-id", "a/b"),
        ("--themis-backend", "spark://x"),
        ("--themis-backend", "dask://"),
    ],
)
def test_bad_option_value_is_usage_error(pytester: pytest.Pytester, flag: str, value: str) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(*base_args(pytester), f"{flag}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{flag} expects *{value!r}*"])


def test_good_options_are_accepted_by_a_plain_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(
        *base_args(pytester),
        "--themis-max-parallel=auto",
        "--themis-fail-under=ExactMatch=0.5",
        "--themis-fail-under=0.7",
        "--themis-cache=replay",
        "--themis-gate=lower",
        "--themis-timeout=2.5",
    )
    result.assert_outcomes(passed=1)


def test_bad_ini_value_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nthemis_max_parallel = lots\n")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(*base_args(pytester))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option themis_max_parallel expects*'lots'*"])


def test_help_lists_the_themis_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*LLM evaluations (pytest-themis)*", "*--themis-preset=NAME*"])
    assert "--themis-fail-under" in result.stdout.str()


def test_unknown_marker_keyword_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset=[{"q": "1+1", "a": "2"}], prompts="{q}",
                            models="fake:fake-oracle", metrcs=["exact_match"])
        def test_eval(themis_report):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_eval*unknown themis marker keyword(s) metrcs*"])


def test_marker_without_model_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset=[{"q": "1+1", "a": "2"}], prompts="{q}")
        def test_eval(themis_report):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no model to evaluate*--themis-model*"])


def test_missing_dataset_file_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset="nowhere.jsonl", prompts="{q}", models="fake:x")
        def test_eval(themis_report):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dataset='nowhere.jsonl' is neither a preset*"])


def test_unknown_preset_is_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*base_args(pytester), "--themis-preset=nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--themis-preset nosuch*"])


def test_every_flag_has_a_parser_a_help_line_and_its_ini_key(pytester: pytest.Pytester) -> None:
    from pytest_themis._pytest.flags import FLAGS, flag_name
    from pytest_themis._pytest.options import PARSERS

    assert {kind for _, _, kind, *_ in FLAGS} <= set(PARSERS)
    out = pytester.runpytest("--help").stdout.str()
    for dest, ini, *_ in FLAGS:
        assert flag_name(dest) in out, dest
        if ini is not None:
            assert f"{ini} (" in out, ini  # the ini section lists "name (type):"


def test_good_ini_values_are_parsed_like_flags(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nthemis_max_parallel = auto\nthemis_fail_under = ExactMatch=0.5 0.7\n"
        "themis_timeout = 2.5\nthemis_models = fake:a fake:b\n"
    )
    pytester.makeconftest(
        """
        def pytest_collection_finish(session):
            from pytest_themis.plugin import STATE_KEY

            options = session.config.stash[STATE_KEY].options
            print("PARSED", options.ini["max_parallel"], options.ini["timeout"],
                  options.ini_models, [g.describe() for g in options.fail_under])
        """
    )
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest(*base_args(pytester), "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["PARSED auto 2.5 ['fake:a', 'fake:b'] ['ExactMatch >= 0.5', '<primary metric> >= 0.7']"]
    )
