"""The Dagster UI in a real browser: `dagster dev` serves the asset graph, and a run launched through its
GraphQL API builds the warehouse.

Needs Debian's chromium at /usr/bin/chromium (`make test` installs it with
tests/ensure_debian_packages.sh).
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psutil
import pytest

from dagster_app.instance import ensure_instance_config
from personalize.settings import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")
ENSURE_PACKAGES = Path(__file__).parents[1] / "ensure_debian_packages.sh"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION_NAME = "dagster_app.definitions"
STARTUP_TIMEOUT_SECONDS = 180
RUN_TIMEOUT_SECONDS = 300
UI_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class DagsterServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(server: DagsterServer, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{server.url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    assert "errors" not in payload, payload
    return payload["data"]


LOCATION_STATUS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def _wait_until_loaded(server: DagsterServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"dagster dev exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            entries = _graphql(server, LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, AssertionError) as error:
            last = repr(error)
        else:
            entry = next((entry for entry in entries if entry["name"] == LOCATION_NAME), None)
            last = repr(entry)
            if entry and entry["loadStatus"] == "LOADED":
                error = entry["locationOrLoadError"]
                assert error["__typename"] == "RepositoryLocation", f"code location failed to load: {error}"
                return
        time.sleep(1)
    pytest.fail(
        f"dagster dev did not load {LOCATION_NAME} in {STARTUP_TIMEOUT_SECONDS}s ({last}):\n"
        + server.log_tail()
    )


def _group_members(pgid: int) -> set[int]:
    # Descendants, plus anything still in the group whose parent already exited (re-parented to init).
    members = {pgid}
    with contextlib.suppress(psutil.NoSuchProcess):
        members.update(child.pid for child in psutil.Process(pgid).children(recursive=True))
    for candidate in psutil.process_iter():
        try:
            if os.getpgid(candidate.pid) == pgid:
                members.add(candidate.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the group `dagster dev` leads (webserver, daemon, code server, run workers), then SIGKILL."""
    members = _group_members(process.pid)
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(pid) for pid in members):
            time.sleep(0.2)
            process.poll()
        if not any(_alive(pid) for pid in members):
            break
    process.wait(timeout=10)
    survivors = sorted(pid for pid in members if _alive(pid))
    assert not survivors, f"processes left behind by dagster dev: {survivors}"


@pytest.fixture
def chromium() -> Path:
    # A failure, not a skip: a suite that silently stops testing the UI would look green.
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the UI test needs Debian's chromium. Install it with "
            "`tests/ensure_debian_packages.sh /usr/bin/chromium chromium` (as root); `make test` runs that "
            "first."
        )
    return CHROMIUM


