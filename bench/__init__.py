"""Benchmarks of Recovery Desk (`make bench`): figures as ratios against same-run baselines."""
