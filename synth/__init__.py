"""Synthetic retail world with a known ground truth (customers, items, purchases, offers)."""
