"""The generation plan: templates × models × sampling configs, applied to every dataset row."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.entities import CellSpec, GenerationTask, ModelSpec, SamplingConfig
from ..errors import ConfigurationError, DatasetError, TemplateError
from .templates import PromptTemplate

__all__ = ["GenerationPlan", "PreparedRow"]


@dataclass(frozen=True, slots=True)
class PreparedRow:
    """A validated dataset row with its id and reference resolved."""

    row_id: str
    row: Mapping[str, Any]
    reference: Any


def _is_mapping(row: object) -> bool:
    return type(row) is dict or isinstance(row, Mapping)  # plain dicts skip the ABC check


class GenerationPlan:
    """What to run: the cartesian product of ``templates``, ``models`` and ``sampling_parameters``.

    Each product point is a *cell*; each cell yields ``num_samples`` tasks per dataset row.
    ``dataset_id_field`` names the row id (row positions are used when no row has it) and
    ``reference_field`` the gold answer handed to metrics.
    """

    def __init__(
        self,
        templates: Sequence[PromptTemplate],
        models: Sequence[ModelSpec],
        sampling_parameters: Sequence[SamplingConfig] | None = None,
        dataset_id_field: str = "id",
        reference_field: str | None = None,
        num_samples: int = 1,
    ) -> None:
        if not templates:
            raise ConfigurationError("GenerationPlan needs at least one PromptTemplate")
        if not models:
            raise ConfigurationError("GenerationPlan needs at least one ModelSpec")
        if num_samples < 1:
            raise ConfigurationError(f"num_samples must be >= 1, got {num_samples}")
        names = [t.name for t in templates]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(f"duplicate template names in plan: {', '.join(dupes)}")
        self.templates = list(templates)
        self.models = list(models)
        self.sampling_parameters = list(sampling_parameters or [SamplingConfig()])
        self.dataset_id_field = dataset_id_field
        self.reference_field = reference_field
        self.num_samples = num_samples
        self._templates_by_name = {t.name: t for t in self.templates}
        cells = [
            CellSpec(model=m, template_name=t.name, sampling=s)
            for m, t, s in itertools.product(self.models, self.templates, self.sampling_parameters)
        ]
        ids = [c.cell_id for c in cells]
        clash = sorted({i for i in ids if ids.count(i) > 1})
        if clash:
            raise ConfigurationError(
                f"plan cells share the id(s) {', '.join(clash)}: a model, template or sampling "
                "config is listed twice (or two models share a short name); remove the duplicate"
            )
        self._cells = cells

    @property
    def cells(self) -> list[CellSpec]:
        return list(self._cells)

    def template(self, name: str) -> PromptTemplate:
        return self._templates_by_name[name]

    def prepare(self, dataset: Iterable[Any]) -> list[PreparedRow]:
        """Validate ``dataset`` once, before any request is sent; raise naming the offending row."""
        raw = list(dataset)
        if not raw:
            raise DatasetError("the dataset is empty; pass at least one row")
        id_field = self.dataset_id_field
        has_id = [_is_mapping(r) and id_field in r for r in raw]
        use_positions = not any(has_id)
        seen: dict[str, int] = {}
        prepared: list[PreparedRow] = []
        for index, row in enumerate(raw):
            if not _is_mapping(row):
                raise DatasetError(
                    f"dataset row {index} is a {type(row).__name__}, not a mapping; "
                    "each row must be a dict of fields"
                )
            if use_positions:
                row_id = str(index)
            elif not has_id[index]:
                raise DatasetError(
                    f"dataset row {index} has no id field {id_field!r} while other rows do; "
                    "give every row an id or set dataset_id_field/id_field"
                )
            else:
                row_id = str(row[id_field])
            if row_id in seen:
                raise DatasetError(
                    f"duplicate id {row_id!r} in field {id_field!r} (rows {seen[row_id]} and "
                    f"{index}); ids must be unique so results and cache entries do not collide"
                )
            seen[row_id] = index
            reference = None
            if self.reference_field is not None:
                if self.reference_field not in row:
                    raise DatasetError(
                        f"row {row_id!r} has no reference field {self.reference_field!r} "
                        f"(row fields: {', '.join(map(str, row))}); set reference_field to the "
                        "field holding the gold answer"
                    )
                reference = row[self.reference_field]
            for template in self.templates:
                missing = [f for f in template.fields if f not in row]
                if missing:
                    raise TemplateError(
                        f"template {template.name!r} needs field {missing[0]!r}, which row "
                        f"{row_id!r} lacks (row fields: {', '.join(map(str, row))})"
                    )
            prepared.append(PreparedRow(row_id, row, reference))
        return prepared

    def iter_tasks(
        self, rows: Sequence[PreparedRow], cells: Sequence[CellSpec] | None = None
    ) -> Iterator[GenerationTask]:
        """Yield one task per (cell, row, sample index), lazily; each prompt is rendered once."""
        chosen = list(cells) if cells is not None else self._cells
        by_template: dict[str, list[CellSpec]] = {}
        for cell in chosen:
            by_template.setdefault(cell.template_name, []).append(cell)
        for prepared in rows:
            for template_name, template_cells in by_template.items():
                template = self._templates_by_name[template_name]
                messages = template.render_messages(prepared.row, prepared.row_id)
                for cell in template_cells:
                    for sample_index in range(self.num_samples):
                        yield GenerationTask(
                            cell=cell,
                            row_id=prepared.row_id,
                            sample_index=sample_index,
                            messages=messages,
                            reference=prepared.reference,
                            row=prepared.row,
                        )

    def count_tasks(
        self, rows: Sequence[PreparedRow], cells: Sequence[CellSpec] | None = None
    ) -> int:
        n_cells = len(cells) if cells is not None else len(self._cells)
        return len(rows) * n_cells * self.num_samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "templates": [t.to_dict() for t in self.templates],
            "models": [m.to_dict() for m in self.models],
            "sampling": [s.to_dict() for s in self.sampling_parameters],
            "dataset_id_field": self.dataset_id_field,
            "reference_field": self.reference_field,
            "num_samples": self.num_samples,
        }
