"""Each BENCHMARKS.md section names the settings it ran with, so its figures can be reproduced."""

from __future__ import annotations

import importlib

import pytest

from bench.__main__ import BENCHMARKS, settings_text


def test_a_benchmark_lists_its_own_variables_and_the_shared_ones_that_were_set() -> None:
    environ = {
        "BENCH_ML_SIZES": "100000,1000000",
        "BENCH_ML_SYNTHETIC": "20000:42-46",
        "BENCH_STAGING_SIZES": "1000000",
        "PERSONALIZE_DUCKDB_MEMORY_LIMIT": "16GB",
        "PERSONALIZE_DBT_THREADS": "",
        "HOME": "/root",
    }
    assert settings_text("ml", environ) == (
        "Settings: `BENCH_ML_SIZES=100000,1000000`, `BENCH_ML_SYNTHETIC=20000:42-46`, "
        "`PERSONALIZE_DUCKDB_MEMORY_LIMIT=16GB`; the rest at their defaults."
    )
    assert "BENCH_ML" not in settings_text("staging", environ)
    assert "`BENCH_STAGING_SIZES=1000000`" in settings_text("staging", environ)


def test_no_settings_means_the_defaults() -> None:
    assert settings_text("marts", {"HOME": "/root"}) == "Settings: the defaults."


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_module_imports_and_has_a_title_and_a_run(name: str) -> None:
    # `make bench` imports each module only when its turn comes, after an hour of other benchmarks; a
    # broken import (bench_marts once imported a helper that bench_staging had renamed) must fail here.
    module = importlib.import_module(f"bench.bench_{name}")
    assert isinstance(module.TITLE, str) and module.TITLE
    assert callable(module.run)
