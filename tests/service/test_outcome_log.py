"""The offer-event log: durable across restarts, torn tails cut and reported, table export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from features.columns import Col
from features.contract import DTYPES, OFFERS
from service.engine import OutcomeEvent, OutcomeKind
from service.gen.offers.v1 import offers_pb2 as pb
from service.outcome_log import (
    IssuedOffer,
    OfferEventLog,
    OutcomeLogError,
    offers_table,
    read_log,
)
from tests.service.conftest import StartServer

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
TORN = b'{"records":[{"type":"outcome","offer_id":"o3"'


def _issued(offer_id: str, customer_id: str = "c1", campaign_id: str = "k1") -> IssuedOffer:
    return IssuedOffer(
        offer_id, customer_id, T0, "cashback", 20.0, "email", campaign_id=campaign_id
    )


def _outcome(offer_id: str, kind: OutcomeKind, hour: int, customer_id: str = "c1") -> OutcomeEvent:
    return OutcomeEvent(offer_id, customer_id, kind, T0.replace(hour=hour), revenue=10.0)


def _batch(*offer_ids: str) -> pb.OutcomeBatch:
    events = []
    for oid in offer_ids:
        ev = pb.OutcomeEvent(offer_id=oid, customer_id="c1", event=pb.OUTCOME_EVENT_TYPE_SHOWN)
        ev.ts.FromDatetime(T0)
        events.append(ev)
    return pb.OutcomeBatch(events=events)


def test_outcomes_survive_a_restart_and_a_torn_tail_is_cut(start_server: StartServer) -> None:
    first = start_server()
    assert first.stub.RecordOutcome(_batch("o1", "o2"), timeout=5).accepted == 2
    first.stop()
    path = first.config.outcome_log_path
    with path.open("ab") as f:  # a crash in the middle of the next batch
        f.write(TORN)

    second = start_server()
    assert second.server.event_log.recovery.torn_bytes == len(TORN)
    assert second.stub.RecordOutcome(_batch("o4"), timeout=5).accepted == 1
    second.stop()

    ids = [r["offer_id"] for r in read_log(path).records]
    assert ids == ["o1", "o2", "o4"]  # o3 was never acknowledged and is not merged
    torn = second.server.event_log.recovery.torn_path
    assert torn is not None and torn.read_bytes() == TORN


def test_a_bad_line_inside_the_log_is_an_error_naming_the_line(tmp_path: Path) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl")
    log.append_issued([_issued("o1")])
    log.close()
    with (tmp_path / "e.jsonl").open("ab") as f:
        f.write(b"garbage\n")
    with pytest.raises(OutcomeLogError, match=r"e\.jsonl:2: "):
        read_log(tmp_path / "e.jsonl")


def test_a_failed_log_refuses_appends_after_close(tmp_path: Path) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl")
    log.close()
    with pytest.raises(OutcomeLogError, match="closed"):
        log.append_outcomes([_outcome("o1", OutcomeKind.SHOWN, 10)])


def test_offers_table_joins_outcomes_and_counts_what_it_leaves_out(tmp_path: Path) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl")
    log.append_issued([_issued("o1"), _issued("o2", "c2"), _issued("o1")])
    log.append_outcomes(
        [
            _outcome("o1", OutcomeKind.SHOWN, 10),
            _outcome("o1", OutcomeKind.REDEEMED, 14),
            _outcome("o1", OutcomeKind.REDEEMED, 12),
            _outcome("o2", OutcomeKind.REDEEMED, 11, customer_id="c9"),  # wrong customer
            _outcome("zz", OutcomeKind.REDEEMED, 11),  # never issued
        ]
    )
    log.close()
    export = offers_table(tmp_path / "e.jsonl")
    table = export.table.sort(Col.OFFER)
    assert table.schema == pl.Schema({c.name: DTYPES[c.kind] for c in OFFERS.columns})
    assert table[Col.CONVERTED].to_list() == [True, False]
    assert table[Col.CONVERTED_AT].to_list() == [datetime(2025, 3, 1, 12), None]
    assert table[Col.REVENUE].to_list() == [20.0, None]
    assert table[Col.CAMPAIGN].to_list() == ["k1", "k1"]
    assert (export.issued, export.duplicate_issues) == (3, 1)
    assert (export.outcome_events, export.orphan_events, export.customer_mismatch) == (5, 1, 1)
    assert "orphan_events: 1" in export.format()


def _page_view(
    offer_id: str, day: int, *, bonus: float = 20.0, customer: str = "c1", control: bool = False
) -> IssuedOffer:
    """An offer (or a hold-out) issued by GetOffers on ``day`` of March."""
    kind = "none" if control else "cashback"
    at = T0.replace(day=day)
    return IssuedOffer(offer_id, customer, at, kind, bonus, "web", control, "realtime")


def test_real_time_reissues_of_a_valid_offer_are_one_row(tmp_path: Path) -> None:
    log = OfferEventLog(tmp_path / "e.jsonl")
    log.append_issued(
        [
            _page_view("a1", 1),  # first issue
            _page_view("a2", 3),  # the same offer on another page: folded into a1
            _page_view("a3", 10),  # still within 14 days of a1: folded
            _page_view("a4", 16),  # 15 days after a1: a new offer
            _page_view("b1", 3, bonus=50.0),  # another bonus: another offer
            _page_view("c1", 3, customer="c2"),  # another customer
            _page_view("h1", 2, bonus=0.0, customer="c3", control=True),  # a hold-out ...
            _page_view("h2", 4, bonus=0.0, customer="c3", control=True),  # ... on another page
            _issued("k1"),  # a campaign's offer
            _issued("k2"),  # the campaign streamed again: the same offer
            _issued("m1", campaign_id="k9"),  # another campaign: another offer
        ]
    )
    log.append_outcomes(
        [
            OutcomeEvent("a3", "c1", OutcomeKind.REDEEMED, T0.replace(day=12), revenue=30.0),
            OutcomeEvent("a2", "c1", OutcomeKind.REDEEMED, T0.replace(day=11), revenue=5.0),
        ]
    )
    log.close()
    export = offers_table(log.path)
    table = export.table
    assert table[Col.OFFER].to_list() == ["a1", "a4", "b1", "c1", "h1", "k1", "m1"]
    first = table.row(0, named=True)
    assert first[Col.SENT_AT] == datetime(2025, 3, 1, 9)  # the decision: the first issue
    assert first[Col.CONVERTED] and first[Col.CONVERTED_AT] == datetime(2025, 3, 11, 9)
    assert first[Col.REVENUE] == 35.0  # both redemptions of the run
    assert table[Col.CONVERTED].to_list() == [True] + [False] * 6
    assert export.reissues_folded == 4 and export.issued == 11

    from offers.cli import main

    out = tmp_path / "offers.parquet"
    assert main(["export-outcomes", str(log.path), "--out", str(out)]) == 0
    written = pl.read_parquet(out)[Col.OFFER].to_list()
    assert written == ["a1", "a4", "b1", "c1", "k1", "m1"]  # no hold-out without --data
    assert (
        main(["export-outcomes", str(log.path), "--out", str(out), "--reissue-window-days", "0"])
        == 0
    )
    assert pl.read_parquet(out).height == 9  # every issue but the two hold-outs (no --data)

    every = offers_table(log.path, reissue_window=None)
    assert every.table.height == 11 and every.reissues_folded == 0
    short = offers_table(log.path, reissue_window=timedelta(days=5))
    assert short.table[Col.OFFER].to_list() == ["a1", "a3", "a4", "b1", "c1", "h1", "k1", "m1"]


def _held_out(offer_id: str, customer_id: str) -> IssuedOffer:
    return IssuedOffer(offer_id, customer_id, T0, "none", 0.0, "email", True, "k1")


def _purchases(root: Path) -> Path:
    """A dataset folder with the transactions of four customers around T0 (March 1, 9:00)."""
    root.mkdir()
    lines = [  # customer, order, day, hour, quantity, amount
        ("c1", "r1", 5, 10, 1.0, 80.0),  # redeemed o1 (recorded revenue 20) and bought
        ("c2", "q1", 3, 10, -1.0, -30.0),  # a return only: not a purchase
        ("c2", "q2", 20, 10, 1.0, 50.0),  # after the 14-day window
        ("c3", "p1", 4, 12, 1.0, 40.0),  # bought without redeeming
        ("c3", "p1", 4, 12, 1.0, 5.0),
        ("c3", "p2", 6, 10, 1.0, 99.0),  # a later order: not the conversion order
        ("h1", "h1", 2, 10, 2.0, 60.0),  # a held-out customer who bought
        ("h2", "h2", 1, 8, 1.0, 10.0),  # bought before being held out
    ]
    pl.DataFrame(
        {
            Col.CUSTOMER: [x[0] for x in lines],
            Col.ORDER: [x[1] for x in lines],
            Col.TS: [datetime(2025, 3, x[2], x[3]) for x in lines],
            Col.ITEM: ["i1"] * len(lines),
            Col.QUANTITY: [x[4] for x in lines],
            Col.AMOUNT: [x[5] for x in lines],
        }
    ).write_parquet(root / "transactions.parquet")
    pl.DataFrame({Col.ITEM: ["i1"], Col.CATEGORY: ["mug"], Col.PRICE: [10.0]}).write_parquet(
        root / "items.parquet"
    )
    return root


def test_offers_with_another_threshold_or_item_are_not_folded(tmp_path: Path) -> None:
    def offer(offer_id: str, threshold: float | None, item: str | None) -> IssuedOffer:
        kind = "spend_threshold" if threshold is not None else "cross_sell"
        at = T0.replace(day=2)
        return IssuedOffer(
            offer_id, "c1", at, kind, 50.0, "web", False, "realtime", item, threshold
        )

    log = OfferEventLog(tmp_path / "e.jsonl")
    log.append_issued(
        [
            offer("t1", 100.0, None),
            offer("t2", 120.0, None),  # another threshold: another offer
            offer("t3", 100.0, None),  # t1 again
            offer("x1", None, "i1"),
            offer("x2", None, "i2"),  # another item
            offer("x3", None, "i1"),  # x1 again
        ]
    )
    log.close()
    export = offers_table(log.path)
    assert export.table[Col.OFFER].to_list() == ["t1", "t2", "x1", "x2"]
    assert export.reissues_folded == 2


def test_purchases_label_every_row_as_training_counts_conversions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from offers.cli import main

    log = OfferEventLog(tmp_path / "e.jsonl")
    issued = [_issued("o1"), _issued("o2", "c2"), _issued("o3", "c3")]
    log.append_issued([*issued, _held_out("x1", "h1"), _held_out("x2", "h2")])
    log.append_outcomes([_outcome("o1", OutcomeKind.REDEEMED, 12)])
    log.close()
    out = tmp_path / "offers.parquet"

    assert main(["export-outcomes", str(log.path), "--out", str(out)]) == 0
    assert pl.read_parquet(out)[Col.OFFER].to_list() == ["o1", "o2", "o3"]
    assert "control hold-outs left out: 2" in capsys.readouterr().out

    data = _purchases(tmp_path / "data")
    assert main(["export-outcomes", str(log.path), "--out", str(out), "--data", str(data)]) == 0
    assert "converted by a purchase within 14 days: 2" in capsys.readouterr().out
    table = pl.read_parquet(out)
    assert table.schema == pl.Schema({c.name: DTYPES[c.kind] for c in OFFERS.columns})
    rows = {r[Col.OFFER]: r for r in table.iter_rows(named=True)}
    assert list(rows) == ["o1", "o2", "o3", "x1", "x2"]
    assert rows["o1"][Col.CONVERTED_AT] == datetime(2025, 3, 1, 12)  # the redemption came first
    assert rows["o1"][Col.REVENUE] == 10.0  # the redeemed order's, as recorded
    assert not rows["o2"][Col.CONVERTED] and rows["o2"][Col.REVENUE] is None
    assert rows["o3"][Col.CONVERTED_AT] == datetime(2025, 3, 4, 12)
    assert rows["o3"][Col.REVENUE] == 45.0  # the first order in the window, all its lines
    assert rows["x1"][Col.CONVERTED] and rows["x1"][Col.CONTROL]
    assert not rows["x2"][Col.CONVERTED]  # bought before the window opened

    # one day: o1's redemption (3 h after sending) counts, orders 3 days or 25 h later do not
    args = ["--data", str(data), "--attribution-days", "1"]
    assert main(["export-outcomes", str(log.path), "--out", str(out), *args]) == 0
    short = {r[Col.OFFER]: r[Col.CONVERTED] for r in pl.read_parquet(out).iter_rows(named=True)}
    assert short == {"o1": True, "o2": False, "o3": False, "x1": False, "x2": False}
    capsys.readouterr()
    assert main(["export-outcomes", str(log.path), "--out", str(out), "--attribution-days", "3"])
    assert "--attribution-days: needs --data" in capsys.readouterr().err


def test_a_redemption_after_the_attribution_window_does_not_convert(tmp_path: Path) -> None:
    from service.outcome_log import label_from_purchases

    log = OfferEventLog(tmp_path / "e.jsonl")
    log.append_issued([_page_view("a1", 1), _page_view("a2", 10)])  # one run: a2 folds into a1
    log.append_outcomes(  # redeemed 21 days after a1 was first sent: outside its window
        [OutcomeEvent("a2", "c1", OutcomeKind.REDEEMED, T0.replace(day=22), revenue=9.0)]
    )
    log.close()
    folded = offers_table(log.path).table
    assert folded[Col.CONVERTED].to_list() == [True]  # redeemed: so says the log alone
    tx = pl.LazyFrame(
        schema={
            Col.CUSTOMER: pl.String,
            Col.ORDER: pl.String,
            Col.TS: pl.Datetime("us"),
            Col.QUANTITY: pl.Float64,
            Col.AMOUNT: pl.Float64,
        }
    )
    labelled, _ = label_from_purchases(folded, tx, window=timedelta(days=14))
    row = labelled.row(0, named=True)
    assert not row[Col.CONVERTED] and row[Col.CONVERTED_AT] is None and row[Col.REVENUE] is None


def test_export_reads_every_process_log_together_and_merges_into_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from offers.cli import main

    first, second = OfferEventLog(tmp_path / "e.0.jsonl"), OfferEventLog(tmp_path / "e.1.jsonl")
    first.append_issued([_issued("o1"), _issued("o2", "c2")])
    second.append_outcomes([_outcome("o1", OutcomeKind.REDEEMED, 12)])  # another process
    first.close()
    second.close()
    out = tmp_path / "offers.parquet"
    assert main(["export-outcomes", str(first.path), str(second.path), "--out", str(out)]) == 0
    table = pl.read_parquet(out).sort(Col.OFFER)
    assert table[Col.CONVERTED].to_list() == [True, False]

    later = OfferEventLog(tmp_path / "later.jsonl")
    later.append_issued([_issued("o3")])
    later.append_outcomes([_outcome("o2", OutcomeKind.REDEEMED, 13, "c2")])  # now redeemed
    later.append_issued([_issued("o2", "c2")])
    later.close()
    assert main(["export-outcomes", str(later.path), "--out", str(out), "--merge"]) == 0
    merged = pl.read_parquet(out).sort(Col.OFFER)
    assert merged[Col.OFFER].to_list() == ["o1", "o2", "o3"]
    assert merged[Col.CONVERTED].to_list() == [True, True, False]
    assert "kept from" in capsys.readouterr().out


def test_merge_keeps_a_shop_table_with_other_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from offers.cli import main

    shop = pl.DataFrame(  # the shop's own table: no item_id/threshold, one extra column
        {
            Col.OFFER: ["s1"],
            Col.CUSTOMER: ["c7"],
            Col.SENT_AT: [datetime(2025, 1, 5)],
            Col.OFFER_TYPE: ["birthday"],
            Col.BONUS: [50.0],
            Col.CHANNEL: ["sms"],
            Col.CONVERTED: [False],
            Col.CONVERTED_AT: [None],
            Col.REVENUE: [None],
            "store": ["north"],
        },
        schema_overrides={Col.CONVERTED_AT: pl.Datetime("us"), Col.REVENUE: pl.Float64},
    )
    out = tmp_path / "offers.parquet"
    shop.write_parquet(out)
    log = OfferEventLog(tmp_path / "e.jsonl")
    log.append_issued([_issued("o1")])
    log.close()
    assert main(["export-outcomes", str(log.path), "--out", str(out), "--merge"]) == 0
    merged = pl.read_parquet(out).sort(Col.OFFER)
    assert merged[Col.OFFER].to_list() == ["o1", "s1"]
    assert merged["store"].to_list() == [None, "north"]
    assert "replaced by the logs: 0" in capsys.readouterr().out

    pl.DataFrame({"x": [1]}).write_parquet(out)
    assert main(["export-outcomes", str(log.path), "--out", str(out), "--merge"]) != 0
    assert "not an offers table" in capsys.readouterr().err
