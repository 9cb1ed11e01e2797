"""Run benchmarks and rewrite BENCHMARKS.md.

    python -m bench              run every benchmark
    python -m bench datagen      run only the named ones; the others keep their last results

Each benchmark module in bench/ exposes `TITLE` and `run() -> str` (a markdown section). Its latest
result is kept in bench/results/<name>.md, and BENCHMARKS.md is assembled from all of them, so a figure
in BENCHMARKS.md is always the output of a script, never typed in.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import machine_description

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
OUTPUT = BENCH_DIR.parent / "BENCHMARKS.md"
# In the order they appear in BENCHMARKS.md.
BENCHMARKS = ["datagen", "staging", "marts", "recommendations", "ml", "sync", "run"]


# Settings the benchmarks read besides their own BENCH_<NAME>_* variables: the warehouse's, and the
# PERSONALIZE_BENCH_* paths of prebuilt data.
SHARED_SETTINGS = ("PERSONALIZE_DUCKDB_MEMORY_LIMIT", "PERSONALIZE_DBT_THREADS")
SHARED_PREFIX = "PERSONALIZE_BENCH_"


def settings_text(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """The environment a benchmark ran with, so that its section says how to reproduce it: its own
    BENCH_<NAME>_* variables and the shared ones that were set; the rest were at their defaults."""
    own = f"BENCH_{name.upper()}_"
    chosen = sorted(
        k for k in environ if environ[k] and (k.startswith((own, SHARED_PREFIX)) or k in SHARED_SETTINGS)
    )
    if not chosen:
        return "Settings: the defaults."
    return "Settings: " + ", ".join(f"`{k}={environ[k]}`" for k in chosen) + "; the rest at their defaults."


def run_one(name: str) -> None:
    module = importlib.import_module(f"bench.bench_{name}")
    print(f"== benchmark: {name}", flush=True)
    # Other work on the machine slows a benchmark down; the load average says how quiet it was.
    load_before = os.getloadavg()[0]
    body = module.run()
    load_after = os.getloadavg()[0]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## {module.TITLE}\n\n_Measured {stamp} on {machine_description()}; 1-minute load average "
        f"{load_before:.1f} before, {load_after:.1f} after. {settings_text(name)}_\n\n{body.strip()}\n"
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.md").write_text(section)


def assemble() -> None:
    parts = [
        "# Benchmarks\n",
        "Written by `make bench` (scripts in `bench/`); do not edit by hand. "
        "Rerun one part with `.venv/bin/python -m bench NAME`.\n",
    ]
    for name in BENCHMARKS:
        result = RESULTS_DIR / f"{name}.md"
        parts.append(result.read_text() if result.exists() else f"## {name}\n\n_Not run yet._\n")
    OUTPUT.write_text("\n".join(parts))


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in argv or BENCHMARKS:
        run_one(name)
    assemble()
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
