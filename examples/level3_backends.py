"""Level 3 — same ``evaluate()`` call, real infrastructure underneath.

``execution_backend`` decides where generations run; ``storage`` where they are kept. This
example runs offline: a Dask cluster of two worker processes started on this machine
(``pip install "pytest-themis[dask]"``) and a PostgreSQL store when ``THEMIS_EXAMPLE_PG_URL``
names one (``pip install "pytest-themis[postgres]"``), else a folder. On a real cluster the
same call takes an address instead::

    evaluate(
        "gsm8k",
        model="openai/gpt-4o-mini",
        execution_backend=RayExecutionBackend(num_cpus=128),  # or "ray://head:10001"
        storage="s3://my-eval-bucket/experiments",  # or "postgresql://user@host/db"
    )

The rerun finds every generation in the store, whichever engine produced it.
"""

from __future__ import annotations

import os
import tempfile

from pytest_themis import evaluate
from pytest_themis.backends import DaskExecutionBackend


def main() -> None:
    pg_url = os.environ.get("THEMIS_EXAMPLE_PG_URL")
    if pg_url:
        from pytest_themis.storage.postgres import PostgresStorage

        storage: object = PostgresStorage(pg_url)
    else:
        storage = tempfile.mkdtemp(prefix="themis-level3-")
    backend = DaskExecutionBackend(n_workers=2)  # starts a LocalCluster; or "dask://host:8786"
    try:
        for attempt in ("first run", "rerun"):
            report = evaluate(
                "demo",
                model="fake:fake-math-llm",
                execution_backend=backend,
                storage=storage,  # type: ignore[arg-type]
            )
            cached = sum(r.generation.cached for r in report.records)
            engine = report.manifest["settings"]["runner"]["execution_backend"]["engine"]
            store = report.manifest["settings"]["cache"]["name"]
            print(
                f"{attempt}: accuracy {report.metric('NumericMatch').mean:.3f}, "
                f"generated {len(report.records) - cached}, cached {cached} "
                f"(engine {engine}, store {store})"
            )
    finally:
        backend.shutdown()
        close = getattr(storage, "close", None)
        if close is not None:
            close()


if __name__ == "__main__":  # Dask starts worker processes that re-import this file
    main()
