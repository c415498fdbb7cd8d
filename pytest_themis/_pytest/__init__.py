"""Private support modules of the pytest plugin (``pytest_themis.plugin``). Not a public API.

Only :mod:`.flags` (the option table) is imported by a plain test run; every other module here is
imported the first time a run actually uses themis (a ``--themis-*`` flag or ini key, a
``--themis-preset``, a ``themis`` marker or result fixture).
"""

#: The parametrized fixture that carries an item's cell (and row) to the themis fixtures.
CASE_FIXTURE = "_themis_case"
#: Fixtures whose request makes a test a themis test even without the marker.
RESULT_FIXTURES = frozenset({"themis_cell", "themis_report", "themis_sample"})
#: The xdist ``workeroutput`` key of a usage error a worker found before any request.
WORKER_USAGE_ERROR = "themis_usage_error"


def is_xdist_worker(config: object) -> bool:
    """Whether ``config`` is a pytest-xdist worker's (the controller and serial runs: False)."""
    return hasattr(config, "workerinput")
