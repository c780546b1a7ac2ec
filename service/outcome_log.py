"""The durable offer-event log: every offer the service issued and every reported outcome.

An append-only JSON Lines file. Each line is one batch, ``{"records": [...]}``, written with a
single ``write``; outcome batches are ``fsync``-ed before the call returns (concurrent batches
share one ``fsync``), issued-offer batches within ``issued_sync_s`` (see `OfferEventLog`), so a
batch is on disk whole or not at all. A crash mid-write leaves a last line without its newline
(a torn tail): opening the log cuts it off, keeps the cut bytes beside the log
(``<name>.torn``) and reports their size; it is never merged with the next batch. A bad line
anywhere else is corruption and an error.

`offers_table` turns the log into rows of the contract's ``offers`` table for the next training
run: issued offers joined with their outcome events by offer id, a real-time offer issued again
on every page view counted once (see `offers_table`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from features.columns import Col
from features.contract import DTYPES, OFFERS
from features.dataset import atomic_path
from service.engine import OFFER_VALIDITY_DAYS, OutcomeEvent, OutcomeKind

log = logging.getLogger(__name__)

ISSUED = "issued"
OUTCOME = "outcome"


class OutcomeLogError(ValueError):
    """The log cannot be opened, written or read; the message names the file and line."""


@dataclass(frozen=True)
class IssuedOffer:
    """An offer the service sent (or a control hold-out), as logged at issue time."""

    offer_id: str
    customer_id: str
    sent_at: datetime
    offer_type: str
    bonus: float
    channel: str
    control: bool = False
    campaign_id: str | None = None
    item_id: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Recovery:
    """What opening the log found: bytes of a torn last record cut off (0 when clean)."""

    torn_bytes: int = 0
    torn_path: Path | None = None


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} has no time zone")
    return ts.astimezone(UTC).isoformat()


def _issued_record(offer: IssuedOffer, sent_at: str | None = None) -> dict[str, Any]:
    # written out field by field: `asdict` deep-copies and costs several times more per offer
    return {
        "type": ISSUED,
        "offer_id": offer.offer_id,
        "customer_id": offer.customer_id,
        "sent_at": sent_at or _iso(offer.sent_at),
        "offer_type": offer.offer_type,
        "bonus": offer.bonus,
        "channel": offer.channel,
        "control": offer.control,
        "campaign_id": offer.campaign_id,
        "item_id": offer.item_id,
        "threshold": offer.threshold,
    }


def _outcome_record(event: OutcomeEvent) -> dict[str, Any]:
    rec = asdict(event)
    rec["event"] = event.event.value
    rec["ts"] = _iso(event.ts)
    return {"type": OUTCOME, **rec}


def _cut_torn_tail(path: Path) -> Recovery:
    """Truncate a last line that lacks its newline; keep the cut bytes in ``<name>.torn``."""
    size = path.stat().st_size
    if size == 0:
        return Recovery()
    with path.open("rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return Recovery()
        # find the end of the last complete line, reading backwards in blocks
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        f.seek(keep)
        torn = f.read()
    torn_path = path.with_name(path.name + ".torn")
    with atomic_path(torn_path) as tmp:
        tmp.write_bytes(torn)
    with path.open("r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    log.warning(
        json.dumps(
            {
                "event": "offer_log_torn_tail",
                "path": str(path),
                "torn_bytes": len(torn),
                "kept_bytes": keep,
                "torn_copy": str(torn_path),
            }
        )
    )
    return Recovery(torn_bytes=len(torn), torn_path=torn_path)


class OfferEventLog:
    """Append-only log of issued offers and outcome events (thread-safe), with group commit.

    Every append is one line, written with one ``write`` under a lock, so lines never
    interleave. Durability:

    - `append_outcomes` returns only once its line is ``fsync``-ed. Concurrent appends share
      one ``fsync`` (group commit): the first waiter syncs everything written so far while the
      others wait for it, so N concurrent acknowledgements cost about one disk flush, not N.
    - `append_issued` returns once its line is written to the operating system: it survives
      a crash of the service process (the kernel holds the data), and is ``fsync``-ed by a
      background flusher at most ``issued_sync_s`` later (or by the next outcome append). Only
      a crash of the machine itself within that window can lose issue records of offers already
      sent; their later outcome events then count as orphan events in `offers_table`. Issue
      records are acknowledged to nobody, so no caller is told anything false.
      ``issued_sync_s=0`` makes issued appends wait for the ``fsync`` like outcomes.

    A failed ``write`` is cut off again (the log stays usable); a failed ``fsync`` leaves the
    durability of everything written unknown, so the log refuses every later append.
    """

    def __init__(self, path: Path | str, *, issued_sync_s: float = 0.05) -> None:
        if not issued_sync_s >= 0:
            raise ValueError(f"issued_sync_s must be >= 0, got {issued_sync_s}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutcomeLogError(f"{self.path}: cannot open ({err.strerror})") from None
        if created:
            _fsync_dir(self.path.parent)
        self.recovery = _cut_torn_tail(self.path)
        self._size = self.path.stat().st_size
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._written = 0  # lines written so far
        self._durable = 0  # lines known to be on disk
        self._syncing = False
        self._failed: str | None = None
        self.syncs = 0  # fsync calls made (group commit: fewer than durable appends)
        self._issued_sync_s = issued_sync_s
        self._flusher: threading.Thread | None = None
        self._closing = threading.Event()
        if issued_sync_s > 0:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="offer-log-flusher", daemon=True
            )
            self._flusher.start()

    def append_issued(self, offers: Sequence[IssuedOffer]) -> None:
        """Log offers as issued before they are sent (written now, on disk within the window)."""
        stamps: dict[datetime, str] = {}  # a chunk shares one send time: format it once
        records = []
        for o in offers:
            stamp = stamps.get(o.sent_at)
            if stamp is None:
                stamp = stamps[o.sent_at] = _iso(o.sent_at)
            records.append(_issued_record(o, stamp))
        seq = self._write(records)
        if seq and self._issued_sync_s == 0:
            self._wait_durable(seq)

    def append_outcomes(self, events: Sequence[OutcomeEvent]) -> None:
        """Log outcome events durably; return only once they are on disk."""
        seq = self._write([_outcome_record(e) for e in events])
        if seq:
            self._wait_durable(seq)

    def sync(self) -> None:
        """Return once everything written so far is on disk."""
        with self._lock:
            seq = self._written
        if seq:
            self._wait_durable(seq)

    def _write(self, records: list[dict[str, Any]]) -> int:
        """Write one line; its sequence number (0 when there was nothing to write)."""
        if not records:
            return 0
        line = (json.dumps({"records": records}, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._check_open()
            try:
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(0, f"short write ({written} of {len(line)} bytes)")
            except OSError as err:
                # undo a partial write so the next batch never merges into a torn line
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise OutcomeLogError(f"{self.path}: write failed ({err.strerror})") from None
            self._size += len(line)
            self._written += 1
            return self._written

    def _check_open(self) -> None:
        if self._failed is not None:
            raise OutcomeLogError(f"{self.path}: {self._failed}")
        if self._fd < 0:
            raise OutcomeLogError(f"{self.path}: log is closed")

    def _wait_durable(self, seq: int) -> None:
        """Block until line ``seq`` is on disk, syncing for everyone when no sync is running."""
        with self._lock:
            while self._durable < seq:
                if self._failed is not None:
                    raise OutcomeLogError(f"{self.path}: {self._failed}")
                if self._syncing:
                    self._synced.wait()
                    continue
                self._sync_locked()

    def _sync_locked(self) -> None:
        """One fsync covering every line written so far; called (and returns) with the lock."""
        if self._fd < 0:
            raise OutcomeLogError(f"{self.path}: log is closed")
        target, fd = self._written, self._fd
        self._syncing = True
        self._lock.release()
        error: OSError | None = None
        try:
            os.fsync(fd)
        except OSError as err:
            error = err
        finally:
            self._lock.acquire()
            self._syncing = False
        self.syncs += 1
        if error is None:
            self._durable = max(self._durable, target)
        else:
            self._failed = f"fsync failed ({error.strerror}); later appends are refused"
        self._synced.notify_all()
        if error is not None:
            raise OutcomeLogError(f"{self.path}: {self._failed}")

    def _flush_loop(self) -> None:
        while not self._closing.wait(self._issued_sync_s):
            with self._lock:
                if self._durable >= self._written or self._syncing or self._fd < 0:
                    continue
                with contextlib.suppress(OutcomeLogError):  # the next append reports it
                    self._sync_locked()

    def close(self) -> None:
        """Sync what was written, stop the flusher and close; later appends raise."""
        self._closing.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            while self._syncing:
                self._synced.wait()
            if self._fd < 0:
                return
            if self._failed is None and self._durable < self._written:
                with contextlib.suppress(OutcomeLogError):
                    self._sync_locked()
            os.close(self._fd)
            self._fd = -1
            self._synced.notify_all()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class LogRead:
    """Records of a log, and the size of an unfinished last line (a write in progress)."""

    records: list[dict[str, Any]]
    incomplete_tail_bytes: int


def read_log(path: Path | str) -> LogRead:
    """Every record of the log; a malformed complete line raises naming the line."""
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records: list[dict[str, Any]] = []
    for n, raw in enumerate(lines, start=1):
        try:
            batch = json.loads(raw)
            recs = batch["records"]
            if not isinstance(recs, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise OutcomeLogError(f"{path}:{n}: not a log batch: {raw[:80]!r}") from None
        records.extend(recs)
    return LogRead(records=records, incomplete_tail_bytes=len(tail))


@dataclass(frozen=True)
class OffersExport:
    """The ``offers`` table built from a log, with counts of everything left out of it."""

    table: pl.DataFrame
    issued: int
    outcome_events: int
    orphan_events: int  # outcomes whose offer id the log never issued: not in the table
    customer_mismatch: int  # outcomes whose customer differs from the issued one: ignored
    duplicate_issues: int  # an offer id issued twice: the first issue is kept
    reissues_folded: int  # real-time re-issues of a still valid offer, counted in its first row
    incomplete_tail_bytes: int

    def format(self) -> str:
        """One line per count, for the CLI."""
        return (
            "\n".join(f"{k}: {v}" for k, v in asdict(self).items() if k != "table")
            + f"\nrows: {self.table.height}"
        )


def _naive_utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC).replace(tzinfo=None)


def offers_table(
    paths: Path | str | Sequence[Path | str],
    *,
    reissue_window: timedelta | None = timedelta(days=OFFER_VALIDITY_DAYS),
) -> OffersExport:
    """The contract ``offers`` rows of every issued offer, converted if it was ever redeemed.

    ``paths``: one log, or the logs of every server process read together (an outcome may be
    recorded by another process than the one that issued the offer).
    ``converted_at`` is the first redemption, ``revenue`` the sum over redemptions (null when
    not converted). Shown and ignored events do not change a row; they are counted.

    ``GetOffers`` issues its offers (or a control customer's hold-out) again, with new ids, on
    every page the customer opens, and a campaign streamed again issues its plan again. For
    training, one decision must be one row: an offer issued again to the same customer in the
    same campaign with the same type, bonus, item, threshold and arm less than
    ``reissue_window`` after the first issue of its run (default: the offers' validity) is
    folded into that first row: it converts if any of the run's ids was redeemed. Without the
    fold a customer who browsed 20 pages would count as 20 offers with at most one conversion.
    ``reissue_window=None`` keeps every issue as its own row.
    """
    logs = [paths] if isinstance(paths, Path | str) else list(paths)
    if not logs:
        raise OutcomeLogError("no offer-event log given")
    reads = [read_log(p) for p in logs]
    read = LogRead(
        records=[r for one in reads for r in one.records],
        incomplete_tail_bytes=sum(one.incomplete_tail_bytes for one in reads),
    )
    offers: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for rec in read.records:
        if rec["type"] != ISSUED:
            continue
        if rec["offer_id"] in offers:
            duplicates += 1
            continue
        offers[rec["offer_id"]] = {
            Col.OFFER: rec["offer_id"],
            Col.CUSTOMER: rec["customer_id"],
            Col.SENT_AT: _naive_utc(rec["sent_at"]),
            Col.OFFER_TYPE: rec["offer_type"],
            Col.BONUS: float(rec["bonus"]),
            Col.CHANNEL: rec["channel"],
            Col.CONVERTED: False,
            Col.CONVERTED_AT: None,
            Col.REVENUE: None,
            Col.CAMPAIGN: rec["campaign_id"],
            Col.CONTROL: bool(rec["control"]),
            Col.ITEM: rec["item_id"],
            Col.THRESHOLD: rec["threshold"],
        }
    events = orphans = mismatch = 0
    for rec in read.records:
        if rec["type"] != OUTCOME:
            continue
        events += 1
        row = offers.get(rec["offer_id"])
        if row is None:
            orphans += 1
            continue
        if row[Col.CUSTOMER] != rec["customer_id"]:
            mismatch += 1
            continue
        if rec["event"] != OutcomeKind.REDEEMED.value:
            continue
        ts = _naive_utc(rec["ts"])
        row[Col.CONVERTED] = True
        if row[Col.CONVERTED_AT] is None or ts < row[Col.CONVERTED_AT]:
            row[Col.CONVERTED_AT] = ts
        row[Col.REVENUE] = (row[Col.REVENUE] or 0.0) + float(rec["revenue"])
    rows = list(offers.values())
    folded = 0
    if reissue_window is not None:
        rows, folded = _fold_reissues(rows, reissue_window)
    schema = {c.name: DTYPES[c.kind] for c in OFFERS.columns}
    table = pl.DataFrame(rows, schema=schema)
    issued = sum(1 for r in read.records if r["type"] == ISSUED)
    return OffersExport(
        table=table,
        issued=issued,
        outcome_events=events,
        orphan_events=orphans,
        customer_mismatch=mismatch,
        duplicate_issues=duplicates,
        reissues_folded=folded,
        incomplete_tail_bytes=read.incomplete_tail_bytes,
    )


def label_from_purchases(
    table: pl.DataFrame, transactions: pl.LazyFrame, *, window: timedelta
) -> tuple[pl.DataFrame, int]:
    """Each offer row's conversion by the definition training learns from: a purchase.

    A row converts when, in ``[sent_at, sent_at + window)``, its customer placed a purchase
    order (an order with a sale line) or redeemed the offer (a redemption may come before its
    order reaches ``transactions``); a redemption after the window does not count, so both arms
    are judged on the same window. ``converted_at`` is the first such event; ``revenue`` the
    redemptions' (as recorded), else the first order's net amount. This is what labels control
    hold-outs at all (they redeem nothing). A treated customer who bought without redeeming
    converted too: the optimizer costs an offer as if every conversion is paid its bonus, and
    `offers report campaign` then counts the bonus of every converting treated customer as
    paid (the conservative side). Transaction times are taken on the service's clock (UTC).
    Returns the table and how many rows the purchases converted that redemptions had not.
    """
    row = "_row"
    windows = (
        table.lazy()
        .with_row_index(row)
        .select(
            row,
            Col.CUSTOMER,
            pl.col(Col.SENT_AT).alias("_from"),
            (pl.col(Col.SENT_AT) + window).alias("_to"),
        )
    )
    customers = table.select(pl.col(Col.CUSTOMER).unique()).lazy()
    orders = (
        transactions.join(customers, on=Col.CUSTOMER, how="semi")
        .group_by(Col.CUSTOMER, Col.ORDER)
        .agg(
            pl.col(Col.TS).min().cast(pl.Datetime("us")).alias("_at"),
            (pl.col(Col.QUANTITY) > 0).any().alias("_sale"),
            pl.col(Col.AMOUNT).sum().alias("_amount"),
        )
        .filter(pl.col("_sale"))
    )
    first_order = (
        windows.join(orders, on=Col.CUSTOMER, how="inner")
        .filter((pl.col("_at") >= pl.col("_from")) & (pl.col("_at") < pl.col("_to")))
        .sort("_at", Col.ORDER)
        .group_by(row)
        .agg(pl.col("_at").first(), pl.col("_amount").first())
        .collect()
    )
    end = pl.col(Col.SENT_AT) + window
    redeemed = pl.col(Col.CONVERTED) & (pl.col(Col.CONVERTED_AT) < end).fill_null(False)
    bought = pl.col("_at").is_not_null()
    labelled = (
        table.with_row_index(row)
        .join(first_order, on=row, how="left")
        .sort(row)
        .with_columns(
            (redeemed | bought).alias(Col.CONVERTED),
            pl.min_horizontal(
                pl.when(redeemed).then(pl.col(Col.CONVERTED_AT)), pl.col("_at")
            ).alias(Col.CONVERTED_AT),
            pl.when(redeemed)
            .then(pl.col(Col.REVENUE))
            .when(bought)
            .then(pl.col("_amount"))
            .otherwise(None)
            .cast(table.schema[Col.REVENUE])
            .alias(Col.REVENUE),
        )
    )
    added = int((labelled[Col.CONVERTED] & ~table[Col.CONVERTED]).sum())  # lost ones are not
    return labelled.select(table.columns), added


def _fold_reissues(
    rows: list[dict[str, Any]], window: timedelta
) -> tuple[list[dict[str, Any]], int]:
    """Rows with each run of re-issues folded into its first row (see `offers_table`), in
    their original order, and how many rows were folded."""

    def offer_key(r: dict[str, Any]) -> tuple[Any, ...]:
        threshold = r[Col.THRESHOLD]
        return (
            r[Col.CAMPAIGN] or "",
            r[Col.CONTROL],
            r[Col.CUSTOMER],
            r[Col.OFFER_TYPE],
            r[Col.BONUS],
            r[Col.ITEM] or "",
            -1.0 if threshold is None else float(threshold),
        )

    gone: set[int] = set()
    head: dict[str, Any] | None = None
    head_key: tuple[Any, ...] = ()
    for r in sorted(rows, key=lambda r: (offer_key(r), r[Col.SENT_AT])):
        key = offer_key(r)
        if head is not None and key == head_key and r[Col.SENT_AT] < head[Col.SENT_AT] + window:
            if r[Col.CONVERTED]:
                first = head[Col.CONVERTED_AT]
                head[Col.CONVERTED] = True
                head[Col.CONVERTED_AT] = (
                    r[Col.CONVERTED_AT] if first is None else min(first, r[Col.CONVERTED_AT])
                )
                head[Col.REVENUE] = (head[Col.REVENUE] or 0.0) + (r[Col.REVENUE] or 0.0)
            gone.add(id(r))
        else:
            head, head_key = r, key
    return [r for r in rows if id(r) not in gone], len(gone)
