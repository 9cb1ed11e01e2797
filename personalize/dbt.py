"""Run dbt commands against the project at the repository root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from personalize.settings import DUCKDB_PATH_ENV, PROJECT_DIR, Settings


class DbtError(RuntimeError):
    """A dbt command exited non-zero. `output` holds what dbt printed when it was captured."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def dbt_executable() -> str:
    # Prefer the dbt installed next to this interpreter (the project's .venv) over any other on PATH.
    local = Path(sys.executable).with_name("dbt")
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if found is None:
        raise DbtError("dbt is not installed; run `make install` first")
    return found


def run_dbt(
    args: Sequence[str], settings: Settings, *, vars_json: str | None = None, capture: bool = False
) -> str:
    """Run `dbt <args>` in the project directory and raise DbtError on failure.

    Output streams to the terminal, or is captured and returned when `capture` is set.
    """
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    command = [dbt_executable(), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if vars_json:
        command += ["--vars", vars_json]
    env = {**os.environ, **settings.dbt_env()}
    # dbt throws away its saved parse whenever the profile changes, and the warehouse path is part of the
    # profile. Running dbt from the warehouse's folder with a bare file name keeps the profile identical
    # across warehouses, so switching between them (as the tests do) costs no full re-parse. dbt resolves the
    # project, target and log paths from --project-dir, not from the working directory.
    env[DUCKDB_PATH_ENV] = settings.duckdb_path.name
    completed = subprocess.run(
        command,
        cwd=settings.duckdb_path.parent,
        env=env,
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    output = completed.stdout or ""
    if completed.returncode != 0:
        message = f"`dbt {' '.join(args)}` failed with exit code {completed.returncode}"
        if capture:
            # dbt's summary of what failed is at the end of its output.
            message += ":\n" + "\n".join(output.rstrip().splitlines()[-25:])
        raise DbtError(message, output)
    return output