def test_ensure_chromium_does_nothing_when_chromium_is_installed(chromium, tmp_path: Path) -> None:
    # `make test` runs the script every time; with chromium present it must not touch apt or need root.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("apt-get", "sudo"):
        (fake_bin / tool).write_text("#!/bin/sh\necho unexpected call: $0 >&2\nexit 97\n")
        (fake_bin / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(ENSURE_PACKAGES), str(CHROMIUM), "chromium"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "unexpected call" not in result.stderr


@pytest.fixture
def dagster_dev(chromium, session_data, defs, tmp_path: Path) -> Iterator[DagsterServer]:
    # The data paths the session's code location was loaded with, so the code server finds the manifest
    # current; a fresh DAGSTER_HOME, so a developer's own runs and schedules are left alone.
    session_data.remove_warehouse()
    dagster_home = tmp_path / "dagster_home"
    # The settings `make ui` writes: runs queued one at a time (DuckDB has one writer), no telemetry, and no
    # first-visit dialog covering the graph.
    ensure_instance_config(dagster_home)
    port = _free_port()
    env = {
        **os.environ,
        **session_data.env(),
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "dagster_dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(dagster), "dev", "--host", "127.0.0.1", "--port", str(port), "-m", LOCATION_NAME],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DagsterServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_until_loaded(server)
        yield server
    finally:
        _stop_process_group(process)


LAUNCH_RUN = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""

ASSET_NODES = """
query {
  assetNodes { assetKey { path } groupName isMaterializable }
}
"""

RUN_STATUS = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status startTime endTime }
  }
}
"""

RUN_FAILURES = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""


def _launch(server: DagsterServer, job_name: str, asset_keys: list[dg.AssetKey]) -> str:
    selector = {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": "__repository__",
        "jobName": job_name,
        "assetSelection": [{"path": list(key.path)} for key in asset_keys],
    }
    params = {"selector": selector, "mode": "default", "runConfigData": "{}"}
    launched = _graphql(server, LAUNCH_RUN, {"executionParams": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _wait_for_run(server: DagsterServer, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    status = "unknown"
    while time.monotonic() < deadline:
        status = _graphql(server, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            return status
        time.sleep(1)
    return status


def _run_messages(server: DagsterServer, run_id: str) -> str:
    events = _graphql(server, RUN_FAILURES, {"runId": run_id})["logsForRun"].get("events", [])
    return "\n".join(event.get("message", "") for event in events[-40:])


def test_asset_graph_renders_and_a_launched_run_builds_the_warehouse(
    chromium, dagster_dev, defs, session_data, tmp_path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    # What the server loaded. It is the same code as `defs`, but `dagster dev` parses the dbt project itself,
    # so the UI is checked against what it was given.
    nodes = _graphql(dagster_dev, ASSET_NODES)["assetNodes"]
    materializable = [node for node in nodes if node["isMaterializable"]]
    groups = sorted({node["groupName"] for node in nodes})
    assert {"raw", "seeds", "staging", "marts", "ml", "activation", "quality"} <= set(groups)
    keys = {"/".join(node["assetKey"]["path"]) for node in nodes}
    ml_names = ["churn_model", "ltv_model", "churn_scores", "ltv_scores"]
    assert {f"ml/{name}" for name in ml_names} | {"esp/file_sync", "activation/esp_audience"} <= keys
    raw_names = sorted(node["assetKey"]["path"][-1] for node in nodes if node["groupName"] == "raw")
    assert len(raw_names) == 8
    # The row-count model and whatever it is built from: the whole graph is built in-process elsewhere, and
    # this subset keeps the test's run time independent of how many models the project grows.
    quality = dg.AssetKey(["quality", "quality_raw_row_counts"])
    graph = defs.resolve_asset_graph()
    to_build = sorted(dg.AssetSelection.assets(quality).upstream().resolve(graph), key=str)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            # Tall enough for the raw group's eight stacked nodes: the graph renders only what is in view.
            page = browser.new_page(viewport={"width": 1600, "height": 2400})
            page.set_default_timeout(UI_TIMEOUT_MS)

            # Global lineage: a box per group, and a button to materialize every asset of the location.
            page.goto(f"{dagster_dev.url}/asset-groups", wait_until="domcontentloaded")
            materialize_all = page.get_by_role("button", name=f"Materialize all ({len(materializable)})")
            expect(materialize_all).to_be_visible(timeout=UI_TIMEOUT_MS)
            for group in groups:
                expect(page.get_by_text(group, exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("fetching statuses")).to_have_count(0, timeout=UI_TIMEOUT_MS)
            page.screenshot(path=str(tmp_path / "global_lineage.png"))

            # The raw group: an observable asset per landing-zone source.
            page.goto(
                f"{dagster_dev.url}/locations/{LOCATION_NAME}/asset-groups/raw", wait_until="domcontentloaded"
            )
            for name in raw_names:
                expect(page.get_by_text(name, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_role("button", name="Observe all")).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.screenshot(path=str(tmp_path / "raw_group.png"))

            # The model layer between the ML training sets and activation.
            page.goto(
                f"{dagster_dev.url}/locations/{LOCATION_NAME}/asset-groups/ml", wait_until="domcontentloaded"
            )
            for name in ml_names:
                expect(page.get_by_text(name, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.screenshot(path=str(tmp_path / "ml_group.png"))

            # Two runs launched together, both writing the warehouse: the instance queues the second until the
            # first is done, so neither meets DuckDB's "Could not set lock".
            run_ids = [
                _launch(dagster_dev, "full_build", to_build),
                _launch(dagster_dev, "full_build", [dg.AssetKey(["seeds", "country_codes"])]),
            ]
            for run_id in run_ids:
                status = _wait_for_run(dagster_dev, run_id)
                assert status == "SUCCESS", (
                    f"run {run_id} ended {status}:\n{_run_messages(dagster_dev, run_id)}"
                )
            spans = sorted(
                (run["startTime"], run["endTime"])
                for run in (
                    _graphql(dagster_dev, RUN_STATUS, {"runId": run_id})["runOrError"] for run_id in run_ids
                )
            )
            assert spans[0][1] <= spans[1][0], f"the runs overlapped: {spans}"

            # The asset page shows what the run recorded: a materialization and its row count.
            page.goto(
                f"{dagster_dev.url}/assets/quality/quality_raw_row_counts", wait_until="domcontentloaded"
            )
            expect(page.get_by_text("Latest materialization")).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("Row count", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
            assert re.search(r"Row count\s+8\b", page.inner_text("body")), "8 sources, so 8 rows"
            page.screenshot(path=str(tmp_path / "quality_raw_row_counts.png"))
            print(f"screenshots in {tmp_path}")
        finally:
            browser.close()

    with duckdb.connect(str(session_data.duckdb_path), read_only=True) as connection:
        rows = dict(
            connection.sql("select source_name, raw_rows from quality.quality_raw_row_counts").fetchall()
        )
    assert rows["shop_orders"] == 4
    assert rows["crm_customers"] == 2
