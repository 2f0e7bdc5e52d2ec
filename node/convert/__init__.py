"""Conversions between records and their published forms: pure functions, no I/O."""
