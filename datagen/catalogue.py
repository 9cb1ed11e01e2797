"""Product catalogue: categories, brands, Zipf popularity, versioned prices, and vectorised sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import fmt, vocab
from datagen.config import GeneratorConfig, Timeline

DAY = 86_400
ZIPF_EXPONENT = 1.1
UNKNOWN_PRODUCT_POOL = 64  # distinct unknown product ids used by the unknown_product defect


@dataclass(frozen=True)
class Catalogue:
    category: np.ndarray  # int8 per product
    brand: np.ndarray  # int16 index into ``brand_names``
    noun: np.ndarray  # int16 index into ``noun_names``
    adjective: np.ndarray  # int8
    # Versions, sorted by (product, valid_from): price in USD cents and activity flag.
    version_product: np.ndarray
    version_from: np.ndarray
    version_price: np.ndarray
    version_active: np.ndarray
    # Sampling structures: products sorted by category; cdf shifted by the category index.
    by_category: np.ndarray
    cdf: np.ndarray
    category_start: np.ndarray
    category_stop: np.ndarray
    popularity: np.ndarray  # within-category popularity weight per product
    brand_names: tuple[str, ...]
    noun_names: tuple[str, ...]
    ids: pa.StringArray  # product_id per product, then UNKNOWN_PRODUCT_POOL unknown ids
    urls: pa.StringArray  # product_url, same indexing as ``ids``

    @property
    def n(self) -> int:
        return len(self.category)

    def sample(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One product per entry, drawn by popularity within the given category."""
        c = np.asarray(categories, dtype=np.float64)
        pos = np.searchsorted(self.cdf, c + rng.random(len(c)), side="right")
        pos = np.clip(
            pos,
            self.category_start[categories.astype(np.intp)],
            self.category_stop[categories.astype(np.intp)] - 1,
        )
        return self.by_category[pos]

    def price_at(self, product: np.ndarray, t: np.ndarray) -> np.ndarray:
        """USD cents of each product at instant ``t`` (the version in force then)."""
        key = self.version_product.astype(np.int64) * (1 << 40) + (self.version_from - _EPOCH0)
        q = product.astype(np.int64) * (1 << 40) + (t - _EPOCH0)
        pos = np.searchsorted(key, q, side="right") - 1
        # Before the first version the first price applies.
        first = np.searchsorted(self.version_product, product, side="left")
        pos = np.maximum(pos, first)
        return self.version_price[pos]


_EPOCH0 = np.int64(-(2**38))


def _round_price(usd: np.ndarray) -> np.ndarray:
    """Retail price points: whole dollars minus one cent, at least 1.99."""
    return np.maximum(np.round(usd), 2).astype(np.int64) * 100 - 1


