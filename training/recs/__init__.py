"""Recommendation models: collaborative filtering, cross-sell, up-sell, cold start."""
