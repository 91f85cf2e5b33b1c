"""Benchmarks: scripts run by hand (python bench/<name>.py), figures in docs/performance.md."""
