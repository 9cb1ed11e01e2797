"""`personalize backtest`: score an orders export as of a past date and measure the scores on what came next.

What it does, in order:

1. Reads one orders file (the `shop_orders` contract, CSV or Parquet) and splits it at the end of the
   cutoff date (UTC). Only order *versions* whose `created_at` and `updated_at` are both before
   `cutoff + 1 day` go into `DIR/raw/shop_orders/`. The warehouse never sees anything later, so orders
   after the cutoff cannot change the scores: the leakage guard is the file system, not a `where` clause.
2. Builds a fresh `DIR/warehouse.duckdb` from that landing zone alone (every other source is absent) with
   dbt var `as_of` = the cutoff, selecting the ML training and scoring sets and the identity map.
3. Trains on training cutoffs whose label windows end at or before the cutoff, and scores every customer.
   Each kind's final score is w x model + (1 - w) x BTYD, the BTYD partner (BG/NBD or Pareto/NBD, each
   with Gamma-Gamma for spend) fitted at the cutoff for the requested horizon. The model is trained twice,
   with the BG/NBD base margin and without; the base margin, the partner and w (0, 0.1, ..., 1) are the
   ones whose validation predictions leave the fewest (metric, baseline) comparisons unwon against the
   baselines fitted at the validation cutoff (the latest training cutoff, whose window ends by the
   cutoff), ties to the better AUC (churn) or normalized Gini (LTV). metrics.json records the choice under
   "blend".
4. With orders after the cutoff in the file, or a `--truth` file, writes `DIR/metrics.json`.

The short window: the main window's latest cutoff is d days before the cutoff, so behaviour that began
since (a newly connected ESP) is in none of its training rows and no tree can learn what it is worth.
`training_plan` therefore also plans a shorter window s (SHORT_WINDOW_DAYS = 60 at most, at least 30, with
d - s a multiple of the spacing so that one short cutoff falls on the main validation cutoff) with up to
24 cutoffs, and dbt builds both (`ml_short_horizon_days`). A second model pair is trained on it, mapped
from s days to D like the main pair, and the two are averaged, but only when some feature has one value
on every main training row while it varies among the people scored and over the short window's rows
(`short_window`; otherwise the main pair has seen everything and a shorter label is only a noisier one).
The blend of step 3 is then chosen for the average, whose validation predictions average the main pair's
with the short pair's validation fit at the main validation cutoff (mapped from s to d). metrics.json
records the short window under "short_training_horizon_days" (null when unused).

The horizon problem: a label window of the requested length D may not fit before the cutoff even once
(CDNOW: first purchases in Q1 1997, cutoff 1997-09-30, D = 273 days). And the validation must be clean:
the validation fit learns only from training cutoffs whose label window ends by the validation cutoff
(`ml.frames.ExampleFrame.validation_fit_cutoffs`), so with cutoffs `s` days apart a d-day window needs
ceil(d / s) cutoffs between the last clean one and the validation cutoff. The models are therefore trained
on the longest window d <= D that leaves `min_validation_fit_cutoffs` clean training cutoffs, every cutoff
at least `min_history_days` after the first order (`training_plan`; CDNOW: d = 90 days, 6 cutoffs 30 days
apart, the first three clean). Two things carry them to D, both fitted only on data up to the cutoff in
question:

- stacking: at every cutoff (training and scoring alike) BG/NBD and Gamma-Gamma are fitted on that
  cutoff's BTYD summary, and their d-window quantities (P(alive), P(no purchase), expected purchases,
  spend per purchase, expected spend) become features, so XGBoost learns corrections to the BTYD view
  rather than re-deriving it from raw recency and frequency. (BG/NBD, not Pareto/NBD: its fit is closed
  form per customer and takes a second; the Pareto/NBD likelihood can fall into slow quadrature). The
  BG/NBD prediction can also be each row's XGBoost base margin (log-odds of churn, log of expected spend),
  so the trees start from it and learn corrections; whether it is, is chosen per kind on the validation
  cutoff together with the blend weight (step 3, `choose_blend`): with it the trees may find nothing to
  correct and the model stays BG/NBD;
- horizon mapping with BG/NBD fitted at the scoring cutoff: churn_D = churn_d x P(no purchase in D) /
  P(no purchase in d), that is the model's P(none in the first d days) times the BTYD conditional
  probability of none in the remaining D - d days; LTV_D = LTV_d x E[purchases in D] / E[purchases in d].

When d = D no mapping is applied. The mapping assumes the BTYD per-customer shape of the purchase curve
beyond d; it is the documented approximation of this command.

Customer ids in `scores.csv` and the truth file: the shop `customer_id` of the person (the smallest when
identity resolution merged several), and for people who only ever checked out as guests their normalized
email (trimmed, lower case). `scores.csv` therefore holds guest emails, as the input file did.

Truth file format (`--truth`, CSV or Parquet): one row per customer with `customer_id` (as above),
`purchases` (completed orders in (cutoff, cutoff + D]) and `spend` (their net spend in the reporting
currency, >= 0). Scored customers missing from it count as 0 purchases and 0 spend; rows of customers
unknown at the cutoff (first purchase after it) are ignored and counted. Without `--truth`, the truth is
computed from the file's orders created in (cutoff, cutoff + D], each at its latest version in the file:
completed = placed/paid/shipped, net spend = subtotal - discount converted with seeds/fx_rates.csv.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml.baselines import BGNBD, PARETO_NBD, BaselinePredictions, predict_baselines
from ml.blend import BASE_MARGINS, Blend, choose_blend, target_metrics
from ml.frames import (
    CHURN_LABEL,
    SPEND_LABEL,
    ExampleFrame,
    feature_matrix,
    load_scoring_features,
    load_training_examples,
)
from ml.metrics import churn_metrics, ltv_metrics
from ml.promotion import REPORTED_METRICS
from ml.stacking import (
    BtydView,
    StackingError,
    bgnbd_prediction,
    btyd_margin,
    horizon_ratios,
    seasonal_margin,
    stack_btyd,
)
from ml.training import (
    CHURN,
    KINDS,
    LTV,
    TrainingConfig,
    predict,
    train_model,
    validation_mask,
)
from ml.windows import (
    MIN_SHORT_WINDOW_DAYS,
    SHORT_WINDOW_DAYS,
    SHORT_WINDOW_WEIGHT,
    ShortWindow,
    ShortWindowError,
    average_scores,
    short_window,
    train_short_pair,
)
from personalize.dbt import run_dbt
from personalize.settings import PROJECT_DIR, Settings

Progress = Callable[[str], None]

ORDER_COLUMNS = (
    "order_id", "customer_id", "email", "status", "currency", "subtotal", "discount", "shipping", "tax",
    "total", "created_at", "updated_at",
)  # fmt: skip
TRUTH_COLUMNS = ("customer_id", "purchases", "spend")
COMPLETED_STATUSES = ("placed", "paid", "shipped")
MODEL = "xgboost"
# ml_seasonal_exposure reads ml_seasonal_clock, so its + selects the clock too.
DBT_SELECTION = "+ml_training_examples +ml_scoring_features +ml_seasonal_exposure +int_identity_map"
FX_SEED = PROJECT_DIR / "seeds" / "fx_rates.csv"


class BacktestError(ValueError):
    """Bad input or too little history; the message names the file, column or record."""


@dataclass(frozen=True)
class BacktestConfig:
    orders: Path
    cutoff: date
    horizon_days: int
    out: Path
    truth: Path | None = None
    # None: the longest window <= horizon_days that leaves `min_validation_fit_cutoffs` training cutoffs
    # whose label windows end by the validation cutoff (training_plan).
    training_horizon_days: int | None = None
    cutoff_spacing_days: int = 30
    max_cutoffs: int = 12
    # Three, as the dbt defaults leave (3 of 5). Chosen on CDNOW's validation cutoff, never its holdout:
    # with 2 the plan is a 92-day window, validated at 1997-06-30 on a fit of 2,476 rows from two cutoffs
    # (everyone at most two months old), where early stopping keeps one tree: validation AUC 0.7319, and
    # the LTV blend takes BG/NBD alone (Gini 0.5690; model 0.5620). With 3 it is a 90-day window validated
    # at 1997-07-02 (the same customers, a window two days later) on 4,954 rows: AUC 0.7388, Gini 0.5883
    # with the model alone. With 1 (120 days, 840 rows) the single cutoff is January's buyers only.
    min_validation_fit_cutoffs: int = 3
    min_history_days: int = 30
    # The short window (short_window_plan): at most this long, None for none.
    short_training_horizon_days: int | None = SHORT_WINDOW_DAYS
    max_short_cutoffs: int = 24
    training: TrainingConfig = field(default_factory=TrainingConfig)  # ml/training.py says why


@dataclass(frozen=True)
class TrainingPlan:
    horizon_days: int  # the label window the models are trained on (d)
    cutoff_count: int
    spacing_days: int
    # The short window s < d and its cutoff count (dbt vars ml_short_*); None: no short window.
    short_horizon_days: int | None = None
    short_cutoff_count: int = 0

    def dbt_vars(self, cutoff: date) -> dict[str, object]:
        return {
            "as_of": cutoff.isoformat(),
            "ml_horizon_days": self.horizon_days,
            "ml_cutoff_count": self.cutoff_count,
            "ml_cutoff_spacing_days": self.spacing_days,
            "ml_short_horizon_days": self.short_horizon_days or 0,
            "ml_short_cutoff_count": self.short_cutoff_count,
        }


@dataclass(frozen=True)
class BacktestResult:
    scores: pd.DataFrame  # customer_id, churn_probability, predicted_ltv
    scores_path: Path
    metrics: dict[str, object] | None
    metrics_path: Path | None
    plan: TrainingPlan


def _cutoff_end_literal(cutoff: date) -> str:
    return f"timestamptz '{(cutoff + timedelta(days=1)).isoformat()} 00:00:00+00'"


def _reader(path: Path) -> str:
    name = path.name.lower()
    quoted = str(path).replace("'", "''")
    if name.endswith(".parquet"):
        return f"read_parquet('{quoted}')"
    if name.endswith((".csv", ".csv.gz")):
        return f"read_csv('{quoted}', header = true, all_varchar = true)"
    raise BacktestError(f"{path}: expected a .csv, .csv.gz or .parquet file")


def _read_table(con: duckdb.DuckDBPyConnection, path: Path, table: str, required: tuple[str, ...]) -> None:
    if not path.is_file():
        raise BacktestError(f"{path}: no such file")
    try:
        con.execute(f"create or replace table {table} as select * from {_reader(path)}")
    except duckdb.Error as exc:
        raise BacktestError(f"{path}: cannot be read ({exc})") from exc
    columns = {name.lower() for name, *_ in con.sql(f"describe {table}").fetchall()}
    missing = [c for c in required if c not in columns]
    if missing:
        raise BacktestError(f"{path}: missing required column(s) {', '.join(missing)}")


def load_orders(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Table `orders` (the file's rows) with parsed UTC `_created_at` / `_updated_at` (null: unparseable)."""
    _read_table(con, path, "raw_orders", ORDER_COLUMNS)
    con.execute("set TimeZone = 'UTC'")
    con.execute(
        "create or replace table orders as select "
        + ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in ORDER_COLUMNS)
        + ", try_cast(cast(created_at as varchar) as timestamptz) as _created_at"
        + ", try_cast(cast(updated_at as varchar) as timestamptz) as _updated_at"
        + " from raw_orders"
    )
    if con.sql("select count(*) from orders").fetchall()[0][0] == 0:
        raise BacktestError(f"{path}: has no rows")


