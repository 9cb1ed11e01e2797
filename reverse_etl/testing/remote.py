"""Run the emulator in its own process and drive it over its admin API.

In-process (`EspEmulator` in a thread) is simplest for tests, but the emulator then shares the GIL with the
code under test. A benchmark should give it its own process (and core):

    with EmulatorProcess(extra_args=["--no-rate-limits"]) as esp:
        sync(base_url=esp.base_url, api_key=esp.mailchimp_api_key, ...)
        esp.wait_idle()
        assert esp.summary()["mailchimp"]["duplicate_creates"] == 0
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from reverse_etl.testing.emulator import DEFAULT_KLAVIYO_KEY, DEFAULT_MAILCHIMP_KEY
from reverse_etl.testing.faults import FaultSpec

REPO = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    def __init__(
        self,
        port: int = 0,
        mailchimp_api_key: str = DEFAULT_MAILCHIMP_KEY,
        klaviyo_api_key: str = DEFAULT_KLAVIYO_KEY,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
        startup_timeout: float = 30.0,
    ) -> None:
        self.mailchimp_api_key = mailchimp_api_key
        self.klaviyo_api_key = klaviyo_api_key
        self._command = [
            python,
            "-m",
            "reverse_etl.testing.emulator",
            "--port",
            str(port),
            "--mailchimp-key",
            mailchimp_api_key,
            "--klaviyo-key",
            klaviyo_api_key,
            *extra_args,
        ]
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._session = requests.Session()
        self.base_url = ""

    def start(self) -> EmulatorProcess:
        self._process = subprocess.Popen(
            self._command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()  # the process prints its URL once it listens
        if not line.startswith("ESP emulator listening on "):
            self.stop()
            raise RuntimeError(f"emulator failed to start: {line!r}")
        self.base_url = line.rsplit(" ", 1)[1]
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        if self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        self._session.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def mailchimp_url(self) -> str:
        return f"{self.base_url}/3.0"

    @property
    def pid(self) -> int | None:
        """The emulator's process id (e.g. to read its CPU time in a benchmark)."""
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def _admin(self, method: str, action: str, **kwargs: Any) -> requests.Response:
        response = self._session.request(method, f"{self.base_url}/_emulator/{action}", timeout=60, **kwargs)
        response.raise_for_status()
        return response

    def summary(self) -> dict[str, Any]:
        return dict(self._admin("GET", "stats").json())

    def reset(self) -> None:
        self._admin("POST", "reset")

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return bool(self._admin("POST", "wait-idle", params={"timeout": timeout}).json()["idle"])

    def queue_fault(self, spec: FaultSpec) -> None:
        self._admin("POST", "faults", json={**asdict(spec), "kind": spec.kind.value})

    def reject(self, emails: Iterable[str], **rule: Any) -> None:
        self._admin("POST", "rejects", json={"emails": list(emails), **rule})
