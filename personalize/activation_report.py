"""The people-per-segment-and-tier table `personalize run` prints after building the warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

TIERS = ("high", "medium", "low", "unscored")
STATUS_RELATION = "activation.customer_audience_status"


def segment_tier_counts(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int, int]]:
    """(segment, ltv_tier, people, people in esp_audience), largest segments first."""
    return connection.sql(
        f"""
        select
            segment,
            ltv_tier,
            count(*) as people,
            sum(case when is_in_audience then 1 else 0 end) as in_audience
        from {STATUS_RELATION}
        group by segment, ltv_tier
        order by sum(count(*)) over (partition by segment) desc, segment, ltv_tier
        """
    ).fetchall()


def activation_summary(duckdb_path: Path) -> str:
    """A plain-text table: one line per segment, people per LTV tier, total and audience size."""
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        exists = connection.sql(
            "select count(*) from information_schema.tables "
            "where table_schema = 'activation' and table_name = 'customer_audience_status'"
        ).fetchall()[0][0]
        if not exists:
            return f"no {STATUS_RELATION} in {duckdb_path}: activation has not been built"
        counts = segment_tier_counts(connection)

    segments: dict[str, dict[str, int]] = {}
    audience: dict[str, int] = {}
    for segment, tier, people, in_audience in counts:
        segments.setdefault(segment, {})[tier] = people
        audience[segment] = audience.get(segment, 0) + in_audience
    width = max([len("segment"), *(len(s) for s in segments)])
    header = f"{'segment':<{width}}" + "".join(f"{c:>10}" for c in (*TIERS, "total", "audience"))
    lines = ["people per segment and LTV tier (esp_audience: emailable now)", header]
    for segment, tiers in segments.items():
        cells = [tiers.get(tier, 0) for tier in TIERS]
        values = (*cells, sum(cells), audience[segment])
        lines.append(f"{segment:<{width}}" + "".join(f"{v:>10,}" for v in values))
    totals = [sum(t.get(tier, 0) for t in segments.values()) for tier in TIERS]
    values = (*totals, sum(totals), sum(audience.values()))
    lines.append(f"{'all':<{width}}" + "".join(f"{v:>10,}" for v in values))
    return "\n".join(lines)
