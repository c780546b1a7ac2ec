"""Bonus offers: candidates, response models and the budgeted optimizer."""
