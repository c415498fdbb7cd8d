"""Every sampling field that can differ gives a distinct cell id."""

from __future__ import annotations

import pytest

from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.templates import PromptTemplate

MODEL = ModelSpec("m", "fake")
TEMPLATE = PromptTemplate("p", "{q}")


def _cell_ids(samplings: list[SamplingConfig]) -> list[str]:
    plan = GenerationPlan([TEMPLATE], [MODEL], samplings)
    return [cell.cell_id for cell in plan.cells]


def test_sweeping_max_tokens_gives_distinct_cell_ids() -> None:
    ids = _cell_ids(
        [SamplingConfig(max_tokens=n) for n in (64, 256, 512, 1024)]
        + [SamplingConfig(max_tokens=None)]
    )
    assert len(set(ids)) == 5
    assert "m-p-t0" in ids  # the default max_tokens keeps the short id


@pytest.mark.parametrize(
    "variants",
    [
        [SamplingConfig(top_p=0.5), SamplingConfig(top_p=0.9)],
        [SamplingConfig(seed=1), SamplingConfig(seed=2), SamplingConfig()],
        [SamplingConfig(stop=("\n",)), SamplingConfig(stop=("###",)), SamplingConfig()],
        [SamplingConfig(temperature=0.0), SamplingConfig(temperature=0.7)],
    ],
    ids=["top_p", "seed", "stop", "temperature"],
)
def test_every_sampling_field_is_in_the_label(variants: list[SamplingConfig]) -> None:
    ids = _cell_ids(variants)
    assert len(set(ids)) == len(variants), ids


def test_a_duplicate_config_names_no_field_that_does_not_exist() -> None:
    with pytest.raises(ConfigurationError, match="listed twice") as info:
        _cell_ids([SamplingConfig(max_tokens=64), SamplingConfig(max_tokens=64)])
    assert "name" not in str(info.value).replace("short name", "")
