"""What an import did: rows read, rows written, and every row left out or merged, with why.

Each contract table an adapter writes comes from one `Flow`: the source rows it read, the rows
it wrote, and the difference explained reason by reason (``excluded``: left out; ``merged``:
folded into another written row; ``added``: written without a source row of their own). A
flow balances when ``read - excluded - merged + added == written``; tests hold every adapter
to that, so nothing is dropped without a count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Flow:
    """How the rows of one source became the rows of one contract table."""

    source: str
    table: str
    read: int
    written: int
    excluded: Mapping[str, int] = field(default_factory=dict)
    merged: Mapping[str, int] = field(default_factory=dict)
    added: Mapping[str, int] = field(default_factory=dict)

    @property
    def balance(self) -> int:
        """``read - excluded - merged + added - written``: zero when every row is accounted for."""
        return (
            self.read
            - sum(self.excluded.values())
            - sum(self.merged.values())
            + sum(self.added.values())
            - self.written
        )

    @property
    def balanced(self) -> bool:
        """True when the counts reconcile."""
        return self.balance == 0

    def format(self) -> str:
        """The flow as indented lines for the CLI."""
        lines = [f"  {self.source} -> {self.table}: read {self.read:,}, wrote {self.written:,}"]
        for label, counts in (
            ("excluded", self.excluded),
            ("merged", self.merged),
            ("added", self.added),
        ):
            lines += [f"    {label}: {n:,} {reason}" for reason, n in counts.items()]
        if not self.balanced:
            lines.append(f"    UNRECONCILED: {self.balance:+,} rows not accounted for")
        return "\n".join(lines)


@dataclass(frozen=True)
class ImportReport:
    """The outcome of `import_dataset`: flows per table plus notes on the mapping."""

    dataset: str
    src: Path
    out: Path
    flows: tuple[Flow, ...]
    notes: tuple[str, ...] = ()

    @property
    def rows_read(self) -> dict[str, int]:
        """Rows read per source (file, or derived source such as distinct customer ids)."""
        return {f.source: f.read for f in self.flows}

    @property
    def rows_written(self) -> dict[str, int]:
        """Rows written per contract table."""
        return {f.table: f.written for f in self.flows}

    @property
    def excluded(self) -> dict[str, int]:
        """Every exclusion over all flows, keyed ``"table: reason"``."""
        return {f"{f.table}: {reason}": n for f in self.flows for reason, n in f.excluded.items()}

    def flow(self, table: str) -> Flow:
        """The flow that wrote ``table`` (KeyError when none did)."""
        for f in self.flows:
            if f.table == table:
                return f
        raise KeyError(f"{self.dataset}: no table {table!r} was written")

    @property
    def balanced(self) -> bool:
        """True when every flow reconciles."""
        return all(f.balanced for f in self.flows)

    def format(self) -> str:
        """The human-readable report printed by `offers import`."""
        lines = [f"import {self.dataset}: {self.src} -> {self.out}"]
        lines += [f.format() for f in self.flows]
        if self.notes:
            lines.append("  notes:")
            lines += [f"  - {note}" for note in self.notes]
        return "\n".join(lines)
