"""Measure a command as a child process: wall time and peak resident memory of that child alone."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    wall_seconds: float
    peak_rss_bytes: int
    # User + system CPU of the child: unlike wall time, it barely moves when other work shares the machine.
    cpu_seconds: float = 0.0


def measure_command(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Measurement:
    """Run `command`, stream its output, and return wall time and its peak RSS (via wait4, so only it)."""
    started = time.perf_counter()
    process = subprocess.Popen(list(command), env=None if env is None else dict(env), cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, list(command))
    # Linux reports ru_maxrss in kilobytes; this includes the child's own children that it waited for.
    return Measurement(
        wall_seconds=wall, peak_rss_bytes=usage.ru_maxrss * 1024, cpu_seconds=usage.ru_utime + usage.ru_stime
    )


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{value:,.0f} B"
        value /= 1000
    raise AssertionError("unreachable")


# The probe's fixed work: the text of this many numbers hashed, then sorted (a window over the hashes).
SPEED_PROBE_ROWS = 20_000_000


def machine_speed_probe(rows: int = SPEED_PROBE_ROWS) -> float:
    """CPU seconds this process spends on a fixed single-threaded DuckDB workload, the kind of work the
    dbt builds do (casting to text, hashing, sorting). The work never changes, so when it takes longer the
    machine is slower: on a shared virtual machine the CPU time of identical work moves by tens of percent
    within an hour, and a run's figures can only be compared with another's next to this probe."""
    import duckdb  # the benchmark's environment has it; the other measurements here do not need it

    def work(connection: duckdb.DuckDBPyConnection, count: int) -> None:
        connection.execute(
            "select max(gap) from ("
            "  select digest - lag(digest) over (order by digest) as gap"
            f"  from (select hash(cast(i as varchar)) as digest from range({int(count)}) as numbers(i))"
            ")"
        ).fetchall()

    with duckdb.connect() as connection:
        connection.execute("set threads = 1")
        connection.execute("set enable_progress_bar = false")
        # The first query of a connection also pays for loading and first allocations: not the machine.
        work(connection, rows // 20)
        started = time.process_time()
        work(connection, rows)
        return time.process_time() - started
