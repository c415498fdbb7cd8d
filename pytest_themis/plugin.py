"""pytest entry point (filled in by the pytest-door work)."""
