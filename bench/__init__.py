"""Benchmarks of the project (run as scripts: python bench/<name>.py); helpers shared by them."""
