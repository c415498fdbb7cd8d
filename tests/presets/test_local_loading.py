"""``load_local_file``: jsonl/json/parquet/csv through ``datasets``, with errors naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_themis.errors import ConfigurationError, DatasetError
from pytest_themis.presets.loading import load_local_file

ROWS = [
    {"id": "a", "q": "1+1", "gold": 2},
    {"id": "b", "q": "2+3", "gold": 5},
    {"id": "c", "q": "4*4", "gold": 16},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_is_read_without_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls: list[tuple] = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)))
    assert load_local_file(write_jsonl(tmp_path / "d.jsonl", ROWS)) == ROWS
    assert calls == []


def test_rows_get_every_field_of_the_file(tmp_path: Path) -> None:
    rows = [{"id": "a", "q": "1"}, {"id": "b", "gold": "2"}]
    assert load_local_file(write_jsonl(tmp_path / "d.jsonl", rows)) == [
        {"id": "a", "q": "1", "gold": None},
        {"id": "b", "q": None, "gold": "2"},
    ]


def test_json_array_parquet_and_csv(tmp_path: Path) -> None:
    import datasets

    (tmp_path / "d.json").write_text(json.dumps(ROWS), encoding="utf-8")
    assert load_local_file(tmp_path / "d.json") == ROWS
    datasets.Dataset.from_list(ROWS).to_parquet(str(tmp_path / "d.parquet"))
    assert load_local_file(tmp_path / "d.parquet") == ROWS
    (tmp_path / "d.csv").write_text("id,q,gold\na,1+1,2\nb,2+3,5\n", encoding="utf-8")
    assert load_local_file(tmp_path / "d.csv") == ROWS[:2]


def test_limit_keeps_the_first_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    assert load_local_file(path, limit=2) == ROWS[:2]
    assert load_local_file(path, limit=0) == []
    assert load_local_file(path, limit=10) == ROWS
    with pytest.raises(ConfigurationError, match="limit"):
        load_local_file(path, limit=-1)


def test_truncated_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"id": "b", "q": "2+', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"cut\.jsonl.*line 2"):
        load_local_file(path)


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode() + b'\n{"id": "b", "q": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"latin\.jsonl.*UTF-8.*line 2"):
        load_local_file(path)


def test_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"list\.jsonl.*line 2.*object"):
        load_local_file(path)


def test_corrupt_parquet_is_a_dataset_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not a parquet file")
    with pytest.raises(DatasetError, match=r"broken\.parquet"):
        load_local_file(path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.jsonl", "", "empty"),
        ("blank.jsonl", "\n\n", "empty"),
        ("data.txt", "x", "unsupported suffix.*jsonl"),
        ("obj.json", '{\n "a": 1\n}', "one JSON object"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, content: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=match):
        load_local_file(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.jsonl.*does not exist"):
        load_local_file(tmp_path / "nope.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(DatasetError, match="directory"):
        load_local_file(tmp_path / "dir.jsonl")


def test_presets_import_does_not_import_datasets() -> None:
    code = (
        "import sys, pytest_themis.presets as p; p.get_benchmark_preset('gsm8k'); "
        "print('datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
