"""`personalize` command line: bad arguments give a clear message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from personalize.cli import main

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


def test_unknown_command_from_the_installed_script() -> None:
    completed = subprocess.run([PERSONALIZE, "frobnicate"], capture_output=True, text=True, check=False)

    assert completed.returncode == 2
    assert "invalid choice: 'frobnicate'" in completed.stderr


def test_help_lists_the_commands() -> None:
    completed = subprocess.run([PERSONALIZE, "--help"], capture_output=True, text=True, check=True)

    assert "generate" in completed.stdout
    assert "run" in completed.stdout