def training_plan(first_order: date, config: BacktestConfig) -> TrainingPlan:
    """The label window d and the cutoff count: every window ends by the cutoff, every cutoff has
    `min_history_days` of history, and `min_validation_fit_cutoffs` cutoffs have windows that end by the
    validation cutoff (the latest), which is ceil(d / spacing) cutoffs after them."""
    available = (config.cutoff - first_order).days - config.min_history_days
    spacing = config.cutoff_spacing_days
    needed = config.min_validation_fit_cutoffs
    windows = (
        [config.training_horizon_days]
        if config.training_horizon_days
        else range(min(config.horizon_days, available), 0, -1)
    )
    for window in windows:
        if not 1 <= window <= available:
            continue
        count = min(config.max_cutoffs, 1 + (available - window) // spacing)
        if count - math.ceil(window / spacing) >= needed:
            plan = TrainingPlan(horizon_days=window, cutoff_count=count, spacing_days=spacing)
            return short_window_plan(plan, available, config)
    window_text = (
        f"a {config.training_horizon_days}-day training window"
        if config.training_horizon_days
        else f"any training window up to --horizon-days {config.horizon_days}"
    )
    raise BacktestError(
        f"the orders start on {first_order}: {(config.cutoff - first_order).days} days before the cutoff "
        f"leave no room for {window_text} with {needed} training cutoff(s) {spacing} days apart whose "
        f"windows end by the validation cutoff ({config.min_history_days} days of history before the first)"
    )


def short_window_plan(plan: TrainingPlan, available: int, config: BacktestConfig) -> TrainingPlan:
    """The plan plus the longest short window s <= `short_training_horizon_days`, s < d, that fits.

    s must put one of its cutoffs on the main window's validation cutoff (d - s a multiple of the spacing):
    the short pair is validated there too, with a fit on its cutoffs whose s-day windows end by it, so the
    blend with BTYD (choose_blend) judges the average of both pairs on the main window's validation rows.
    That fit, like the short pair itself, needs `min_validation_fit_cutoffs` clean cutoffs; without room
    for them, or for a window of MIN_SHORT_WINDOW_DAYS, the plan has no short window.
    """
    longest = config.short_training_horizon_days
    if not longest:
        return plan
    spacing, needed = plan.spacing_days, config.min_validation_fit_cutoffs
    for short in range(min(longest, plan.horizon_days - 1), MIN_SHORT_WINDOW_DAYS - 1, -1):
        if (plan.horizon_days - short) % spacing:
            continue
        count = min(config.max_short_cutoffs, 1 + (available - short) // spacing)
        # The short cutoff on the main validation cutoff, and the clean ones before it.
        validation_index = (plan.horizon_days - short) // spacing
        if count - validation_index - math.ceil(short / spacing) >= needed:
            return replace(plan, short_horizon_days=short, short_cutoff_count=count)
    return plan


def _write_landing_zone(con: duckdb.DuckDBPyConnection, config: BacktestConfig, say: Progress) -> date:
    """DIR/raw/shop_orders/orders.csv with the versions known at the end of the cutoff date; the first day."""
    end = _cutoff_end_literal(config.cutoff)
    unparseable = con.sql(
        "select count(*), min(order_id) from orders where _created_at is null or _updated_at is null"
    ).fetchall()[0]
    if unparseable[0]:
        # Which side of the cutoff such a row is on is unknowable; staging would quarantine it anyway.
        say(f"left out {unparseable[0]} order row(s) whose created_at or updated_at does not parse "
            f"(first: order_id {unparseable[1]!r})")  # fmt: skip
    known = f"_created_at < {end} and _updated_at < {end}"
    late = con.sql(
        f"select count(distinct order_id) from orders where _created_at < {end} and order_id not in "
        f"(select order_id from orders where {known})"
    ).fetchall()[0][0]
    if late:
        say(
            f"{late} order(s) created by the cutoff have no version updated by then: "
            "not visible at the cutoff"
        )
    first = con.sql(f"select min(_created_at), count(*) from orders where {known}").fetchall()[0]
    if first[0] is None:
        raise BacktestError(
            f"{config.orders}: no order was created and updated by the end of {config.cutoff}"
        )
    folder = config.out / "raw" / "shop_orders"
    folder.mkdir(parents=True, exist_ok=True)
    target = str(folder / "orders.csv").replace("'", "''")
    columns = ", ".join(f'"{c}"' for c in ORDER_COLUMNS)
    con.execute(f"copy (select {columns} from orders where {known}) to '{target}' (header, delimiter ',')")
    say(f"landing zone: {first[1]} order version(s) up to the end of {config.cutoff}")
    return first[0].date()


def _fx_rates() -> pd.DataFrame:
    rates = pd.read_csv(FX_SEED)
    return rates.loc[:, ["currency_code", "usd_per_unit"]]


def truth_from_orders(
    con: duckdb.DuckDBPyConnection, config: BacktestConfig, say: Progress
) -> pd.DataFrame | None:
    """Per customer key: completed orders created in (cutoff, cutoff + D] and their net spend.

    None when the file holds no order created after the cutoff.
    """
    end = _cutoff_end_literal(config.cutoff)
    window_end = _cutoff_end_literal(config.cutoff + timedelta(days=config.horizon_days))
    later = con.sql(f"select count(*), max(_created_at) from orders where _created_at >= {end}").fetchall()[0]
    if not later[0]:
        return None
    if later[1] < con.sql(f"select {window_end} - interval 1 day").fetchall()[0][0]:
        say(f"the file's orders end on {later[1].date()}, before the horizon ends: the truth is partial")
    con.register("fx", _fx_rates())
    unknown = con.sql(
        "select count(*), min(currency) from orders "
        f"where _created_at >= {end} and _created_at < {window_end} "
        "and upper(trim(currency)) not in (select currency_code from fx)"
    ).fetchall()[0]
    if unknown[0]:
        say(f"truth: left out {unknown[0]} order row(s) with a currency not in seeds/fx_rates.csv "
            f"(first: {unknown[1]!r})")  # fmt: skip
    completed = ", ".join(f"'{s}'" for s in COMPLETED_STATUSES)
    return con.sql(
        f"""
        with window_orders as (
            select *, row_number() over (partition by order_id order by _updated_at desc) as version_rank
            from orders
            where _created_at >= {end} and _created_at < {window_end} and _updated_at is not null
        ),
        final_orders as (
            select
                coalesce(nullif(trim(customer_id), ''), lower(trim(email))) as customer_id,
                lower(trim(status)) in ({completed}) as is_completed,
                (try_cast(subtotal as double) - coalesce(try_cast(discount as double), 0))
                    * fx.usd_per_unit as net_spend
            from window_orders
            inner join fx on upper(trim(window_orders.currency)) = fx.currency_code
            where version_rank = 1
        )
        select
            customer_id,
            count(*) filter (where is_completed) as purchases,
            greatest(coalesce(sum(net_spend) filter (where is_completed), 0), 0) as spend
        from final_orders
        where customer_id is not null
        group by customer_id
        """
    ).df()


def read_truth(con: duckdb.DuckDBPyConnection, path: Path) -> pd.DataFrame:
    """The --truth file, validated: one row per customer_id, purchases and spend numbers >= 0."""
    _read_table(con, path, "truth_file", TRUTH_COLUMNS)
    truth = con.sql(
        "select cast(customer_id as varchar) as customer_id, cast(purchases as varchar) as purchases, "
        "cast(spend as varchar) as spend from truth_file"
    ).df()
    for column in ("purchases", "spend"):
        values = pd.to_numeric(truth[column], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            row = truth.loc[bad].iloc[0]
            raise BacktestError(
                f"{path}: column {column} must be a number >= 0; customer_id {row['customer_id']!r} "
                f"has {row[column]!r}"
            )
        truth[column] = values.astype(np.float64)
    if truth["customer_id"].isna().any():
        raise BacktestError(
            f"{path}: column customer_id is empty in {int(truth['customer_id'].isna().sum())} row(s)"
        )
    truth["customer_id"] = truth["customer_id"].str.strip()
    duplicated = truth["customer_id"].duplicated()
    if duplicated.any():
        raise BacktestError(
            f"{path}: customer_id {truth.loc[duplicated, 'customer_id'].iloc[0]!r} appears twice"
        )
    return truth


def customer_ids(warehouse: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """person_id -> customer_id: the smallest shop customer id, else the smallest normalized email."""
    return warehouse.sql(
        """
        select
            person_id,
            coalesce(
                min(identifier) filter (where identifier_type = 'shop_customer_id'),
                min(identifier) filter (where identifier_type = 'email')
            ) as customer_id
        from intermediate.int_identity_map
        group by person_id
        """
    ).df()


def _person_of_identifier(warehouse: duckdb.DuckDBPyConnection) -> dict[str, str]:
    # Shop ids win over emails when a string is both (it cannot be: emails hold '@').
    rows = warehouse.sql(
        "select identifier, person_id from intermediate.int_identity_map "
        "where identifier_type in ('email', 'shop_customer_id') order by identifier_type"
    ).fetchall()
    return {identifier: person for identifier, person in rows}


def _json_ready(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def evaluate_scores(
    scored: pd.DataFrame,
    scoring: ExampleFrame,
    truth_by_person: pd.DataFrame,
    horizon_days: int,
    baselines: BaselinePredictions | None = None,
) -> dict[str, dict[str, dict[str, object]]]:
    """Model and baselines side by side, on every scored person, for the requested horizon.

    ``baselines``: their predictions for these rows and this horizon, when already computed.
    """
    actual = scoring.rows[["person_id"]].merge(truth_by_person, on="person_id", how="left").fillna(0.0)
    churned = (actual["purchases"].to_numpy() == 0).astype(np.float64)
    # Money is exact to the cent; summing a customer's orders in another order leaves float noise that would
    # break ties between equal spends differently in the rank metrics (Spearman) of the two truth sources.
    spend = np.round(actual["spend"].to_numpy(dtype=np.float64), 2)
    baselines = baselines or predict_baselines(scoring.rows, horizon_days)
    churn = {MODEL: scored["churn_probability"].to_numpy(), **baselines.churn}
    ltv = {MODEL: scored["predicted_ltv"].to_numpy(), **baselines.ltv}
    return {
        CHURN: {name: churn_metrics(churned, p).as_dict() for name, p in churn.items()},
        LTV: {name: ltv_metrics(spend, p).as_dict() for name, p in ltv.items()},
        "unavailable_baselines": dict(baselines.unavailable),  # type: ignore[dict-item]
    }


def _train_and_score(
    warehouse: duckdb.DuckDBPyConnection, plan: TrainingPlan, config: BacktestConfig, say: Progress
) -> tuple[
    pd.DataFrame, ExampleFrame, ExampleFrame, dict[str, Blend], BaselinePredictions, ShortWindow | None
]:
    examples = stack_btyd(load_training_examples(warehouse), plan.horizon_days)
    scoring = stack_btyd(load_scoring_features(warehouse), plan.horizon_days)
    say(f"training on {len(examples.rows)} rows at cutoffs {[c.isoformat() for c in examples.cutoffs]}, "
        f"{plan.horizon_days}-day label windows")  # fmt: skip
    churn_ratio, ltv_ratio = horizon_ratios(scoring, plan.horizon_days, config.horizon_days)
    ratios = {CHURN: churn_ratio, LTV: ltv_ratio}
    short, reason = (
        short_window(warehouse, examples, scoring, plan.short_horizon_days, config.horizon_days)
        if plan.short_horizon_days
        else (None, "")
    )
    if short is None and reason:
        say(f"short window not used: {reason}")
    if short is not None:
        say(f"short window used, averaged with the {plan.horizon_days}-day models: {reason}; "
            f"{len(short.examples.rows)} rows at cutoffs "
            f"{[c.isoformat() for c in short.examples.cutoffs]}")  # fmt: skip
    validation_rows = examples.rows.loc[validation_mask(examples)]
    validation_view, scoring_view = BtydView.fit(validation_rows), BtydView.fit(scoring.rows)
    # The baselines as a data scientist would have fitted them at the validation cutoff, for its window,
    # and at the scoring cutoff, for the horizon (the evaluation reuses these).
    reference = predict_baselines(validation_rows, examples.horizon_days)
    horizon_reference = predict_baselines(scoring.rows, config.horizon_days)
    validation_actual = {
        CHURN: validation_rows[CHURN_LABEL].to_numpy(dtype=np.float64),
        LTV: validation_rows[SPEND_LABEL].to_numpy(dtype=np.float64),
    }
    predictions: dict[str, np.ndarray] = {}
    blends: dict[str, Blend] = {}
    for kind in KINDS:
        references = reference.churn if kind == CHURN else reference.ltv
        horizon_references = horizon_reference.churn if kind == CHURN else horizon_reference.ltv
        reference_metrics = {
            scorer: target_metrics(kind, validation_actual[kind], predicted)
            for scorer, predicted in references.items()
        }
        # Per partner: its prediction of the validation window and of the horizon at the scoring cutoff.
        partners = {
            BGNBD: (
                bgnbd_prediction(validation_view, validation_rows, kind, examples.horizon_days),
                bgnbd_prediction(scoring_view, scoring.rows, kind, config.horizon_days),
            )
        }
        if PARETO_NBD in references and PARETO_NBD in horizon_references:
            partners[PARETO_NBD] = (references[PARETO_NBD], horizon_references[PARETO_NBD])
        best: tuple[Blend, np.ndarray] | None = None
        for margin_name in BASE_MARGINS:

            def margin(frame: ExampleFrame, kind: str = kind, name: str = margin_name) -> np.ndarray | None:
                return btyd_margin(frame, kind) if name == "bg_nbd" else seasonal_margin(frame, kind)

            trained = train_model(examples, kind, config.training, say, base_margin=margin(examples))
            # The short pair is validated on the main validation rows, so the blend is chosen for the average.
            short_pair = (
                train_short_pair(short, trained, config.training, say, margin) if short is not None else None
            )
            if short_pair is not None:
                trained = short_pair.averaged(trained)
            model: np.ndarray | None = None
            for partner, (validation_partner, horizon_partner) in partners.items():
                blend = choose_blend(
                    kind, trained, validation_partner, reference_metrics, margin_name, partner
                )
                say(f"{kind}, base margin {margin_name}: {blend.model_weight:.1f} x model + "
                    f"{1 - blend.model_weight:.1f} x {partner}: validation {blend.validation_metric} "
                    f"{blend.validation_score:.4f}, {blend.validation_losses} comparison(s) with the "
                    f"baselines unwon (model alone {blend.model_only_score:.4f}, "
                    f"{blend.model_only_losses})")  # fmt: skip
                if best is not None and blend.rank() >= (best[0].rank()[0], best[0].rank()[1] - 1e-9):
                    continue
                if model is None:
                    matrix = feature_matrix(scoring, trained.features)
                    model = ratios[kind] * predict(
                        trained.booster, matrix, trained.features, kind, trained.calibration_scale,
                        base_margin=margin(scoring),
                    )  # fmt: skip
                    if short is not None and short_pair is not None:
                        model = average_scores(kind, model, short.scores(kind, short_pair.trained, margin))
                best = (blend, blend.apply(model, horizon_partner))
        assert best is not None
        blends[kind], predictions[kind] = best
        say(f"{kind}: base margin {blends[kind].base_margin}, {blends[kind].model_weight:.1f} x model + "
            f"{1 - blends[kind].model_weight:.1f} x {blends[kind].baseline}")  # fmt: skip
    scored = pd.DataFrame(
        {
            "person_id": scoring.rows["person_id"].to_numpy(),
            "churn_probability": predictions[CHURN],
            "predicted_ltv": predictions[LTV],
        }
    )
    return scored, scoring, examples, blends, horizon_reference, short


def _check_clean_orders(warehouse: duckdb.DuckDBPyConnection, config: BacktestConfig, say: Progress) -> None:
    """Say how many order rows staging kept and why it quarantined the rest; stop when it kept none."""
    reasons = warehouse.sql(
        "select coalesce(quarantine_reason, 'clean'), count(*) from staging.base_shop__orders group by all "
        "order by 2 desc"
    ).fetchall()
    counts = dict(reasons)
    clean = counts.pop("clean", 0)
    quarantined = ", ".join(f"{reason} {rows:,}" for reason, rows in counts.items())
    say(f"staging: {clean:,} clean order row(s)" + (f"; quarantined: {quarantined}" if quarantined else ""))
    if clean == 0:
        warehouse_file = config.out / "warehouse.duckdb"
        raise BacktestError(
            f"no order in {config.orders} passed staging (quarantined: {quarantined or 'none'}); the reason "
            f"of each row is in staging.base_shop__orders.quarantine_reason of {warehouse_file} "
            "(amounts must be plain numbers such as 29.33, timestamps ISO-8601)"
        )


def run_backtest(config: BacktestConfig, progress: Progress | None = None) -> BacktestResult:
    say = progress or (lambda _message: None)
    if config.horizon_days < 1:
        raise BacktestError(f"--horizon-days must be at least 1, got {config.horizon_days}")
    # Absolute from here on: dbt runs in the warehouse's folder and reads its target path from the project's.
    config = replace(config, out=config.out.absolute())
    if config.out.exists() and not config.out.is_dir():
        raise BacktestError(f"--out {config.out} exists and is not a directory")
    files = duckdb.connect()
    load_orders(files, config.orders)
    truth = read_truth(files, config.truth) if config.truth else None
    for stale in ("raw", "warehouse.duckdb", "dbt_target"):
        path = config.out / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    config.out.mkdir(parents=True, exist_ok=True)
    first_order = _write_landing_zone(files, config, say)
    if truth is None:
        truth = truth_from_orders(files, config, say)
    plan = training_plan(first_order, config)
    say(f"training window {plan.horizon_days} days (requested horizon {config.horizon_days}), "
        f"{plan.cutoff_count} cutoff(s) {plan.spacing_days} days apart"
        + (f"; short window {plan.short_horizon_days} days, {plan.short_cutoff_count} cutoff(s)"
           if plan.short_horizon_days else ""))  # fmt: skip

    settings = Settings(
        raw_dir=config.out / "raw",
        duckdb_path=config.out / "warehouse.duckdb",
        model_dir=config.out / "models",
    )
    target = config.out / "dbt_target"
    say("dbt: building the warehouse as of the cutoff")
    run_dbt(
        [
            "build",
            "--select",
            *DBT_SELECTION.split(),
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
        ],
        settings,
        # The requested horizon's seasonal exposure at the cutoff too: the trained window's scores are
        # mapped to it (horizon_ratios) in effective days.
        vars_json=json.dumps(
            {**plan.dbt_vars(config.cutoff), "ml_scoring_horizon_days": config.horizon_days}
        ),
        capture=True,
    )
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as warehouse:
        _check_clean_orders(warehouse, config, say)
        try:
            trained = _train_and_score(warehouse, plan, config, say)
        except (StackingError, ShortWindowError) as exc:
            raise BacktestError(str(exc)) from exc
        scored, scoring, examples, blends, baselines, short = trained
        ids = customer_ids(warehouse)
        person_of = _person_of_identifier(warehouse)
    scores = (
        scored.merge(ids, on="person_id", how="left")
        .loc[:, ["customer_id", "churn_probability", "predicted_ltv"]]
        .sort_values("customer_id", kind="stable")
        .reset_index(drop=True)
    )
    scores_path = config.out / "scores.csv"
    scores.to_csv(scores_path, index=False)
    say(f"wrote {len(scores)} scores to {scores_path}")

    if truth is None:
        return BacktestResult(scores, scores_path, None, None, plan)
    truth = truth.assign(person_id=truth["customer_id"].map(person_of))
    unknown = int(truth["person_id"].isna().sum())
    if unknown:
        say(f"truth: {unknown} customer(s) unknown at the cutoff (first purchase after it) are not scored")
    truth_by_person = (
        truth.dropna(subset=["person_id"]).groupby("person_id", as_index=False)[["purchases", "spend"]].sum()
    )
    metrics: dict[str, object] = {
        "cutoff": config.cutoff.isoformat(),
        "horizon_days": config.horizon_days,
        "training_horizon_days": plan.horizon_days,
        "training_cutoffs": [c.isoformat() for c in examples.cutoffs],
        "validation_fit_cutoffs": [c.isoformat() for c in examples.validation_fit_cutoffs],
        "horizon_mapping": "none" if plan.horizon_days == config.horizon_days else "bgnbd_ratio",
        "short_training_horizon_days": short.horizon_days if short else None,
        "short_training_cutoffs": [c.isoformat() for c in short.examples.cutoffs] if short else [],
        "short_window_weight": SHORT_WINDOW_WEIGHT if short else 0.0,
        "blend": {kind: asdict(blend) for kind, blend in blends.items()},
        "customers_scored": len(scores),
        "truth_source": str(config.truth) if config.truth else "orders after the cutoff in the file",
        "truth_customers_unknown_at_cutoff": unknown,
        **evaluate_scores(scored, scoring, truth_by_person, config.horizon_days, baselines),
    }
    metrics_path = config.out / "metrics.json"
    metrics_path.write_text(json.dumps(_json_ready(metrics), indent=2) + "\n")
    say(f"wrote {metrics_path}")
    return BacktestResult(scores, scores_path, metrics, metrics_path, plan)


def summary_lines(metrics: dict[str, object]) -> list[str]:
    """metrics.json as two small tables for the terminal."""
    lines: list[str] = []
    for kind, names in REPORTED_METRICS.items():
        table = metrics.get(kind)
        if not isinstance(table, dict):
            continue
        lines.append(f"{kind} ({metrics.get('horizon_days')} days after {metrics.get('cutoff')}):")
        lines.append("  " + f"{'':>20}" + "".join(f"{n:>16}" for n in names))
        for scorer, values in table.items():
            cells = "".join(
                f"{values.get(n):>16.4f}" if isinstance(values.get(n), float) else f"{'-':>16}" for n in names
            )
            lines.append("  " + f"{scorer:>20}" + cells)
    return lines
