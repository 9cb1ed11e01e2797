"""Generated datasets shared by the benchmarks, cached under data/bench/ by size and seed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DATA = Path(__file__).resolve().parent.parent / "data" / "bench"
SEED = 1
HORIZON_DAYS = 180


def dataset_dir(customers: int, seed: int = SEED, email_history_days: int | None = None) -> Path:
    suffix = f"-email{email_history_days}" if email_history_days is not None else ""
    return BENCH_DATA / "datasets" / f"n{customers}-seed{seed}{suffix}"


def generate_command(
    customers: int, out: Path, seed: int = SEED, email_history_days: int | None = None
) -> list[str]:
    """`personalize generate` for a benchmark dataset; email_history_days None keeps the generator's."""
    personalize = str(Path(sys.executable).with_name("personalize"))
    command = [personalize, "generate", "--customers", str(customers), "--seed", str(seed), "--out", str(out),
               "--horizon-days", str(HORIZON_DAYS)]  # fmt: skip
    if email_history_days is not None:
        command += ["--email-history-days", str(email_history_days)]
    return command


def ensure_dataset(customers: int, seed: int = SEED, email_history_days: int | None = None) -> Path:
    """The cached dataset for `customers`, `seed` (and an ESP history other than the generator's default),
    generating it (unmeasured) when missing."""
    out = dataset_dir(customers, seed, email_history_days)
    if not (out / "_truth" / "persons.parquet").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(generate_command(customers, out, seed, email_history_days), check=True)
    return out
