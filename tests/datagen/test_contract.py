"""Output layout and the raw data contract: folders, columns in order, all strings; config validation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from datagen import RAW_COLUMNS, SOURCES, DefectRates, GeneratorConfig, generate

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.datagen.conftest import Dataset


def test_every_source_has_the_contract_columns_in_order_as_strings(main: Dataset) -> None:
    assert set(SOURCES) == set(RAW_COLUMNS) and len(SOURCES) == 8
    for source in SOURCES:
        files = sorted((main.out / source).glob("part-*.parquet"))
        assert files, source
        for f in files:
            schema = pq.read_schema(f)
            assert tuple(schema.names) == RAW_COLUMNS[source], f
            assert all(str(t) == "string" for t in schema.types), (f, schema.types)
        described = main.sql(f"describe {source}")
        assert [r[0] for r in described] == list(RAW_COLUMNS[source])
        assert {r[1] for r in described} == {"VARCHAR"}
        assert main.one(f"select count(*) from {source}") == main.summary.rows[source] > 0


def test_big_sources_are_split_into_parts_and_summary_lists_every_file(main: Dataset) -> None:
    web_parts = sorted((main.out / "web_events").glob("part-*.parquet"))
    assert len(web_parts) >= 2
    assert [p.name for p in web_parts] == [f"part-{i:05d}.parquet" for i in range(len(web_parts))]
    listed = set(main.summary.paths)
    on_disk = {p for p in main.out.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert main.summary.bytes_written == sum(p.stat().st_size for p in on_disk)
    assert main.summary.files == len(on_disk)
    assert main.summary.persons == main.one("select count(*) from truth_persons")


def test_csv_output_has_headers_and_the_same_columns(make_dataset: Callable[..., Dataset]) -> None:
    ds = make_dataset("csv", customers=400, seed=3, format="csv", horizon_days=30)
    for source in SOURCES:
        files = sorted((ds.out / source).glob("part-*.csv"))
        assert files and not list((ds.out / source).glob("*.parquet"))
        header = files[0].read_text().splitlines()[0]
        assert header.replace('"', "").split(",") == list(RAW_COLUMNS[source])
        table = pacsv.read_csv(
            files[0],
            convert_options=pacsv.ConvertOptions(
                column_types={c: "string" for c in RAW_COLUMNS[source]}, strings_can_be_null=True
            ),
        )
        assert table.num_rows == ds.summary.rows[source] or len(files) > 1
    for name in ("identities", "persons", "defects", "future_orders", "future_order_details", "fx_rates"):
        assert (ds.out / "_truth" / f"{name}.csv").exists()
    # Nulls stay nulls (not empty strings) through CSV.
    assert ds.one("select count(*) from shop_orders where customer_id is null") > 0
    assert ds.one("select count(*) from shop_orders where customer_id = ''") == 0


def test_rerun_replaces_generated_folders_but_keeps_unrelated_files(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    (out / "web_events").mkdir(parents=True)
    stale = out / "web_events" / "part-09999.parquet"
    stale.write_bytes(b"stale")
    (out / "_truth").mkdir()
    (out / "_truth" / "old.parquet").write_bytes(b"old")
    keep = out / "notes.txt"
    keep.write_text("mine")
    other = out / "other_source" / "x.csv"
    other.parent.mkdir()
    other.write_text("a\n1\n")
    generate(GeneratorConfig(customers=200, seed=1, out=out))
    assert not stale.exists() and not (out / "_truth" / "old.parquet").exists()
    assert keep.read_text() == "mine" and other.read_text() == "a\n1\n"
    assert not (out / ".datagen-staging").exists()
    assert (out / "web_events" / "part-00000.parquet").exists()
    # Without a horizon there is no future truth.
    assert not (out / "_truth" / "future_orders.parquet").exists()


def test_progress_reports_rows_per_source(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = generate(GeneratorConfig(customers=300, seed=2, out=tmp_path / "o"), progress=lines.append)
    for source in SOURCES:
        assert f"{source}: {summary.rows[source]:,} rows" in lines


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": -5}, "customers"),
        ({"customers": 2.5}, "customers"),
        ({"seed": -1}, "seed"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"format": "xml"}, "format"),
        ({"history_days": 10}, "history_days"),
        ({"email_history_days": 3}, "email_history_days"),
        ({"anonymous_share": 1.5}, "anonymous_share"),
        ({"defects": {"invalid_email": 0.1}}, "defects"),
        ({"products": 5}, "products"),
    ],
)
def test_config_validation(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"customers": 10, "seed": 1, "out": tmp_path}
    with pytest.raises(ValueError, match=message):
        base.update(kwargs)
        GeneratorConfig(**base)  # type: ignore[arg-type]


def test_defect_rates_reject_negative_values() -> None:
    with pytest.raises(ValueError, match="bot_visitor"):
        DefectRates(bot_visitor=-0.1)
    assert all(v == 0.0 for v in vars(DefectRates.none()).values())
