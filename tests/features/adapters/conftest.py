"""Real datasets imported once per session (each test that uses them skips without the data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.adapters import ImportReport, import_dataset


@pytest.fixture(scope="session")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """``imported(name) -> (report, out folder)``, converting each dataset at most once."""
    cache: dict[str, tuple[ImportReport, Path]] = {}

    def run(name: str) -> tuple[ImportReport, Path]:
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = (import_dataset(name, shared_data / name, out), out)
        return cache[name]

    return run
