"""Crash safety: a sync killed with SIGKILL mid-run resumes on the next run without losing or duplicating."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from reverse_etl.engine import sync
from reverse_etl.state import StateStore
from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from tests.reverse_etl.sync_fixtures import (
    LIST_ID,
    REVISION,
    expected_merge_fields,
    klaviyo,
    klaviyo_config,
    mailchimp,
    mailchimp_config,
    members,
    people,
    write_audience,
)

REPO = Path(__file__).resolve().parents[2]


def _make_warehouse(path: Path, n: int) -> list[dict[str, object]]:
    rows = people(range(n))
    con = duckdb.connect(str(path))
    write_audience(con, rows)
    con.close()  # DuckDB allows one writing process: the sync subprocess opens the file next
    return rows


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reverse_etl.run", "--quiet", *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], settle: float = 0.0, timeout: float = 30.0
) -> None:
    """SIGKILL the sync `settle` seconds after `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(
                f"sync ended before the kill: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the sync never got far enough")
        time.sleep(0.01)
    time.sleep(settle)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    if proc.stderr is not None:
        proc.stderr.close()


def test_mailchimp_killed_mid_run_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "warehouse.duckdb"
    rows = _make_warehouse(db, 2_000)
    with EspEmulator() as esp:
        monkeypatch.setenv("MAILCHIMP_API_KEY", esp.mailchimp_api_key)
        esp.faults.queue(
            FaultSpec(FaultKind.SLOW, path_prefix="/3.0/lists", method="POST", count=None, delay=0.1)
        )
        args = ["--db", str(db), "--destination", "mailchimp", "--base-url", esp.mailchimp_url]
        args += ["--list-id", LIST_ID, "--batch-size", "50", "--max-connections", "2"]
        proc = _start(args, {"MAILCHIMP_API_KEY": esp.mailchimp_api_key})
        # >= 24 batches of 50 at >= 0.1 s on 2 connections: >= 1.2 s in, past at least one group commit.
        _kill_when(proc, lambda: len(esp.mailchimp.members(LIST_ID)) >= 1_200)
        time.sleep(0.3)  # let the requests in flight at the kill land (applied, never confirmed)
        landed = len(esp.mailchimp.members(LIST_ID))
        assert 1_200 <= landed < 2_000  # killed mid-run

        esp.faults.clear()
        con = duckdb.connect(str(db))
        confirmed_before = len(StateStore(con).snapshot("mailchimp"))
        assert 0 < confirmed_before <= landed  # committed in groups, only what was confirmed
        assert StateStore(con).runs("mailchimp")[-1][3] == "running"  # the killed run never finished
        resumed = sync(con, mailchimp_config(), mailchimp(esp))
        assert resumed.outcome == "success"
        assert resumed.sent == 2_000 - confirmed_before  # nothing confirmed is sent again
        assert members(esp) == expected_merge_fields(rows)
        creates = esp.mailchimp.creates
        assert len(creates) == 2_000 and set(creates.values()) == {1}
        assert esp.mailchimp.status_changes == []
        assert sync(con, mailchimp_config(), mailchimp(esp)).sent == 0
        con.close()


def test_klaviyo_killed_while_polling_resumes_without_resubmitting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "warehouse.duckdb"
    rows = _make_warehouse(db, 500)
    with EspEmulator(job_delay=1.5, klaviyo_rate_limits=False) as esp:
        monkeypatch.setenv("KLAVIYO_API_KEY", esp.klaviyo_api_key)
        args = [
            "--db",
            str(db),
            "--destination",
            "klaviyo",
            "--base-url",
            esp.base_url,
            "--batch-size",
            "100",
        ]
        args += ["--consent-column", "is_subscribable", "--poll-interval", "0.05"]
        proc = _start(args, {"KLAVIYO_API_KEY": esp.klaviyo_api_key, "KLAVIYO_REVISION": REVISION})
        # Jobs finish 1.5 s after submission: 0.3 s after the 5th one the sync is polling.
        _kill_when(proc, lambda: len(esp.klaviyo.jobs()) >= 5, settle=0.3)
        assert len(esp.klaviyo.jobs()) == 5

        con = duckdb.connect(str(db))
        assert len(StateStore(con).pending_jobs("klaviyo")) >= 1  # recorded before polling
        resumed = sync(con, klaviyo_config(), klaviyo(esp))
        assert resumed.outcome == "success" and resumed.resumed_jobs >= 1
        assert len(esp.klaviyo.jobs()) == 5 + (resumed.sent + 99) // 100  # no pending job was re-submitted
        assert esp.wait_idle()
        got = {e: p.properties["offer"] for e, p in esp.klaviyo.profiles().items()}
        assert got == {r["email"]: r["offer"] for r in rows}
        assert set(esp.klaviyo.creates.values()) == {1}
        subscribed = {c.email for c in esp.klaviyo.subscription_changes}
        assert subscribed == {r["email"] for r in rows if r["is_subscribable"]}
        con.close()


def test_klaviyo_killed_mid_pipeline_resumes_without_loss_or_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while jobs are at every stage at once: finished and committed, finished but not yet committed,
    recorded and polled, uploading, not yet encoded."""
    db = tmp_path / "warehouse.duckdb"
    rows = _make_warehouse(db, 3_000)
    consenting = {r["email"] for r in rows if r["is_subscribable"]}
    with EspEmulator(job_delay=0.02, klaviyo_rate_limits=False) as esp:
        monkeypatch.setenv("KLAVIYO_API_KEY", esp.klaviyo_api_key)
        # 30 jobs of 100, each upload held 0.05 s: the sync needs >= 1.5 s, and finishes jobs as it goes;
        # 800 subscriptions (of 1,500 consenting people) are 16 jobs finished.
        esp.faults.queue(
            FaultSpec(
                FaultKind.SLOW,
                path_prefix="/api/profile-bulk-import-jobs",
                method="POST",
                count=None,
                delay=0.05,
            )
        )
        args = [
            "--db",
            str(db),
            "--destination",
            "klaviyo",
            "--base-url",
            esp.base_url,
            "--batch-size",
            "100",
        ]
        args += ["--consent-column", "is_subscribable", "--poll-interval", "0.02"]
        proc = _start(args, {"KLAVIYO_API_KEY": esp.klaviyo_api_key, "KLAVIYO_REVISION": REVISION})
        _kill_when(proc, lambda: len(esp.klaviyo.subscription_changes) >= 800)
        time.sleep(0.3)  # an upload held by the slow fault at the kill still lands (accepted, never recorded)
        assert esp.wait_idle()
        submitted = len(esp.klaviyo.jobs())
        assert submitted < 30  # killed mid-run, with jobs already finished
        esp.faults.clear()

        con = duckdb.connect(str(db))
        state = StateStore(con)
        committed, pending = len(state.snapshot("klaviyo")), state.pending_jobs("klaviyo")
        # >= 16 jobs finished, so >= 0.8 s in: past a group commit (every 0.5 s), with later jobs pending.
        assert committed > 0 and pending
        resumed = sync(con, klaviyo_config(), klaviyo(esp, max_profiles=100))
        assert resumed.outcome == "success"
        assert resumed.resumed_jobs == len(pending)
        # Only what was neither committed nor pending is sent again (a job accepted but not yet recorded at
        # the kill is among it: imports upsert by email), and no pending job is submitted again.
        assert resumed.sent == 3_000 - committed - sum(len(records) for _, records in pending)
        assert len(esp.klaviyo.jobs()) == submitted + (resumed.sent + 99) // 100
        assert esp.wait_idle()
        got = {e: p.properties["offer"] for e, p in esp.klaviyo.profiles().items()}
        assert got == {r["email"]: r["offer"] for r in rows}
        assert set(esp.klaviyo.creates.values()) == {1}  # nobody created twice
        changes = esp.klaviyo.subscription_changes
        assert {c.email for c in changes} == consenting  # every consenting person, nobody else
        assert {c.new for c in changes} == {"SUBSCRIBED"}
        assert len(state.snapshot("klaviyo")) == 3_000 and state.pending_jobs("klaviyo") == []
        assert sync(con, klaviyo_config(), klaviyo(esp)).sent == 0
        con.close()
