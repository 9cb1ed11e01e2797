"""personalize: the email-personalization warehouse's command line.

personalize generate --customers N --seed S --out DIR [--as-of DATE] [--horizon-days D]
    [--email-history-days D] [--format F]
personalize run [--customers N] [--seed S]
personalize sync --destination file|mailchimp|klaviyo [--dry-run] [--full]
personalize backtest --orders FILE --cutoff DATE --horizon-days D --out DIR [--truth FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from personalize.dbt import DbtError
from personalize.pipeline import RunFailed
from personalize.settings import load_settings

DEMO_CUSTOMERS = 20_000
DEMO_SEED = 42
DEMO_HORIZON_DAYS = 180


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class SyncIncomplete(Exception):
    """A sync ran but not every row was confirmed: exit code 1."""


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _progress_printer() -> Callable[[str], None]:
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return progress


def _generate(
    *,
    customers: int,
    seed: int,
    out: Path,
    as_of: date | None,
    horizon_days: int | None,
    file_format: str,
    email_history_days: int | None = None,
) -> None:
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a directory")
    # Imported here so that `personalize --help` stays fast.
    from datagen import GeneratorConfig, generate

    # Unset options keep the generator's own defaults (one place that states them: GeneratorConfig).
    options = {
        name: value
        for name, value in (("as_of", as_of), ("email_history_days", email_history_days))
        if value is not None
    }
    try:
        config = GeneratorConfig(
            customers=customers,
            seed=seed,
            out=out,
            horizon_days=horizon_days,
            format=file_format,
            **options,
        )
    except ValueError as error:
        raise CliError(str(error)) from None
    summary = generate(config, progress=_progress_printer())
    width = max(len(name) for name in summary.rows)
    print(f"wrote {summary.files} files, {summary.bytes_written / 1e6:,.1f} MB, to {out}")
    for name, rows in summary.rows.items():
        print(f"  {name:<{width}}  {rows:>12,}")


def cmd_generate(args: argparse.Namespace) -> None:
    _generate(
        customers=args.customers,
        seed=args.seed,
        out=args.out,
        as_of=args.as_of,
        horizon_days=args.horizon_days,
        file_format=args.format,
        email_history_days=args.email_history_days,
    )


def cmd_run(args: argparse.Namespace) -> None:
    settings = load_settings()
    # The files the dbt hook and the Dagster sensors read (any case of .csv, .csv.gz, .parquet).
    from dagster_app.landing_zone import snapshot_folder

    if snapshot_folder(settings.raw_dir / "shop_orders").file_count:
        print(f"using the raw data in {settings.raw_dir}", file=sys.stderr)
    else:
        # The demo replaces every source folder it writes: never over files of the user's.
        if settings.raw_dir.is_dir():
            present = sorted(
                folder.name
                for folder in settings.raw_dir.iterdir()
                if folder.is_dir() and snapshot_folder(folder).file_count
            )
            if present:
                raise CliError(
                    f"{settings.raw_dir} has no shop_orders export but holds files in {', '.join(present)}; "
                    "add the orders to shop_orders/ (the one required source), or point PERSONALIZE_RAW_DIR "
                    "at an empty folder to generate the demo there"
                )
        print(
            f"no raw data in {settings.raw_dir}: "
            f"generating the {args.customers:,}-customer demo (seed {args.seed})",
            file=sys.stderr,
        )
        _generate(
            customers=args.customers,
            seed=args.seed,
            out=settings.raw_dir,
            as_of=None,
            horizon_days=DEMO_HORIZON_DAYS,
            file_format="parquet",
        )
    # Imported here so that `personalize --help` does not load Dagster and the dbt manifest.
    from personalize.pipeline import materialize_all, run_summary

    outcome = materialize_all(progress=_progress_printer())
    print(run_summary(settings, outcome))


def cmd_sync(args: argparse.Namespace) -> None:
    from personalize.sync import SyncSetupError, format_summary, sync_audience
    from reverse_etl.models import SyncMode

    mode = SyncMode(args.mode) if args.mode else None
    try:
        result = sync_audience(
            load_settings(),
            args.destination,
            dry_run=args.dry_run,
            full=args.full,
            mode=mode,
            progress=_progress_printer(),
        )
    except SyncSetupError as error:
        raise CliError(str(error)) from None
    print(format_summary(result))
    if not result.ok or result.erase_failed or result.unsubscribe_failed:
        raise SyncIncomplete(
            f"{result.rejected:,} rejected and {result.failed:,} failed rows, "
            f"{result.erase_failed:,} failed erasures, {result.unsubscribe_failed:,} failed unsubscribes"
        )


def cmd_backtest(args: argparse.Namespace) -> None:
    # Imported here so that `personalize --help` stays fast (XGBoost, the BTYD fits).
    from personalize.backtest import BacktestConfig, BacktestError, run_backtest

    config = BacktestConfig(
        orders=args.orders,
        cutoff=args.cutoff,
        horizon_days=args.horizon_days,
        out=args.out,
        truth=args.truth,
        training_horizon_days=args.training_horizon_days,
    )
    try:
        result = run_backtest(config, progress=_progress_printer())
    except BacktestError as error:
        raise CliError(str(error)) from None
    print(f"scores: {result.scores_path} ({len(result.scores):,} customers)")
    if result.metrics_path is None:
        print("no orders after the cutoff and no --truth: no metrics.json")
        return
    print(f"metrics: {result.metrics_path}")
    from personalize.backtest import summary_lines

    print("\n".join(summary_lines(result.metrics or {})))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="personalize", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate",
        help="write a synthetic multi-source raw dataset with ground truth",
        description="Write every raw source of the contract to OUT/<source>/ "
        "and the ground truth to OUT/_truth/.",
    )
    generate.add_argument("--customers", type=_positive_int, required=True, help="people with an email")
    generate.add_argument("--seed", type=_int, required=True, help="random seed; same arguments, same files")
    generate.add_argument("--out", type=Path, required=True, help="output directory")
    generate.add_argument("--as-of", type=_iso_date, default=None, help="last day of raw data (YYYY-MM-DD)")
    generate.add_argument(
        "--horizon-days",
        type=_positive_int,
        default=None,
        help="also write each person's true future orders for this many days after --as-of",
    )
    generate.add_argument(
        "--email-history-days",
        type=_positive_int,
        default=None,
        help="days of weekly ESP campaigns before --as-of (default: the generator's, 182)",
    )
    generate.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="file format")
    generate.set_defaults(handler=cmd_generate)

    run = commands.add_parser(
        "run",
        help="generate the demo data if $PERSONALIZE_RAW_DIR is empty, then materialize every Dagster asset",
    )
    run.add_argument("--customers", type=_positive_int, default=DEMO_CUSTOMERS, help="demo size")
    run.add_argument("--seed", type=_int, default=DEMO_SEED, help="demo seed")
    run.set_defaults(handler=cmd_run)

    sync = commands.add_parser(
        "sync",
        help="send the changes in activation.esp_audience to a destination",
        description="Diff activation.esp_audience against the last confirmed state and send inserts, "
        "changes (and in mirror mode removals). Settings come from environment variables: "
        "MAILCHIMP_API_KEY, MAILCHIMP_LIST_ID (optional MAILCHIMP_BASE_URL or MAILCHIMP_SERVER_PREFIX); "
        "KLAVIYO_API_KEY, KLAVIYO_LIST_ID (optional KLAVIYO_BASE_URL, KLAVIYO_REVISION); "
        "PERSONALIZE_EXPORT_DIR (file, default exports/ beside the warehouse file).",
    )
    sync.add_argument("--destination", choices=["file", "mailchimp", "klaviyo"], required=True)
    sync.add_argument("--dry-run", action="store_true", help="count and show sample payloads, send nothing")
    sync.add_argument("--full", action="store_true", help="re-send every row, changed or not")
    sync.add_argument(
        "--mode",
        choices=["upsert", "mirror"],
        default=None,
        help="mirror also archives people who left the audience (default: mirror, upsert for klaviyo)",
    )
    sync.set_defaults(handler=cmd_sync)

    backtest = commands.add_parser(
        "backtest",
        help="score an orders file as of a past date; with later orders or --truth, measure the scores",
        description="Build a fresh warehouse in OUT from the orders known at the end of CUTOFF (UTC), train "
        "churn and LTV models on that alone, score every customer for the horizon and write OUT/scores.csv. "
        "With orders after the cutoff in the file, or --truth, also write OUT/metrics.json: the models and "
        "the BTYD and heuristic baselines on every metric. See personalize/backtest.py for the formats.",
    )
    backtest.add_argument("--orders", type=Path, required=True, help="orders file (shop_orders contract)")
    backtest.add_argument("--cutoff", type=_iso_date, required=True, help="last day of known data")
    backtest.add_argument("--horizon-days", type=_positive_int, required=True, help="days after the cutoff")
    backtest.add_argument("--out", type=Path, required=True, help="output directory (replaced files)")
    backtest.add_argument(
        "--truth", type=Path, default=None, help="CSV/Parquet: customer_id, purchases, spend in the horizon"
    )
    backtest.add_argument(
        "--training-horizon-days",
        type=_positive_int,
        default=None,
        help="label window to train on (default: the longest <= --horizon-days that fits before the cutoff)",
    )
    backtest.set_defaults(handler=cmd_backtest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except CliError as error:
        print(f"personalize {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (DbtError, SyncIncomplete, RunFailed) as error:
        print(f"personalize {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
