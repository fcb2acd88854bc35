"""SQLite: the DfE adapter's snapshot state."""
