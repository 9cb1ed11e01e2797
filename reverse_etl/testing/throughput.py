"""Measure the emulator's throughput with one single-threaded `requests.Session` client.

    python -m reverse_etl.testing.throughput [--mailchimp-batches N] [--klaviyo-jobs N]

Bodies are encoded before the clock starts, so the figures are the emulator's (and the HTTP stack's) cost, not
the client's JSON encoding. By default client and emulator share one process and one GIL, as they do in the
reverse-ETL tests; `--process` runs the emulator in its own process, as a benchmark should. Klaviyo rate
limits are off, since they would measure the limiter instead.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Protocol

import requests

from reverse_etl.testing.common import dumps
from reverse_etl.testing.emulator import EspEmulator
from reverse_etl.testing.klaviyo import MAX_IMPORT_PROFILES
from reverse_etl.testing.mailchimp import MAX_BATCH_MEMBERS
from reverse_etl.testing.remote import EmulatorProcess


class Target(Protocol):
    """An in-process `EspEmulator` or an `EmulatorProcess`."""

    base_url: str
    mailchimp_api_key: str
    klaviyo_api_key: str

    @property
    def mailchimp_url(self) -> str: ...

    def wait_idle(self, timeout: float = ...) -> bool: ...


@dataclass(frozen=True)
class Throughput:
    calls: int
    records: int
    seconds: float
    cpu_seconds: float  # this process only: client + emulator in-process, the client alone with --process

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds


def merge_fields(i: int) -> dict[str, str]:
    """Shaped like an esp_audience row's merge fields (first name, segment, tier, risk, 3 products, offer)."""
    fields = {"FNAME": f"Name{i}", "SEGMENT": "loyal", "LTV_TIER": "High", "CHURN": "low", "OFFER": "SAVE10"}
    for n in (1, 2, 3):
        fields[f"P{n}_NAME"] = f"Product {i % 97 + n}"
        fields[f"P{n}_URL"] = f"https://shop.example.com/p/{i % 997 + n}"
        fields[f"P{n}_IMG"] = f"https://cdn.example.com/i/{i % 997 + n}.jpg"
    return fields


def mailchimp_body(start: int, size: int = MAX_BATCH_MEMBERS) -> bytes:
    members = [
        {
            "email_address": f"user{i}@example.com",
            "status_if_new": "subscribed",
            "merge_fields": merge_fields(i),
        }
        for i in range(start, start + size)
    ]
    return dumps({"members": members, "update_existing": True})


def klaviyo_body(start: int, size: int = MAX_IMPORT_PROFILES) -> bytes:
    profiles = [
        {
            "type": "profile",
            "attributes": {
                "email": f"user{i}@example.com",
                "external_id": f"person-{i}",
                "first_name": f"Name{i}",
                # Fewer properties than Mailchimp's merge fields: 10k full audience rows (~550 B each) exceed
                # Klaviyo's 5 MB job limit, so a real sync sends smaller jobs; this keeps 10k in one job.
                "properties": {k: v for k, v in merge_fields(i).items() if not k.startswith(("P2", "P3"))},
            },
        }
        for i in range(start, start + size)
    ]
    return dumps(
        {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}}
    )


def measure_mailchimp(esp: Target, batches: int, list_id: str = "bench") -> Throughput:
    bodies = [mailchimp_body(b * MAX_BATCH_MEMBERS) for b in range(batches)]
    with requests.Session() as session:
        session.auth = ("bench", esp.mailchimp_api_key)
        session.headers["Content-Type"] = "application/json"
        url = f"{esp.mailchimp_url}/lists/{list_id}"
        started, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            response = session.post(url, data=body)
            response.raise_for_status()
        seconds = time.perf_counter() - started
    return Throughput(batches, batches * MAX_BATCH_MEMBERS, seconds, time.process_time() - cpu)


def measure_klaviyo(esp: Target, jobs: int) -> tuple[Throughput, Throughput]:
    """(POSTs accepted, all jobs complete)."""
    bodies = [klaviyo_body(j * MAX_IMPORT_PROFILES) for j in range(jobs)]
    with requests.Session() as session:
        session.headers.update(
            {
                "Authorization": f"Klaviyo-API-Key {esp.klaviyo_api_key}",
                "revision": "2026-07-15",
                "Content-Type": "application/vnd.api+json",
            }
        )
        url = f"{esp.base_url}/api/profile-bulk-import-jobs"
        started, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            response = session.post(url, data=body)
            response.raise_for_status()
        accepted, accepted_cpu = time.perf_counter() - started, time.process_time() - cpu
        if not esp.wait_idle(300):
            raise RuntimeError("Klaviyo jobs did not finish")
        done, done_cpu = time.perf_counter() - started, time.process_time() - cpu
    records = jobs * MAX_IMPORT_PROFILES
    return Throughput(jobs, records, accepted, accepted_cpu), Throughput(jobs, records, done, done_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailchimp-batches", type=int, default=200)
    parser.add_argument("--klaviyo-jobs", type=int, default=20)
    parser.add_argument("--process", action="store_true", help="run the emulator in its own process")
    args = parser.parse_args()
    target: EspEmulator | EmulatorProcess
    if args.process:
        target = EmulatorProcess(extra_args=["--no-rate-limits", "--job-delay", "0"])
    else:
        target = EspEmulator(klaviyo_rate_limits=False, job_delay=0.0)
    with target as esp:
        create = measure_mailchimp(esp, args.mailchimp_batches)
        update = measure_mailchimp(esp, args.mailchimp_batches)
        accepted, complete = measure_klaviyo(esp, args.klaviyo_jobs)
    rows = [
        ("Mailchimp batch (500 members), creates", create, "calls", "members"),
        ("Mailchimp batch (500 members), updates", update, "calls", "members"),
        ("Klaviyo import (10k profiles), accepted", accepted, "jobs", "profiles"),
        ("Klaviyo import (10k profiles), complete", complete, "jobs", "profiles"),
    ]
    for label, t, calls, records in rows:
        print(
            f"{label}: {t.calls_per_second:6.2f} {calls}/s = {t.records_per_second:7.0f} {records}/s"
            f" ({t.cpu_seconds / t.records * 1e6:4.1f} us CPU per record in this process)"
        )


if __name__ == "__main__":
    main()
