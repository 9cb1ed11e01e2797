"""Generated datasets shared by the benchmarks, cached under data/bench/ by size and seed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DATA = Path(__file__).resolve().parent.parent / "data" / "bench"
SEED = 1
HORIZON_DAYS = 180


def dataset_dir(customers: int, seed: int = SEED) -> Path:
    return BENCH_DATA / "datasets" / f"n{customers}-seed{seed}"


def generate_command(customers: int, out: Path, seed: int = SEED) -> list[str]:
    personalize = str(Path(sys.executable).with_name("personalize"))
    return [personalize, "generate", "--customers", str(customers), "--seed", str(seed), "--out", str(out),
            "--horizon-days", str(HORIZON_DAYS)]  # fmt: skip


def ensure_dataset(customers: int, seed: int = SEED) -> Path:
    """The cached dataset for `customers` and `seed`, generating it (unmeasured) when missing."""
    out = dataset_dir(customers, seed)
    if not (out / "_truth" / "persons.parquet").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(generate_command(customers, out, seed), check=True)
    return out
