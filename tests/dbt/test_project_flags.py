"""Project-wide dbt flags (dbt_project.yml `flags:`), which every dbt command of the project runs with."""

from __future__ import annotations

import pytest

from personalize.dbt import run_dbt
from personalize.settings import Settings


def test_dbt_sends_no_usage_events(isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment variable would override the project's flag either way: test the project alone.
    monkeypatch.delenv("DBT_SEND_ANONYMOUS_USAGE_STATS", raising=False)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)

    output = run_dbt(["debug", "--log-level", "debug"], isolated_settings, capture=True)

    assert "All checks passed" in output
    # With tracking on, dbt logs each event it tries to send at the start and end of the command.
    assert "Sending event" not in output
