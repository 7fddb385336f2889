"""Kiln's benchmarks (``make bench`` / ``python bench/run.py``): figures, not tests."""
