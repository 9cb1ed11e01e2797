"""Fixtures for the tests that run the dbt CLI (`personalize.dbt.run_dbt`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def cli_target_path() -> Iterator[None]:
    """dbt's saved parse for the CLI builds in a target folder of their own, apart from Dagster's.

    dbt throws its saved parse away whenever the profile differs from the one that saved it. These builds
    name the warehouse by its bare file name (run_dbt), Dagster's runs by its full path, and dagster-dbt
    starts every invocation from the parse saved in $DBT_TARGET_PATH. Sharing one folder, each side parsed
    the whole project again after every switch to the other (`dbt parse`: 11 CPU-s instead of 4.5), and the
    order in which files reach a worker decided how often. Module-scoped and autouse, so it is in place
    before the module's builds.
    """
    shared = os.environ.get("DBT_TARGET_PATH")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", f"{shared}-cli" if shared else "target/cli")
        yield
