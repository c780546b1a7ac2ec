"""The committed generated code is what `make proto` produces from proto/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "service" / "gen" / "offers" / "v1"
GENERATED = ("offers_pb2.py", "offers_pb2.pyi", "offers_pb2_grpc.py")


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iservice/gen=proto",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            "proto/offers/v1/offers.proto",
        ],
        cwd=ROOT,
        check=True,
    )
    fresh = tmp_path / "service" / "gen" / "offers" / "v1"
    stale = [n for n in GENERATED if (fresh / n).read_bytes() != (GEN / n).read_bytes()]
    assert stale == [], f"run `make proto`: {stale} differ from proto/offers/v1/offers.proto"
