"""A stateful ESP emulator (Mailchimp + Klaviyo subsets) on 127.0.0.1, for tests and benchmarks.

In a test:

    with EspEmulator() as esp:
        requests.post(f"{esp.base_url}/3.0/lists/L1", auth=("any", esp.mailchimp_api_key), json=...)
        esp.faults.queue(FaultSpec(FaultKind.UNAVAILABLE, path_prefix="/api/", count=2))
        esp.mailchimp.members("L1"), esp.klaviyo.profiles(), esp.stats.count(...)

As a process (binds 127.0.0.1 only):

    python -m reverse_etl.testing.emulator --port 8025

A process exposes an admin API, not counted in the stats: GET /_emulator/health, GET /_emulator/stats,
POST /_emulator/reset, POST /_emulator/wait-idle?timeout=S, POST /_emulator/faults (a FaultSpec as JSON) and
POST /_emulator/rejects (a reject rule as JSON). `reverse_etl.testing.remote.EmulatorProcess` drives it.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from reverse_etl.testing.common import Request, Response, dumps, loads
from reverse_etl.testing.faults import FaultInjector, FaultKind, FaultSpec
from reverse_etl.testing.klaviyo import JobRunner, KlaviyoApi
from reverse_etl.testing.mailchimp import MAX_CONNECTIONS, MailchimpApi
from reverse_etl.testing.openapi import SpecError, load_operations, resolve_specs_dir
from reverse_etl.testing.ratelimit import RateLimit
from reverse_etl.testing.server import Dispatcher, EmulatorHTTPServer, Outcome
from reverse_etl.testing.stats import Stats

HOST = "127.0.0.1"  # never another interface: the emulator has no real authentication
DEFAULT_MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
DEFAULT_KLAVIYO_KEY = "pk_emulator0123456789abcdef0123456789"


class EspEmulator:
    """The emulator: vendor APIs, fault injector, stats, and the HTTP server around them.

    Parameters worth knowing:
      klaviyo_rate_limits: True enforces each endpoint's documented burst/steady limits from the specs, False
        disables rate limiting, a mapping {operationId: RateLimit} overrides single endpoints (others keep the
        documented limits).
      job_delay: seconds a Klaviyo job stays queued before the worker processes it.
      mailchimp_lists: None accepts any list id; otherwise other ids are 404.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        specs_dir: str | Path | None = None,
        mailchimp_api_key: str = DEFAULT_MAILCHIMP_KEY,
        klaviyo_api_key: str = DEFAULT_KLAVIYO_KEY,
        mailchimp_lists: Iterable[str] | None = None,
        mailchimp_max_connections: int = MAX_CONNECTIONS,
        klaviyo_rate_limits: bool | Mapping[str, RateLimit] = True,
        job_delay: float = 0.005,
        job_processing_time: float = 0.0,
        strict_fields: bool = True,
        fast_validation: bool = True,
    ) -> None:
        self.port = port
        self.specs_dir = resolve_specs_dir(specs_dir)
        klaviyo_specs = self.specs_dir / "klaviyo"
        if not klaviyo_specs.is_dir():
            raise SpecError(f"no klaviyo/ directory in the ESP specs at {self.specs_dir}")
        self.mailchimp_api_key = mailchimp_api_key
        self.klaviyo_api_key = klaviyo_api_key
        self.faults = FaultInjector()
        self.stats = Stats()
        self._stop = threading.Event()
        self.runner = JobRunner(job_delay, job_processing_time, self._stop)
        self.mailchimp = MailchimpApi(
            self.faults, mailchimp_api_key, mailchimp_max_connections, mailchimp_lists
        )
        operations = load_operations(klaviyo_specs, strict=strict_fields, fast=fast_validation)
        self.klaviyo = KlaviyoApi(operations, self.faults, klaviyo_api_key, self.runner, klaviyo_rate_limits)
        self._dispatcher = Dispatcher(
            self.faults,
            self._stop,
            {"/3.0/": self.mailchimp, "/api/": self.klaviyo},
            gate=self._gate,
            admin=self._admin,
        )
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> EspEmulator:
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = EmulatorHTTPServer((HOST, self.port), self)
        self.port = self._server.server_port
        self.runner.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="esp-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stop.set()  # ends fault holds and the job worker
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.runner.join(5)
        self._server = None

    def __enter__(self) -> EspEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Both vendors share it: Mailchimp under /3.0, Klaviyo under /api."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; use it as a context manager or call start()")
        return f"http://{HOST}:{self.port}"

    @property
    def mailchimp_url(self) -> str:
        return f"{self.base_url}/3.0"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start (keep-alive clients reuse one per thread)."""
        return self._server.connections_accepted if self._server is not None else 0

    # -- state -----------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all vendor state, counters and faults (the server keeps running)."""
        self.faults.clear()
        self.mailchimp.reset()
        self.klaviyo.reset()
        self.stats.reset()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait for queued Klaviyo jobs to finish."""
        return self.klaviyo.wait_idle(timeout)

    def summary(self) -> dict[str, Any]:
        """Counts for a process-mode client (and for humans)."""
        stats = self.stats.snapshot()
        return {
            **stats.as_json(),
            "connections_accepted": self.connections_accepted,
            "mailchimp": {
                "members": {
                    list_id: len(self.mailchimp.members(list_id)) for list_id in self.mailchimp.list_ids()
                },
                "status_changes": len(self.mailchimp.status_changes),
                "consent_changes": len(self.mailchimp.consent_changes()),
                "erasures": len(self.mailchimp.erasures),
                "duplicate_creates": sum(1 for n in self.mailchimp.creates.values() if n > 1),
            },
            "klaviyo": {
                "profiles": self.klaviyo.profile_count(),
                "subscription_changes": len(self.klaviyo.subscription_changes),
                "erasures": len(self.klaviyo.erasures),
                "duplicate_creates": sum(1 for n in self.klaviyo.creates.values() if n > 1),
            },
        }

    # -- request path (called from connection threads) -------------------------------------------------------
    def dispatch(self, req: Request) -> Outcome:
        return self._dispatcher.dispatch(req)

    def _gate(self, req: Request) -> tuple[Callable[[], None] | None, Response | None]:
        """Mailchimp's limit of simultaneous connections per API key; other vendors pass."""
        if not req.path.startswith("/3.0/"):
            return None, None
        key, ok = self.mailchimp.enter(req)
        return (lambda: self.mailchimp.leave(key)), (None if ok else self.mailchimp.too_many_connections())

    def _admin(self, req: Request) -> Response | None:
        action = (req.method, req.path.rstrip("/"))
        if action == ("GET", "/_emulator/health"):
            return Response(200, dumps({"ok": True}))
        if action == ("GET", "/_emulator/stats"):
            return Response(200, dumps(self.summary()))
        if action == ("POST", "/_emulator/reset"):
            self.reset()
            return Response(204)
        if action == ("POST", "/_emulator/wait-idle"):
            timeout = float(req.query_one("timeout") or 30)
            return Response(200, dumps({"idle": self.wait_idle(timeout)}))
        if action == ("POST", "/_emulator/faults"):
            # Process mode has no Python API: a FaultSpec as JSON, e.g. {"kind": "unavailable", "count": 2}.
            try:
                fields = loads(req.body)
                spec = FaultSpec(**{**fields, "kind": FaultKind(fields["kind"])})
            except (ValueError, TypeError, KeyError) as exc:
                return Response(400, dumps({"error": f"bad fault spec: {exc}"}))
            self.faults.queue(spec)
            return Response(204)
        if action == ("POST", "/_emulator/rejects"):
            # {"emails": [...], "vendor": "klaviyo", "code": "...", "message": "...", "limit": 1}
            try:
                fields = loads(req.body)
                self.faults.reject(fields.pop("emails", ()), **fields)
            except (ValueError, TypeError) as exc:
                return Response(400, dumps({"error": f"bad reject rule: {exc}"}))
            return Response(204)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument(
        "--specs-dir", help="vendor OpenAPI specs (default: $ESP_SPECS_DIR or ../shared/esp-specs)"
    )
    parser.add_argument("--mailchimp-key", default=DEFAULT_MAILCHIMP_KEY)
    parser.add_argument("--klaviyo-key", default=DEFAULT_KLAVIYO_KEY)
    parser.add_argument("--mailchimp-list", action="append", help="known list id (repeatable; default: any)")
    parser.add_argument("--job-delay", type=float, default=0.005, help="seconds a Klaviyo job stays queued")
    parser.add_argument("--no-rate-limits", action="store_true", help="do not enforce Klaviyo rate limits")
    args = parser.parse_args(argv)
    try:
        esp = EspEmulator(
            port=args.port,
            specs_dir=args.specs_dir,
            mailchimp_api_key=args.mailchimp_key,
            klaviyo_api_key=args.klaviyo_key,
            mailchimp_lists=args.mailchimp_list,
            klaviyo_rate_limits=not args.no_rate_limits,
            job_delay=args.job_delay,
        )
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with esp:
        print(f"ESP emulator listening on {esp.base_url}", flush=True)
        while not done.wait(0.5):
            # The process keeps every member and profile (millions in a benchmark), and each full collection
            # walked them all again. Freezing what exists moves it out of the collector's sight; reference
            # counting still frees it, and the emulator's state makes no reference cycles.
            gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
