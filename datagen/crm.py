"""CRM customer records: versions over time, duplicate records of one person, and dirty profile fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import defects as d
from datagen import fmt, ids, vocab
from datagen.context import Chunk
from datagen.persons import Kind

DAY = 86_400
TS_MIX = np.array([0.25, 0.1, 0.1, 0.25, 0.15, 0.05, 0.05, 0.05, 0, 0])
GENDERS = ("F", "M", "X")
# Postal code templates per country ('D' digit, 'L' letter), matching vocab.COUNTRIES order.
POSTAL_TEMPLATES = ("DDDDD", "LDL DLD", "LLD DLL", "DDDDD", "DDDDD", "DDDD LL", "DDDDD", "DDDDD")
_LETTERS = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ", dtype=np.uint8)


def _postal_codes(country: np.ndarray, h: np.ndarray) -> pa.Array:
    """Postal codes from a per-row hash, so rows with the same hash agree."""
    width = max(len(t) for t in POSTAL_TEMPLATES)
    tmpl = np.full((len(POSTAL_TEMPLATES), width), ord(" "), dtype=np.uint8)
    for i, t in enumerate(POSTAL_TEMPLATES):
        tmpl[i, : len(t)] = np.frombuffer(t.encode(), dtype=np.uint8)
    rows = tmpl[country]
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(5)
    bits = (h[:, None] >> shifts) & np.uint64(31)
    digits = (bits % np.uint64(10)).astype(np.uint8) + ord("0")
    letters = _LETTERS[(bits % np.uint64(len(_LETTERS))).astype(np.intp)]
    mat = np.where(rows == ord("D"), digits, np.where(rows == ord("L"), letters, rows)).astype(np.uint8)
    lengths = np.array([len(t) for t in POSTAL_TEMPLATES])[country]
    return fmt.ragged_strings(mat, 0, lengths)


def _phones(country: np.ndarray, h: np.ndarray) -> pa.Array:
    """Fictional numbers (the 555-01xx range and friends) from a per-row hash."""
    prefixes = fmt.vocabulary(
        [
            "+1-555-01",
            "+1-555-01",
            "+44 7700 900",
            "+49 30 1234",
            "+33 1 99 00",
            "+31 20 555",
            "+34 91 555",
            "+39 06 555",
        ]
    )
    suffix = (h % np.uint64(10_000)).astype(np.int64)
    return pc.binary_join_element_wise(
        prefixes.take(pa.array(country.astype(np.int32))), fmt.padded_ids(suffix, "", 4), ""
    )


def _variants(country: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """A non-ISO spelling of each row's country."""
    flat = [v for row in vocab.COUNTRIES for v in row[4]]
    counts = np.array([len(row[4]) for row in vocab.COUNTRIES])
    starts = np.cumsum(counts) - counts
    pick = starts[country] + (rng.random(len(country)) * counts[country]).astype(np.int64)
    return fmt.vocabulary(flat).take(pa.array(pick))


def _odd_names(names: pa.Array, rng: np.random.Generator) -> pa.Array:
    kind = rng.integers(0, 4, len(names))
    return pc.case_when(
        pc.make_struct(*[pa.array(kind == k) for k in range(3)]),
        pc.utf8_upper(names),
        pc.utf8_lower(names),
        pc.utf8_swapcase(names),
        pc.binary_join_element_wise("  ", names, " ", ""),
    )


def _email_variants(emails: pa.Array, rng: np.random.Generator) -> pa.Array:
    """Same address, different case or surrounding whitespace (valid after trim + lowercase)."""
    kind = rng.integers(0, 3, len(emails))
    return pc.case_when(
        pc.make_struct(pa.array(kind == 0), pa.array(kind == 1)),
        pc.utf8_upper(emails),
        pc.utf8_capitalize(emails),
        pc.binary_join_element_wise(" ", emails, "  ", ""),
    )


@dataclass(frozen=True)
class CrmOutput:
    table: pa.Table
    has_record: np.ndarray  # per chunk person: a primary CRM record exists in raw


