"""`personalize` command line: bad arguments give a clear message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_app.landing_zone import snapshot_folder
from datagen import GeneratorConfig
from personalize.cli import main
from personalize.settings import Settings

PERSONALIZE = str(Path(sys.executable).with_name("personalize"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--customers", "abc", "--seed", "1"], "argument --customers: expected a whole number, got 'abc'"),
        (["--customers", "0", "--seed", "1"], "argument --customers: must be at least 1, got 0"),
        (["--customers", "10", "--seed", "x"], "argument --seed: expected a whole number, got 'x'"),
        (["--customers", "10"], "the following arguments are required: --seed"),
        (["--customers", "10", "--seed", "1", "--as-of", "2025-13-01"],
         "argument --as-of: expected a date as YYYY-MM-DD, got '2025-13-01'"),
        (["--customers", "10", "--seed", "1", "--horizon-days", "-5"],
         "argument --horizon-days: must be at least 1, got -5"),
        (["--customers", "10", "--seed", "1", "--format", "xlsx"],
         "argument --format: invalid choice: 'xlsx'"),
    ],
)  # fmt: skip
def test_bad_generate_arguments_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["generate", *arguments, "--out", str(tmp_path / "out")])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.write_text("not a directory")

    code = main(["generate", "--customers", "10", "--seed", "1", "--out", str(target)])

    assert code == 2
    assert f"--out {target} exists and is not a directory" in capsys.readouterr().err
    assert target.read_text() == "not a directory"


def test_backtest_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_id,email,status,currency,total,created_at,updated_at\n")
    target = tmp_path / "taken"
    target.write_text("not a directory")

    code = main(
        [
            "backtest",
            "--orders",
            str(orders),
            "--cutoff",
            "2025-01-01",
            "--horizon-days",
            "30",
            "--out",
            str(target),
        ]
    )

    assert code == 2
    assert f"--out {target} exists and is not a directory" in capsys.readouterr().err
    assert target.read_text() == "not a directory"


def test_dbt_reads_relative_paths_from_where_the_command_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run_dbt runs dbt in the warehouse's folder; `personalize backtest --out data/backtest` once looked
    # for data/backtest/data/backtest/raw there.
    monkeypatch.chdir(tmp_path)
    settings = Settings(raw_dir=Path("out/raw"), duckdb_path=Path("out/warehouse.duckdb"))

    environment = settings.dbt_env()

    assert environment["PERSONALIZE_RAW_DIR"] == str(tmp_path / "out" / "raw")
    assert environment["PERSONALIZE_DUCKDB_PATH"] == str(tmp_path / "out" / "warehouse.duckdb")


def test_run_never_generates_the_demo_over_a_users_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    mine = raw / "crm_customers" / "mine.csv"
    mine.parent.mkdir(parents=True)
    mine.write_text("customer_id,email\nc-1,ann@example.com\n")
    (raw / "shop_orders").mkdir()
    (raw / "shop_orders" / "notes.txt").write_text("not an export")
    monkeypatch.setenv("PERSONALIZE_RAW_DIR", str(raw))
    monkeypatch.setenv("PERSONALIZE_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))

    code = main(["run"])

    assert code == 2
    assert "has no shop_orders export but holds files in crm_customers" in capsys.readouterr().err
    assert mine.read_text() == "customer_id,email\nc-1,ann@example.com\n"
    assert sorted(path.name for path in raw.iterdir()) == ["crm_customers", "shop_orders"]


def test_an_orders_export_is_found_whatever_the_case_of_its_suffix(tmp_path: Path) -> None:
    folder = tmp_path / "shop_orders"
    folder.mkdir()
    for name in ("ORDERS.CSV", "b.Csv.Gz", "c.PARQUET", ".hidden.csv", "notes.txt"):
        (folder / name).write_text("")

    assert sorted(file.name for file in snapshot_folder(folder).files) == [
        "ORDERS.CSV",
        "b.Csv.Gz",
        "c.PARQUET",
    ]


def test_unknown_command_from_the_installed_script() -> None:
    completed = subprocess.run([PERSONALIZE, "frobnicate"], capture_output=True, text=True, check=False)

    assert completed.returncode == 2
    assert "invalid choice: 'frobnicate'" in completed.stderr


def test_help_lists_the_commands() -> None:
    completed = subprocess.run([PERSONALIZE, "--help"], capture_output=True, text=True, check=True)

    assert "generate" in completed.stdout
    assert "run" in completed.stdout


def _campaigns(out: Path) -> int:
    files = str(out / "esp_events" / "*.parquet")
    with duckdb.connect() as con:
        return con.execute(f"select count(distinct campaign_id) from read_parquet('{files}')").fetchall()[0][
            0
        ]


def test_email_history_days_sets_how_many_weeks_of_campaigns_are_written(tmp_path: Path) -> None:
    base = ["generate", "--customers", "40", "--seed", "3", "--as-of", "2025-12-31"]
    assert main([*base, "--out", str(tmp_path / "default")]) == 0
    assert main([*base, "--email-history-days", "21", "--out", str(tmp_path / "three_weeks")]) == 0

    # Weekly campaigns: a span of D days holds D / 7 of them, give or take the one at its edge.
    default_days = GeneratorConfig.__dataclass_fields__["email_history_days"].default
    assert abs(_campaigns(tmp_path / "default") - default_days / 7) <= 1
    assert abs(_campaigns(tmp_path / "three_weeks") - 3) <= 1
    # The help states the generator's own default.
    help_text = subprocess.run(
        [PERSONALIZE, "generate", "--help"], capture_output=True, text=True, check=True
    )
    assert f"the generator's, {default_days})" in " ".join(help_text.stdout.split())
