"""Code shared by test modules (import as ``support.<module>``)."""
