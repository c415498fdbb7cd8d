"""Private helpers of the pytest plugin (``pytest_themis.plugin``). Not a public API.

Only :mod:`.options` is imported by a plain test run; every other module here is imported the
first time a run actually uses themis (a ``--themis-preset``, a ``themis`` marker or fixture).
"""
