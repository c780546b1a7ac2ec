"""Group commit in the offer-event log: shared fsyncs, but never an acknowledgement before one.

A slow recording fsync stands in for the disk: it remembers how many bytes the file held when
each flush began, so a test can check that every acknowledged line was covered by a flush that
started after the line was written.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.engine import OutcomeEvent, OutcomeKind
from service.outcome_log import IssuedOffer, OfferEventLog, OutcomeLogError, read_log

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


class SlowDisk:
    """An fsync that takes ``delay_s`` and records the file size at the start of each call."""

    def __init__(self, delay_s: float, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.flushed_sizes: list[int] = []
        self._real = os.fsync

    def __call__(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        time.sleep(self.delay_s)
        if self.fail:
            raise OSError(5, "Input/output error")
        self._real(fd)
        self.flushed_sizes.append(size)


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SlowDisk]:
    def install(delay_s: float = 0.005, fail: bool = False) -> SlowDisk:
        disk = SlowDisk(delay_s, fail)
        monkeypatch.setattr(os, "fsync", disk)
        return disk

    return install


def _event(n: int) -> OutcomeEvent:
    return OutcomeEvent(f"o{n}", "c1", OutcomeKind.SHOWN, T0)


def _issued(n: int) -> IssuedOffer:
    return IssuedOffer(f"i{n}", "c1", T0, "cashback", 20.0, "web")


def test_concurrent_outcomes_share_fsyncs_and_each_ack_follows_one(
    tmp_path: Path, slow_disk: Callable[..., SlowDisk]
) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl", issued_sync_s=0)
    disk = slow_disk(0.005)
    acked: list[tuple[int, int]] = []  # (event number, file size seen right after the ack)
    lock = threading.Lock()

    def worker(first: int) -> None:
        for n in range(first, first + 10):
            log.append_outcomes([_event(n)])
            with lock:
                acked.append((n, os.stat(log.path).st_size))

    threads = [threading.Thread(target=worker, args=(t * 10,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(acked) == 160
    assert disk.flushed_sizes and len(disk.flushed_sizes) < 80  # 160 acks, far fewer flushes
    # crash-like reopen: no close(), read what a new process would find
    ids = [r["offer_id"] for r in read_log(tmp_path / "e.jsonl").records]
    assert sorted(ids) == sorted(f"o{n}" for n in range(160))
    # every acknowledged line lies inside the bytes covered by some flush
    lines = (tmp_path / "e.jsonl").read_bytes().split(b"\n")[:-1]
    end_of = {}
    offset = 0
    for raw in lines:
        offset += len(raw) + 1
        end_of[raw.split(b'"offer_id":"')[1].split(b'"')[0].decode()] = offset
    for n, _ in acked:
        assert max(disk.flushed_sizes) >= end_of[f"o{n}"]
        assert any(size >= end_of[f"o{n}"] for size in disk.flushed_sizes)
    log.close()


def test_issued_offers_are_written_at_once_and_flushed_within_the_window(
    tmp_path: Path, slow_disk: Callable[..., SlowDisk]
) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl", issued_sync_s=0.02)
    disk = slow_disk(0.0)
    log.append_issued([_issued(1), _issued(2)])
    # in the file (the kernel's hands) before the call returns: survives a process crash
    assert [r["offer_id"] for r in read_log(log.path).records] == ["i1", "i2"]
    size = log.path.stat().st_size
    deadline = time.monotonic() + 2.0
    while not any(s >= size for s in disk.flushed_sizes):
        assert time.monotonic() < deadline, "issued offers were never flushed"
        time.sleep(0.005)
    log.close()


def test_close_flushes_issued_offers_not_yet_synced(
    tmp_path: Path, slow_disk: Callable[..., SlowDisk]
) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl", issued_sync_s=60.0)
    disk = slow_disk(0.0)
    log.append_issued([_issued(1)])
    assert disk.flushed_sizes == []
    log.close()
    assert disk.flushed_sizes == [log.path.stat().st_size]


def test_a_failed_fsync_fails_the_waiting_appends_and_refuses_later_ones(
    tmp_path: Path, slow_disk: Callable[..., SlowDisk]
) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl", issued_sync_s=0)
    slow_disk(0.0, fail=True)
    with pytest.raises(OutcomeLogError, match="fsync failed"):
        log.append_outcomes([_event(1)])
    with pytest.raises(OutcomeLogError, match="refused"):
        log.append_issued([_issued(2)])
    log.close()


def test_an_issued_record_holds_every_field_of_the_issued_offer(tmp_path: Path) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl")
    offer = IssuedOffer(
        "i1", "c1", T0, "up_sell", 20.0, "web", True, "k1", item_id="sku", threshold=50.0
    )
    log.append_issued([offer])
    log.close()
    (record,) = read_log(log.path).records
    expected = {f.name: getattr(offer, f.name) for f in fields(IssuedOffer)}
    assert record == {"type": "issued", **expected, "sent_at": "2025-03-01T09:00:00+00:00"}
