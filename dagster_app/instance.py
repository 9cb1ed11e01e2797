"""The Dagster instance settings every deployment of this project needs: `$DAGSTER_HOME/dagster.yaml`.

`make ui` and the tests write it with `ensure_instance_config`, so they run under the same rules:

- DuckDB admits one writing process. Runs are queued and started one at a time, and every step that opens
  the warehouse claims a slot of the `duckdb` pool (limit 1), so two runs launched together (a schedule
  firing while someone clicks "Materialize") wait for each other instead of failing with "Could not set
  lock". Inside a run the in-process executor (definitions.py) keeps steps sequential.
- A run whose worker died (killed, out of memory) is retried once. A run that failed because an asset or a
  check failed is not: those retries are decided per step (see `dagster_app.assets.dbt`), so a failing dbt
  test is not re-run for nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

DUCKDB_POOL = "duckdb"
INSTANCE_CONFIG_FILE = "dagster.yaml"

REQUIRED_SETTINGS: dict[str, Any] = {
    # There is no network to send telemetry to, and the first-visit dialog would cover the asset graph.
    "telemetry": {"enabled": False},
    "nux": {"enabled": False},
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
    },
    "concurrency": {
        "runs": {"max_concurrent_runs": 1},
        "pools": {"default_limit": 1},
    },
    "run_retries": {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False},
}


def ensure_instance_config(dagster_home: Path) -> Path:
    """Write the settings above into `dagster_home/dagster.yaml`, keeping any other settings already there.

    Idempotent. The settings above win over existing values, because a second concurrent writer is what
    they prevent.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / INSTANCE_CONFIG_FILE
    existing = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    config = dict(existing or {})
    config.update(REQUIRED_SETTINGS)
    if config != existing:
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":  # `python -m dagster_app.instance $DAGSTER_HOME` (used by `make ui`)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m dagster_app.instance DAGSTER_HOME")
    print(f"dagster instance settings: {ensure_instance_config(Path(sys.argv[1]))}")
