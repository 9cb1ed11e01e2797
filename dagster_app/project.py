"""The dbt project as Dagster sees it, with a manifest that is never missing or stale.

dagster-dbt builds the asset definitions from `target/manifest.json` when the code loads. Its own preparer
re-parses only under `dagster dev`, and with whichever `dbt` comes first on PATH. Here every process that
loads the code (`dagster dev`, run workers, `dagster job execute`, pytest, CI on a fresh clone without
target/) gets a manifest of the project as it is now, parsed by this virtualenv's dbt. A digest of what
`dbt parse` reads is kept next to the manifest, so a process whose inputs have not changed hashes a few dozen
files instead of spending 5-10 s in `dbt parse`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import DagsterDbtProjectPreparer
from dagster_shared.record import replace
from filelock import FileLock

from personalize.dbt import dbt_executable
from personalize.settings import DUCKDB_PATH_ENV, PROJECT_DIR, RAW_DIR_ENV, load_settings

# Kept next to the manifest: the digest of what it was parsed from, and which manifest file that produced.
STAMP_FILE_NAME = "dagster_manifest_inputs.json"
PARSE_TIMEOUT_SECONDS = 300

# dbt's defaults for the *-paths keys of dbt_project.yml.
_DEFAULT_PATHS = {
    "model-paths": ["models"],
    "macro-paths": ["macros"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "snapshot-paths": ["snapshots"],
    "seed-paths": ["seeds"],
}
_ROOT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml")
# profiles.yml and the YAML files read these through env_var() while dbt parses. The raw dir is the
# exception: only the on-run-start hook reads it, at run time, so another landing zone needs no parse. The
# DuckDB path counts, resolved: dbt-duckdb names the database after the file (relation names in the manifest
# carry it), and dbt keys partial parsing on the profile, so runs against a warehouse other than the one the
# manifest was parsed for would each re-parse the whole project.
_ENV_PREFIXES = ("PERSONALIZE_", "DBT_")
_PATH_VARIABLES = (RAW_DIR_ENV, DUCKDB_PATH_ENV)


class DbtParseError(RuntimeError):
    """`dbt parse` failed: the project does not compile, so there are no asset definitions to load."""


def _input_files(project_dir: Path) -> Iterator[Path]:
    for name in _ROOT_FILES:
        path = project_dir / name
        if path.is_file():
            yield path
    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    for key, default in _DEFAULT_PATHS.items():
        for folder in config.get(key, default):
            root = project_dir / folder
            if root.is_dir():
                yield from (path for path in sorted(root.rglob("*")) if path.is_file())


def manifest_inputs_digest(project_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """Digest of what `dbt parse` reads: project files (path, size, mtime), env vars, dbt's version."""
    env = os.environ if environ is None else environ
    digest = hashlib.sha256()
    digest.update(f"dbt-core {version('dbt-core')}\n".encode())
    for path in _input_files(project_dir):
        stat = path.stat()
        digest.update(f"{path.relative_to(project_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(f"duckdb path {load_settings(env).duckdb_path}\n".encode())
    for name in sorted(env):
        if name.startswith(_ENV_PREFIXES) and name not in _PATH_VARIABLES:
            digest.update(f"{name}={env[name]}\n".encode())
    return digest.hexdigest()


def _manifest_identity(manifest_path: Path) -> list[int] | None:
    # Other dbt commands (the CLI, dbt tests) rewrite target/manifest.json, possibly under another
    # environment; size and mtime tell whether it is still the manifest the stamp describes.
    if not manifest_path.is_file():
        return None
    stat = manifest_path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _stamp_path(project: DbtProject) -> Path:
    return project.manifest_path.with_name(STAMP_FILE_NAME)


def manifest_is_current(project: DbtProject) -> bool:
    try:
        stamp = json.loads(_stamp_path(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        project.manifest_path.is_file()
        and stamp.get("inputs") == manifest_inputs_digest(project.project_dir)
        and stamp.get("manifest") == _manifest_identity(project.manifest_path)
    )


def _write_stamp(project: DbtProject, inputs: str) -> None:
    stamp = {"inputs": inputs, "manifest": _manifest_identity(project.manifest_path)}
    path = _stamp_path(project)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(stamp), encoding="utf-8")
    temporary.replace(path)


def _dbt_parse(project: DbtProject) -> None:
    target = project.project_dir / project.target_path
    command = [
        dbt_executable(),
        "parse",
        "--quiet",
        "--project-dir", str(project.project_dir),
        "--profiles-dir", str(project.profiles_dir),
        "--target-path", str(target),
        "--log-path", str(target),
    ]  # fmt: skip
    # A plain subprocess rather than DbtCliResource.cli(): that also loads a dbt adapter in this process,
    # which adds seconds and is of no use for parsing.
    # dbt_project.yml turns dbt's usage tracking off for every command, this one included.
    # The environment of the runs that follow (absolute paths, Settings.dbt_env): dbt keys its saved parse on
    # the profile, so a parse under a relative PERSONALIZE_DUCKDB_PATH was thrown away by the first run.
    env = {**os.environ, **load_settings().dbt_env()}
    completed = subprocess.run(
        command, cwd=project.project_dir, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        raise DbtParseError(f"`dbt parse` of {project.project_dir} failed:\n{output[-6000:]}")


class ManifestPreparer(DagsterDbtProjectPreparer):
    """Runs `dbt parse` when the manifest is missing or stale, once across concurrent processes."""

    def prepare(self, project: DbtProject) -> None:
        project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        # The code server, the daemon and run workers may load the code at the same moment: the first one
        # parses, the others wait, then find the stamp current.
        lock = FileLock(str(project.manifest_path.with_suffix(".parse.lock")), timeout=PARSE_TIMEOUT_SECONDS)
        with lock:
            if manifest_is_current(project):
                return
            # Hashed before parsing, so that an edit made during the parse leaves the stamp stale.
            inputs = manifest_inputs_digest(project.project_dir)
            _dbt_parse(project)
            _write_stamp(project, inputs)


def load_dbt_project(project_dir: Path = PROJECT_DIR) -> DbtProject:
    """The dbt project at `project_dir` (profiles.yml beside dbt_project.yml) with a current manifest."""
    # DbtProject builds its own preparer; the record's replace() swaps in this one.
    # The same target path dbt itself uses ($DBT_TARGET_PATH, relative to the project), so processes given
    # different target paths never write one manifest at the same time.
    target_path = os.environ.get("DBT_TARGET_PATH", "target")
    project = replace(
        DbtProject(project_dir=project_dir, profiles_dir=project_dir, target_path=target_path),
        preparer=ManifestPreparer(),
    )
    # dagster-dbt's hook for `dagster dev`. Every other process runs the same preparer too; it does nothing
    # when the manifest is current.
    project.prepare_if_dev()
    project.preparer.prepare(project)
    return project


dbt_project = load_dbt_project()
# Read once, so the raw assets and the dbt assets describe the same manifest even if another dbt command
# rewrites target/manifest.json while the code loads.
dbt_manifest: dict[str, Any] = json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))
