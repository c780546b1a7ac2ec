"""Offline evaluation of bonus policies: what judges, apart from what decides (training)."""
