"""SQL storage: the records and all operational state."""
