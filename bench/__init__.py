"""Benchmarks of a node (GET, search, memory) against named baselines; see docs/performance.md."""
