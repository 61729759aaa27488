"""Benchmark programs (one per figure) and their plots; see registry.py."""
