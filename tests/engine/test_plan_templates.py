"""PromptTemplate rendering and GenerationPlan validation: errors name the offender."""

from __future__ import annotations

import pytest

from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError, DatasetError, TemplateError
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.templates import PromptTemplate


def _plan(**kw):
    kw.setdefault("templates", [PromptTemplate("t", "Q: {q}")])
    kw.setdefault("models", [ModelSpec("m", "fake")])
    return GenerationPlan(**kw)


def test_render_chat_with_system_and_fewshot():
    tpl = PromptTemplate(
        "fs",
        "Now: {q}",
        system="You are {persona}.",
        messages=[{"role": "user", "content": "1+1"}, {"role": "assistant", "content": "2"}],
    )
    msgs = tpl.render_messages({"q": "2+2", "persona": "a calculator"}, "row-1")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0]["content"] == "You are a calculator." and msgs[-1]["content"] == "Now: 2+2"
    assert tpl.fields == ("persona", "q")
    assert tpl.render({"q": "x", "persona": "p"}) == "Now: x"


def test_literal_braces_and_fingerprint():
    tpl = PromptTemplate("json", 'Reply as {{"answer": ...}} for {q}')
    assert tpl.render({"q": "3"}) == 'Reply as {"answer": ...} for 3'
    assert tpl.fingerprint != PromptTemplate("json", "other {q}").fingerprint


@pytest.mark.parametrize(
    "template, needle",
    [
        ("Q: {q", "malformed"),
        ("Q: }", "malformed"),
        ("Q: {}", "positional"),
        ("Q: {0}", "positional"),
    ],
)
def test_malformed_templates_are_rejected_at_construction(template, needle):
    with pytest.raises(TemplateError, match=needle) as info:
        PromptTemplate("broken", template)
    assert "'broken'" in str(info.value)


def test_missing_field_names_template_field_and_row():
    plan = _plan(templates=[PromptTemplate("cot", "Think. {question}")])
    with pytest.raises(TemplateError) as info:
        plan.prepare([{"id": "a1", "q": "2+2"}])
    message = str(info.value)
    assert "'cot'" in message and "'question'" in message and "'a1'" in message


def test_missing_reference_names_row_and_field():
    plan = _plan(reference_field="gold")
    with pytest.raises(DatasetError, match=r"row 'b'.*'gold'"):
        plan.prepare([{"id": "a", "q": 1, "gold": 1}, {"id": "b", "q": 2}])


def test_duplicate_ids_are_rejected():
    with pytest.raises(DatasetError, match=r"duplicate id 'x'.*rows 0 and 2"):
        _plan().prepare([{"id": "x", "q": 1}, {"id": "y", "q": 2}, {"id": "x", "q": 3}])


def test_empty_dataset_and_non_mapping_rows():
    with pytest.raises(DatasetError, match="empty"):
        _plan().prepare([])
    with pytest.raises(DatasetError, match="row 1 is a str"):
        _plan().prepare([{"q": 1}, "not a row"])


def test_ids_fall_back_to_positions_only_when_no_row_has_one():
    prepared = _plan().prepare([{"q": 1}, {"q": 2}])
    assert [p.row_id for p in prepared] == ["0", "1"]
    with pytest.raises(DatasetError, match="row 1 has no id field 'id'"):
        _plan().prepare([{"id": 1, "q": 1}, {"q": 2}])


def test_cartesian_product_and_task_count():
    plan = _plan(
        templates=[PromptTemplate("a", "{q}"), PromptTemplate("b", "Think: {q}")],
        models=[ModelSpec("openai/gpt-4o-mini"), ModelSpec("m2", "fake")],
        sampling_parameters=[SamplingConfig(0.0), SamplingConfig(0.7)],
        num_samples=3,
    )
    assert len(plan.cells) == 8
    assert "gpt-4o-mini-b-t0.7" in {c.cell_id for c in plan.cells}
    rows = plan.prepare([{"id": i, "q": str(i)} for i in range(5)])
    tasks = list(plan.iter_tasks(rows))
    assert len(tasks) == plan.count_tasks(rows) == 5 * 8 * 3
    assert len({(t.cell.cell_id, t.row_id, t.sample_index) for t in tasks}) == len(tasks)


def test_plan_rejects_clashing_cell_ids_and_empty_parts():
    with pytest.raises(ConfigurationError, match="share the id"):
        _plan(models=[ModelSpec("a/x"), ModelSpec("b/x")])
    with pytest.raises(ConfigurationError, match="PromptTemplate"):
        _plan(templates=[])
    with pytest.raises(ConfigurationError, match="duplicate template"):
        _plan(templates=[PromptTemplate("t", "{q}"), PromptTemplate("t", "{q}!")])


def test_model_spec_never_shows_secrets():
    spec = ModelSpec(
        "gpt",
        "litellm",
        options={
            "api_key": "sk-secret",
            "api_base": "http://h/v1",
            "extra_headers": {"Authorization": "Bearer x"},
        },
    )
    assert "sk-secret" not in repr(spec) and "Bearer" not in repr(spec)
    assert spec.to_dict()["options"] == {
        "api_base": "http://h/v1",
        "api_key": "***",
        "extra_headers": "***",
    }
    assert spec.api_base == "http://h/v1"
