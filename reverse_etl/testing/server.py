"""HTTP plumbing: routing, fault application, and a keep-alive ThreadingHTTPServer that stays out of the way.

Throughput matters (a benchmark syncs 1M profiles through this server), so responses are written with one
`sendall` (status line, headers and body together), Nagle is off, HTTP/1.1 keep-alive is on, and each
connection gets its own thread. Request bodies are always read in full before anything else happens, so an
early error response never leaves unread bytes that would corrupt the next request on a kept-alive connection.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from reverse_etl.testing.common import Handler, Request, Response, Route, dumps
from reverse_etl.testing.faults import FaultInjector, FaultKind, FaultSpec
from reverse_etl.testing.stats import NO_RESPONSE, Stats

MAX_BODY_BYTES = 64 * 1024 * 1024  # beyond any vendor limit; larger bodies are refused unread
UNMATCHED = "<unmatched>"
ADMIN_PREFIX = "/_emulator/"


class VendorApi(Protocol):
    routes: list[Route]

    def error_response(self, status: int, retry_after: int | None) -> Response: ...
    def not_found(self) -> Response: ...
    def method_not_allowed(self) -> Response: ...


@dataclass(frozen=True)
class _Template:
    template: str
    regex: re.Pattern[str]
    vendor: VendorApi
    methods: dict[str, Handler]


class Router:
    def __init__(self) -> None:
        self._templates: dict[str, _Template] = {}

    def add(self, vendor: VendorApi) -> None:
        for route in vendor.routes:
            entry = self._templates.get(route.template)
            if entry is None:
                # One path segment per {placeholder}; Klaviyo paths may carry a trailing slash.
                pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.template))
                entry = _Template(route.template, re.compile(f"^{pattern}/?$"), vendor, {})
                self._templates[route.template] = entry
            entry.methods[route.method] = route.handler

    def match(self, path: str) -> tuple[_Template, dict[str, str]] | None:
        for entry in self._templates.values():
            m = entry.regex.match(path)
            if m:
                return entry, m.groupdict()
        return None


@dataclass
class Outcome:
    """What the connection thread does: send `response`, or close without one (`response is None`)."""

    template: str
    response: Response | None
    count: bool = True  # admin calls are not counted in the stats


class Dispatcher:
    """Routes a request to a vendor, applying the vendor's connection gate and any queued fault."""

    def __init__(
        self,
        faults: FaultInjector,
        stop: threading.Event,
        vendors: dict[str, VendorApi],
        gate: Callable[[Request], tuple[Callable[[], None] | None, Response | None]] | None = None,
        admin: Callable[[Request], Response | None] | None = None,
    ) -> None:
        self.faults = faults
        self.stop = stop
        self.vendors = vendors  # path prefix -> api
        self.gate = gate  # e.g. Mailchimp's simultaneous-connection limit
        self.admin = admin
        self.router = Router()
        for vendor in vendors.values():
            self.router.add(vendor)

    def _vendor_for(self, path: str) -> VendorApi | None:
        for prefix, vendor in self.vendors.items():
            if path.startswith(prefix):
                return vendor
        return None

    def dispatch(self, req: Request) -> Outcome:
        if req.path.startswith(ADMIN_PREFIX) and self.admin is not None:
            response = self.admin(req)
            return Outcome(
                req.path, response or Response(404, b'{"error":"unknown admin path"}'), count=False
            )
        found = self.router.match(req.path)
        vendor = found[0].vendor if found else self._vendor_for(req.path)
        template = found[0].template if found else UNMATCHED
        if found:
            req.params = found[1]
        release, refused = self.gate(req) if self.gate is not None else (None, None)
        try:
            if refused is not None:
                return Outcome(template, refused)
            return Outcome(template, self._serve(req, vendor, found[0] if found else None))
        finally:
            if release is not None:
                release()  # after any fault delay: a held connection counts as in flight

    def _serve(self, req: Request, vendor: VendorApi | None, entry: _Template | None) -> Response | None:
        fault = self.faults.take(req.method, req.path)
        if fault is not None and fault.kind is FaultKind.SLOW:
            self.stop.wait(fault.delay)
            fault = None
        if fault is not None and not fault.apply:
            return self._fault(fault, vendor)
        response = self._handle(req, vendor, entry)
        if fault is not None:  # applied, but the client never learns how it went
            return self._fault(fault, vendor)
        return response

    @staticmethod
    def _handle(req: Request, vendor: VendorApi | None, entry: _Template | None) -> Response:
        if vendor is None:
            return Response(404, dumps({"error": f"no emulated API at {req.path}"}))
        if entry is None:
            return vendor.not_found()
        handler = entry.methods.get(req.method)
        if handler is None:
            return vendor.method_not_allowed()
        return handler(req)

    def _fault(self, fault: FaultSpec, vendor: VendorApi | None) -> Response | None:
        if fault.kind is FaultKind.DROP:
            return None
        if fault.kind is FaultKind.TIMEOUT:
            self.stop.wait(fault.hold_seconds)  # hold the connection past the client's timeout
            return None
        status = fault.http_status
        if vendor is not None:
            response = vendor.error_response(status, fault.retry_after)
        else:
            response = Response(status, dumps({"error": "injected fault"}))
        if fault.retry_after is not None:
            if fault.kind is FaultKind.RATE_LIMIT:
                response.headers.append(("Retry-After", str(fault.retry_after)))
            elif fault.kind is FaultKind.RATE_LIMIT_NO_RETRY_AFTER:
                response.headers.append(("X-RateLimit-Reset", str(fault.retry_after)))
        return response


class EmulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one TCP connection serves a whole sync
    disable_nagle_algorithm = True  # small responses must not wait for a delayed ACK
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        pass  # a line per request would cost more than serving it

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY_BYTES:
                    self._refuse(413, "request body too large")
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline(3)
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw else 0
        except ValueError:
            self._refuse(400, "invalid Content-Length")
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self._refuse(413, "request body too large")
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True  # the unread body makes the connection unusable
        self._write(Response(status, dumps({"error": message})))

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        split = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True) if split.query else {},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        app = self.server.app
        try:
            outcome = app.dispatch(req)
        except Exception as exc:  # a bug in the emulator must surface as a 500, not a hung client
            outcome = Outcome(UNMATCHED, Response(500, dumps({"error": f"emulator bug: {exc!r}"})))
        # Count before the client can see the outcome: a test that asserts on the counters right after its
        # request returns must find that request counted.
        data = self._encode(outcome.response) if outcome.response is not None else b""
        if outcome.count:
            status = outcome.response.status if outcome.response is not None else NO_RESPONSE
            app.stats.record(req.method, outcome.template, status, len(body), len(data))
        if outcome.response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may have gone already
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _encode(self, response: Response) -> bytes:
        """Status line, headers and body as one buffer, sent with a single sendall."""
        status = response.status
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}"]
        if status != 204:
            lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {len(response.body)}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if status == 204 else head + response.body

    def _send(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away (e.g. it timed out); nothing to do

    def _write(self, response: Response) -> None:
        self._send(self._encode(response))


class App(Protocol):
    stats: Stats

    def dispatch(self, req: Request) -> Outcome: ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent connections
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.connections_accepted = 0  # with keep-alive, a sync should need only a handful
        super().__init__(address, EmulatorHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall for seconds offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)
            self.connections_accepted += 1

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        """Wake threads blocked on idle keep-alive connections so the emulator stops promptly."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
