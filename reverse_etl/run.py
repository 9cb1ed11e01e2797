"""A small command-line runner over the engine (`python -m reverse_etl.run --help`).

Secrets come only from the environment (MAILCHIMP_API_KEY, KLAVIYO_API_KEY); they are never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from reverse_etl.configure import (
    AUDIENCE_RELATION,
    DESTINATION_KINDS,
    DestinationSettings,
    build_destination,
    build_sync_config,
)
from reverse_etl.destinations.base import Destination
from reverse_etl.destinations.klaviyo import KlaviyoConfig
from reverse_etl.engine import run_summary, sync
from reverse_etl.models import SyncConfig, SyncMode


def build(args: argparse.Namespace) -> tuple[SyncConfig, Destination]:
    settings = DestinationSettings(
        args.destination,
        base_url=args.base_url,
        list_id=args.list_id,
        batch_size=args.batch_size,
        max_connections=args.max_connections,
        poll_interval=args.poll_interval,
        revision=args.revision,
        export_dir=Path(args.export_dir),
        file_format=args.format,
    )
    config = build_sync_config(
        settings,
        mode=SyncMode(args.mode),
        relation=args.relation,
        consent_column=args.consent_column,
        # The runner keeps its historical state key (the destination type) unless told otherwise.
        state_key=args.state_key or args.destination,
    )
    return config, build_destination(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sync the audience to a destination.")
    parser.add_argument("--db", required=True, help="DuckDB file (the warehouse; state goes there too)")
    parser.add_argument("--destination", choices=DESTINATION_KINDS, default="file")
    parser.add_argument("--mode", choices=[m.value for m in SyncMode], default="upsert")
    parser.add_argument("--relation", default=AUDIENCE_RELATION)
    parser.add_argument("--consent-column")
    parser.add_argument("--state-key", help="state name of this destination (default: its type)")
    parser.add_argument("--base-url")
    parser.add_argument("--list-id")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-connections", type=int, default=4)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--revision", default=os.environ.get("KLAVIYO_REVISION", KlaviyoConfig.revision))
    parser.add_argument("--export-dir", default="data/exports")
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--full", action="store_true", help="re-send every row, changed or not")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config, destination = build(args)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    result = sync(args.db, config, destination, dry_run=args.dry_run, full=args.full, progress=progress)
    print(json.dumps({**run_summary(result), "samples": result.samples}, default=str), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
