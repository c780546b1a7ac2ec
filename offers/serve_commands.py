"""`offers serve` runs the gRPC service on the champion model; `offers ask` calls it."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

from offers.env import tracking_config


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the champion model over gRPC until SIGTERM / SIGINT; hot-swap on promotion."""
    import dataclasses

    from service.champion import ChampionLoader
    from service.config import load_config
    from service.hotswap import EngineHolder
    from service.workers import serve_processes

    config = load_config(args.config)
    overrides = {
        k: v for k, v in (("port", args.port), ("processes", args.processes)) if v is not None
    }
    config = dataclasses.replace(config, **overrides)
    loader = ChampionLoader(tracking_config(), cache_dir=Path(args.model_cache))
    holder = EngineHolder(loader.load())
    print(
        f"serving champion v{loader.loaded_version} on {config.host}:{config.port} "
        f"({config.processes} process{'es' if config.processes > 1 else ''})",
        flush=True,
    )
    serve_processes(holder, config, check=loader.check)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Send one GetOffers request (waiting for the server to be SERVING) and print the answer."""
    import grpc
    from google.protobuf import json_format
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from service.gen.offers.v1 import offers_pb2 as pb
    from service.gen.offers.v1 import offers_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(args.target)
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            print(f"offers ask: {args.target} not SERVING after {args.wait} s", file=sys.stderr)
            return 1
        time.sleep(0.5)
    request = pb.GetOffersRequest(
        customer_id=args.customer,
        context=pb.OfferContext(
            cart_item_ids=args.cart or [],
            viewed_item_id=args.viewed or "",
            channel=pb.Channel.Value(f"CHANNEL_{args.channel.upper()}"),
            max_cross_sell=args.k,
            max_up_sell=args.k,
            max_recommended=args.k,
        ),
    )
    stub = pb_grpc.OfferServiceStub(channel)  # type: ignore[no-untyped-call]
    try:
        answer = stub.GetOffers(request, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"offers ask: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(json_format.MessageToJson(answer, preserving_proto_field_name=True))
    return 0


def cmd_export_outcomes(args: argparse.Namespace) -> int:
    """Turn the service's offer-event logs into the contract's ``offers`` table."""
    import polars as pl

    from features.columns import Col
    from features.contract import DTYPES, OFFERS
    from features.dataset import write_table_atomic
    from service.engine import OFFER_VALIDITY_DAYS
    from service.outcome_log import label_from_purchases, offers_table

    if args.attribution_days is not None and args.data is None:
        raise ValueError("--attribution-days: needs --data (purchases come from its transactions)")
    days = args.reissue_window_days
    export = offers_table(args.logs, reissue_window=timedelta(days=days) if days else None)
    table = export.table
    if args.data is not None:
        from features.dataset import load_dataset

        tx = load_dataset(args.data).require("transactions", "export-outcomes --data")
        attribution = args.attribution_days or OFFER_VALIDITY_DAYS
        table, added = label_from_purchases(table, tx, window=timedelta(days=attribution))
        print(f"converted by a purchase within {attribution} days: {added}")
    else:
        held_out = int(table[Col.CONTROL].sum())
        table = table.filter(~pl.col(Col.CONTROL))
        print(
            f"control hold-outs left out: {held_out} (they redeem nothing, so only purchases can "
            "say whether they bought: give --data DIR to label every row from its transactions)"
        )
    kept = replaced = 0
    if args.merge and args.out.exists():
        if args.out.suffix != ".parquet":
            raise ValueError(f"--merge: {args.out} must be a .parquet offers table")
        earlier = pl.read_parquet(args.out)
        missing = [c.name for c in OFFERS.required if c.name not in earlier.columns]
        if missing:
            raise ValueError(f"--merge: {args.out} is not an offers table (no {missing})")
        for column in OFFERS.columns:  # the contract's columns keep the contract's types
            want = DTYPES[column.kind]
            if column.name in earlier.columns and earlier.schema[column.name] != want:
                raise ValueError(
                    f"--merge: {args.out}: column {column.name} is "
                    f"{earlier.schema[column.name]}, expected {want}"
                )
        # an offer exported again (new outcomes since) replaces its earlier row
        again = earlier[Col.OFFER].is_in(table[Col.OFFER].implode())
        replaced = int(again.sum())
        earlier = earlier.filter(~again)
        kept = earlier.height
        # the shop's own table may lack optional columns or carry extra ones: keep them all
        table = pl.concat([earlier, table], how="diagonal_relaxed")
    write_table_atomic(table, args.out)
    print(export.format())
    if args.merge:
        print(f"kept from {args.out}: {kept} (replaced by the logs: {replaced})")
    print(f"wrote {table.height:,} offers to {args.out}")
    return 0


def add_serve_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `offers serve` and `offers ask`."""
    from offers.cli import non_negative_int, positive_int
    from service.engine import OFFER_VALIDITY_DAYS

    p = sub.add_parser("serve", help="run the gRPC OfferService on the champion model")
    p.add_argument("--config", type=Path, help="service config file (.toml or .json)")
    p.add_argument("--port", type=int, help="listen port (overrides config and environment)")
    p.add_argument(
        "--processes",
        type=positive_int,
        help="server processes sharing the port, e.g. one per core (overrides config)",
    )
    p.add_argument(
        "--model-cache", default="build/service/models", help="where model bundles are downloaded"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ask", help="call GetOffers on a running service and print the answer")
    p.add_argument("--target", default="127.0.0.1:50051", help="host:port")
    p.add_argument("--customer", required=True, help="customer id")
    p.add_argument("--cart", nargs="*", help="item ids in the cart")
    p.add_argument("--viewed", help="item id being viewed")
    p.add_argument("--channel", default="web", choices=["web", "app", "email", "push", "sms"])
    p.add_argument("-k", type=positive_int, default=5, help="items of each kind")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for SERVING")
    p.add_argument("--timeout", type=float, default=5.0, help="request deadline in seconds")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "export-outcomes",
        help="the service's offer-event logs as the contract's offers table (for training)",
    )
    p.add_argument(
        "logs", nargs="+", type=Path, help="offer-event logs (every server process's log)"
    )
    p.add_argument("--out", type=Path, required=True, help="offers table (.parquet or .csv)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the offers already in --out (a re-exported offer replaces its row)",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="dataset folder whose transactions label every row (a purchase in the "
        "attribution window converts it; control hold-outs included); without it a row "
        "converts only when redeemed and hold-outs are left out",
    )
    p.add_argument(
        "--attribution-days",
        type=positive_int,
        metavar="N",
        help=f"with --data: purchases (and redemptions) within N days of sent_at convert "
        f"(default {OFFER_VALIDITY_DAYS})",
    )
    p.add_argument(
        "--reissue-window-days",
        type=non_negative_int,
        default=OFFER_VALIDITY_DAYS,
        metavar="N",
        help="an offer issued again to the same customer in the same campaign (a page view, "
        "a campaign streamed twice) within N days of its first issue is one offer row "
        f"(default {OFFER_VALIDITY_DAYS}, the real-time offers' validity; 0 keeps every issue)",
    )
    p.set_defaults(func=cmd_export_outcomes)
