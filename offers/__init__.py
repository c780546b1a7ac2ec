"""Command-line entry point `offers` and the composition root that wires the packages."""
