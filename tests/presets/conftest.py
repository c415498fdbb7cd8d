"""Keep ``datasets``' builder cache inside the test run and the data dir variable unset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _datasets_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import datasets  # a core dependency: a failed import must fail, not skip

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-cache"))
        yield


@pytest.fixture(autouse=True)
def _no_data_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THEMIS_DATA_DIR", raising=False)