def build_catalogue(config: GeneratorConfig, tl: Timeline, rng: np.random.Generator) -> Catalogue:
    n = config.products or int(np.clip(200 + config.customers // 250, 200, 5000))
    n_cat = len(vocab.CATEGORIES)
    demand = np.array([c[1] for c in vocab.CATEGORIES])
    # Every category gets products, the rest in proportion to demand.
    counts = np.maximum(1, np.floor(demand / demand.sum() * n).astype(np.int64))
    counts[np.argmax(counts)] += n - counts.sum()
    category = np.repeat(np.arange(n_cat, dtype=np.int8), counts)

    brand_names: list[str] = []
    noun_names: list[str] = []
    brand = np.empty(n, dtype=np.int16)
    noun = np.empty(n, dtype=np.int16)
    price = np.empty(n, dtype=np.int64)
    popularity = np.empty(n, dtype=np.float64)
    for c, (_, _, median, brands, nouns, _) in enumerate(vocab.CATEGORIES):
        sel = np.flatnonzero(category == c)
        brand[sel] = len(brand_names) + rng.integers(0, len(brands), len(sel))
        noun[sel] = len(noun_names) + rng.integers(0, len(nouns), len(sel))
        brand_names.extend(brands)
        noun_names.extend(nouns)
        price[sel] = _round_price(median * rng.lognormal(0.0, 0.55, len(sel)))
        ranks = rng.permutation(len(sel)) + 1
        popularity[sel] = 1.0 / ranks**ZIPF_EXPONENT
    adjective = rng.integers(0, len(vocab.ADJECTIVES), n).astype(np.int8)

    # Versions: the first predates the history; later ones change the price; a few discontinue recently.
    extra = np.minimum(rng.poisson(1.2, n), 3)
    n_versions = 1 + extra
    vp = np.repeat(np.arange(n, dtype=np.int64), n_versions)
    first_pos = np.concatenate([[0], np.cumsum(n_versions)[:-1]])
    rank = np.arange(len(vp)) - np.repeat(first_pos, n_versions)
    vfrom = tl.start + (rng.random(len(vp)) * (tl.cutoff - tl.start - DAY)).astype(np.int64)
    vfrom[rank == 0] = tl.start - (rng.integers(30, 400, n) * DAY) - rng.integers(0, DAY, n)
    order = np.lexsort((vfrom, vp))
    vfrom = vfrom[order]
    factor = np.where(rank == 0, 1.0, rng.uniform(0.85, 1.15, len(vp)))
    vprice = _round_price(price[vp] / 100 * factor)
    active = np.ones(len(vp), dtype=bool)
    last_pos = first_pos + n_versions - 1
    discontinue = (rng.random(n) < 0.06) & (n_versions > 1)
    recent = tl.cutoff - rng.integers(2, 90, n) * DAY - rng.integers(0, DAY, n)
    active[last_pos[discontinue]] = False
    vfrom[last_pos[discontinue]] = np.maximum(recent[discontinue], vfrom[last_pos[discontinue] - 1] + DAY)
    vfrom = np.minimum(vfrom, tl.cutoff - 1)

    by_category = np.argsort(category, kind="stable")
    cat_sorted = category[by_category]
    w = popularity[by_category]
    cum = np.cumsum(w)
    starts = np.searchsorted(cat_sorted, np.arange(n_cat), side="left")
    stops = np.searchsorted(cat_sorted, np.arange(n_cat), side="right")
    base = np.repeat(np.concatenate([[0.0], cum])[starts], stops - starts)
    totals = np.repeat(cum[stops - 1] - np.concatenate([[0.0], cum])[starts], stops - starts)
    cdf = cat_sorted + (cum - base) / totals

    known = np.arange(1, n + 1)
    unknown = 900_000 + np.arange(UNKNOWN_PRODUCT_POOL)
    ids = fmt.padded_ids(np.concatenate([known, unknown]), "P", 6)
    urls = pc.binary_join_element_wise(vocab.SITE + "/p/", ids, "")

    return Catalogue(
        category=category,
        brand=brand,
        noun=noun,
        adjective=adjective,
        version_product=vp,
        version_from=vfrom,
        version_price=vprice,
        version_active=active,
        by_category=by_category,
        cdf=cdf,
        category_start=starts,
        category_stop=stops,
        popularity=popularity,
        brand_names=tuple(brand_names),
        noun_names=tuple(noun_names),
        ids=ids,
        urls=urls,
    )


def products_table(cat: Catalogue, rng: np.random.Generator) -> pa.Table:
    """The raw ``products`` source: one row per product version."""
    vp = cat.version_product
    ids = cat.ids.take(pa.array(vp))
    brands = fmt.vocabulary(cat.brand_names)
    nouns = fmt.vocabulary(cat.noun_names)
    adjectives = fmt.vocabulary(vocab.ADJECTIVES)
    name = pc.binary_join_element_wise(
        brands.take(pa.array(cat.brand[vp].astype(np.int32))),
        adjectives.take(pa.array(cat.adjective[vp].astype(np.int32))),
        nouns.take(pa.array(cat.noun[vp].astype(np.int32))),
        " ",
    )
    cat_codes = np.array([c[0][:3].upper().replace("&", "X") for c in vocab.CATEGORIES])
    sku = pc.binary_join_element_wise(
        "SKU-", pa.array(cat_codes[cat.category[vp]]), "-", fmt.padded_ids(vp + 1, "", 6), ""
    )
    categories = fmt.vocabulary([c[0] for c in vocab.CATEGORIES])
    style = rng.choice(len(fmt.TS_STYLES), size=len(vp), p=_STYLE_MIX)
    return pa.table(
        {
            "product_id": ids,
            "sku": sku,
            "name": name,
            "category": fmt.dictionary(cat.category[vp], categories),
            "brand": fmt.dictionary(cat.brand[vp], brands),
            "price": fmt.money(cat.version_price),
            "currency": fmt.dictionary(np.zeros(len(vp)), fmt.vocabulary(["USD"])),
            "is_active": fmt.dictionary(
                cat.version_active.astype(np.int32), fmt.vocabulary(["false", "true"])
            ),
            "image_url": pc.binary_join_element_wise("https://cdn.shop.example.com/img/", ids, ".jpg", ""),
            "product_url": cat.urls.take(pa.array(vp)),
            "updated_at": fmt.timestamps(cat.version_from, style),
        }
    )


_STYLE_MIX = np.array([0.5, 0.2, 0.1, 0.1, 0, 0.05, 0.05, 0, 0, 0])