def build(ch: Chunk) -> CrmOutput:
    p, rng, tl, rates, log = ch.persons, ch.rng, ch.tl, ch.config.defects, ch.log
    kind = p.kind[ch.lo : ch.hi]
    acq = p.acquired_at[ch.lo : ch.hi]
    created = np.where(
        kind == Kind.GUEST, acq + rng.integers(DAY, 60 * DAY, ch.size), acq + rng.integers(0, 120, ch.size)
    )
    has_record = p.in_crm[ch.lo : ch.hi] & (created < tl.cutoff - 3600)
    cp = np.flatnonzero(has_record)  # local person index
    created = created[cp]
    n_versions = 1 + rng.binomial(2, 0.3, len(cp))
    row_person = np.repeat(np.arange(len(cp)), n_versions)
    rank = np.arange(len(row_person)) - np.repeat(np.cumsum(n_versions) - n_versions, n_versions)
    later = created[row_person] + (
        rng.random(len(row_person)) * (tl.cutoff - 1 - created[row_person])
    ).astype(np.int64)
    updated = np.where(rank == 0, created[row_person], later)
    order = np.lexsort((updated, row_person))
    updated = updated[order]
    # Moves and new phone numbers happen from a version onwards.
    move_from = rng.integers(1, 4, len(cp))[row_person]
    phone_from = rng.integers(1, 4, len(cp))[row_person]
    moved = rank >= move_from
    phone_changed = rank >= phone_from

    # Duplicate records: one extra record for some persons, appended as extra rows.
    dup = d.pick(rng, rates.duplicate_person_record, len(cp))
    legacy = rng.random(len(dup)) < 0.5
    all_person = np.concatenate([row_person, dup])
    n_main, n_dup = len(row_person), len(dup)
    gp = ch.lo + cp[all_person]  # global person per row
    country = p.country[gp]
    dup_created = np.where(
        legacy,
        created[dup] - rng.integers(DAY, 400 * DAY, n_dup),
        created[dup] + rng.integers(DAY, 200 * DAY, n_dup),
    )
    dup_created = np.minimum(dup_created, tl.cutoff - 3600)
    all_created = np.concatenate([created[row_person], dup_created])
    all_updated = np.concatenate([updated, dup_created])
    is_moved = np.concatenate([moved, np.zeros(n_dup, dtype=bool)])
    is_phone = np.concatenate([phone_changed, np.zeros(n_dup, dtype=bool)])

    customer_id = pa.concat_arrays(
        [
            ids.crm_ids(gp[:n_main], ch.seed),
            pc.if_else(
                pa.array(legacy),
                ids.legacy_crm_ids(gp[n_main:], ch.seed),
                ids.crm_duplicate_ids(gp[n_main:], ch.seed),
            ),
        ]
    )
    all_person_local = gp - ch.lo
    email = ch.emails.take(pa.array(all_person_local))
    dup_rows = np.arange(n_main, n_main + n_dup)
    same_system = dup_rows[~legacy]
    email = d.replace_at(email, same_system, _email_variants(email.take(pa.array(same_system)), rng))

    # Profile attributes come from hashes of the person (and of whether they moved / changed phone), so the
    # versions and duplicate records of one person agree without lookups.
    gpu = gp.astype(np.uint64)
    h = fmt.mix64(gpu, ch.seed + 17)
    h_place = fmt.mix64(gpu * np.uint64(2) + is_moved.astype(np.uint64), ch.seed + 23)
    h_phone = fmt.mix64(gpu * np.uint64(2) + is_phone.astype(np.uint64), ch.seed + 29)
    first = fmt.vocabulary([f.capitalize() for f in vocab.FIRST_NAMES]).take(
        pa.array(p.first[gp].astype(np.int32))
    )
    last = fmt.vocabulary([x.capitalize() for x in vocab.LAST_NAMES]).take(
        pa.array(p.last[gp].astype(np.int32))
    )
    birth_null = (h % np.uint64(100)) < 30
    age_days = (18 * 365 + (h >> np.uint64(8)) % np.uint64(62 * 365)).astype(np.int64)
    birth_days = (tl.cutoff // DAY) - age_days
    gender_code = ((h >> np.uint64(40)) % np.uint64(20)).astype(np.int64)
    gender_valid = gender_code < 17
    city_counts = np.array([len(vocab.CITIES[c[0]]) for c in vocab.COUNTRIES])
    city_starts = np.cumsum(city_counts) - city_counts
    city = city_starts[country] + (h_place >> np.uint64(40)).astype(np.int64) % city_counts[country]
    city_vocab = fmt.vocabulary([city for c in vocab.COUNTRIES for city in vocab.CITIES[c[0]]])
    phone_null = ((h >> np.uint64(50)) % np.uint64(100)) < 25
    n_rows = n_main + n_dup
    created_style = ch.style(TS_MIX, n_rows)
    cols: d.Columns = {
        "customer_id": customer_id,
        "email": email,
        "first_name": first,
        "last_name": last,
        "phone": pc.if_else(
            pa.array(phone_null & ~is_phone), pa.scalar(None, pa.string()), _phones(country, h_phone)
        ),
        "birth_date": pc.if_else(pa.array(birth_null), pa.scalar(None, pa.string()), fmt.dates(birth_days)),
        "gender": fmt.dictionary(gender_code % 3, fmt.vocabulary(GENDERS), gender_valid),
        "country": fmt.dictionary(country, fmt.vocabulary([c[0] for c in vocab.COUNTRIES])),
        "city": fmt.dictionary(city, city_vocab),
        "postal_code": _postal_codes(country, h_place),
        "created_at": fmt.timestamps(all_created, created_style),
        "updated_at": fmt.timestamps(
            all_updated, np.where(rng.random(n_rows) < 0.7, created_style, ch.style(TS_MIX, n_rows))
        ),
    }
    cols, email_ok = _inject(ch, cols, n_rows)
    ch.seen.email[all_person_local[email_ok]] = True
    src = "crm_customers"
    log.add_rows(
        src,
        cols,
        dup_rows,
        d.DUPLICATE_PERSON_RECORD,
        pc.if_else(pa.array(legacy), "legacy_system", "same_system"),
    )
    record_rows = np.concatenate([np.flatnonzero(rank == 0), dup_rows])
    ch.seen.crm.append((cols["customer_id"].take(pa.array(record_rows)), all_person_local[record_rows]))
    return CrmOutput(table=pa.table(cols), has_record=has_record)


def _inject(ch: Chunk, cols: d.Columns, n: int) -> tuple[d.Columns, np.ndarray]:
    rng, rates, log, src = ch.rng, ch.config.defects, ch.log, "crm_customers"
    bad = d.pick(rng, rates.invalid_email, n)
    cols["email"] = d.replace_at(cols["email"], bad, d.invalid_emails(cols["email"].take(pa.array(bad)), rng))
    log.add_rows(src, cols, bad, d.INVALID_EMAIL, "email")
    ok = np.ones(n, dtype=bool)
    ok[bad] = False

    names = d.pick(rng, rates.name_format, n)
    which = rng.integers(0, 3, len(names))  # first, last, both
    for col, sel in (("first_name", which != 1), ("last_name", which != 0)):
        rows = names[sel]
        cols[col] = d.replace_at(cols[col], rows, _odd_names(cols[col].take(pa.array(rows)), rng))
    log.add_rows(
        src,
        cols,
        names,
        d.NAME_FORMAT,
        fmt.vocabulary(["first_name", "last_name", "first_name,last_name"]).take(pa.array(which)),
    )

    births = d.pick(rng, rates.impossible_birth_date, n)
    cols["birth_date"] = d.replace_at(
        cols["birth_date"], births, d.pool_values(vocab.IMPOSSIBLE_BIRTH_DATES, rng, len(births))
    )
    log.add_rows(src, cols, births, d.IMPOSSIBLE_BIRTH_DATE, "birth_date")

    countries = d.pick(rng, rates.country_variant, n)
    iso = cols["country"].indices.to_numpy(zero_copy_only=False)
    cols["country"] = d.replace_at(cols["country"], countries, _variants(iso[countries], rng))
    log.add_rows(src, cols, countries, d.COUNTRY_VARIANT, "country")

    bad_ts = d.pick(rng, rates.unparseable_timestamp, n)
    cols["created_at"] = d.replace_at(
        cols["created_at"], bad_ts, d.pool_values(vocab.UNPARSEABLE_TIMESTAMPS, rng, len(bad_ts))
    )
    log.add_rows(src, cols, bad_ts, d.UNPARSEABLE_TIMESTAMP, "created_at")
    return cols, ok
