"""Data contract, validation, adapters and customer features (polars only)."""
