"""Offline evaluation: temporal splits, ranking metrics, baselines, reports."""
