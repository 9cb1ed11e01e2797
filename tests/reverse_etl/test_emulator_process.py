"""The emulator as a separate process, its bind address, and a throughput floor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from reverse_etl.testing import EspEmulator, FaultKind, FaultSpec
from reverse_etl.testing.remote import EmulatorProcess
from reverse_etl.testing.throughput import measure_klaviyo, measure_mailchimp
from tests.reverse_etl.esp_helpers import batch, member

REPO = Path(__file__).resolve().parents[2]


def test_runs_as_a_process_on_loopback() -> None:
    with EmulatorProcess(mailchimp_api_key="k-us1") as esp:
        assert esp.base_url.startswith("http://127.0.0.1:")
        assert requests.get(f"{esp.base_url}/_emulator/health", timeout=5).json() == {"ok": True}
        url = f"{esp.mailchimp_url}/lists/L1"
        created = requests.post(url, json=batch([member("a@example.com")]), auth=("u", "k-us1"), timeout=5)
        assert created.json()["total_created"] == 1
        summary = esp.summary()
        assert summary["mailchimp"]["members"] == {"L1": 1}
        assert summary["requests"] == [
            {"method": "POST", "template": "/3.0/lists/{list_id}", "status": 200, "count": 1}
        ]

        # Faults and rejects through the admin API.
        esp.queue_fault(FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/3.0/", retry_after=None))
        esp.reject(["b@example.com"], vendor="mailchimp", code="ERROR_GENERIC")
        assert (
            requests.post(
                url, json=batch([member("b@example.com")]), auth=("u", "k-us1"), timeout=5
            ).status_code
            == 503
        )
        rejected = requests.post(url, json=batch([member("b@example.com")]), auth=("u", "k-us1"), timeout=5)
        assert rejected.json()["error_count"] == 1
        bad = requests.post(f"{esp.base_url}/_emulator/faults", json={"kind": "nope"}, timeout=5)
        assert bad.status_code == 400

        esp.reset()
        assert esp.summary()["mailchimp"]["members"] == {}
        assert esp.wait_idle(5)
        process = esp._process
        assert process is not None
    assert process.returncode == 0  # SIGTERM ends it cleanly


def test_missing_specs_fail_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reverse_etl.testing.emulator", "--specs-dir", str(tmp_path / "absent")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "ESP OpenAPI specs not found" in result.stderr
    assert str(tmp_path / "absent") in result.stderr


def test_binds_loopback_only(esp: EspEmulator) -> None:
    assert esp.base_url.startswith("http://127.0.0.1:")
    assert esp._server is not None and esp._server.server_address[0] == "127.0.0.1"


def test_bulk_loads_are_stored_whole() -> None:
    """The bulk paths the throughput tool drives (reverse_etl.testing.throughput) store every record once.

    How fast they are is measured by `make bench` (bench/bench_sync.py: rows/s of whole syncs through the
    emulator), not asserted here: a rate floor in the test suite fails on a busy machine, not on slow code.
    """
    with EspEmulator(klaviyo_rate_limits=False, job_delay=0.0) as esp:
        mailchimp = measure_mailchimp(esp, batches=20)
        accepted, complete = measure_klaviyo(esp, jobs=2)
        assert len(esp.mailchimp.members("bench")) == 20 * 500
        assert esp.klaviyo.profile_count() == 2 * 10_000
    assert mailchimp.records == 20 * 500 and complete.records == 2 * 10_000
    # A job is accepted (202) before it is processed: the accepted clock stops first.
    assert accepted.seconds <= complete.seconds
