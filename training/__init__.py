"""Model fitting, evaluation and optimisation; builds on `features`."""
