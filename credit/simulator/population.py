"""Who the simulated firms are: business model, category, markets, size, channels.

The shares follow the policy backdrop of China's cross-border e-commerce: many small
consumer sellers, fewer but larger B2B exporters that carry most of the value, the US,
the EU and Japan as main markets, overseas warehouses for a sizeable minority.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from credit.records import BUSINESS_MODELS, CATEGORIES

MARKETS = ("US", "EU", "JP", "SEA", "LATAM", "ME")
MARKET_COUNTRIES: dict[str, tuple[str, ...]] = {
    "US": ("US",),
    "EU": ("DE", "FR", "NL", "IT", "ES", "PL"),
    "JP": ("JP",),
    "SEA": ("VN", "TH", "MY", "ID", "PH", "SG"),
    "LATAM": ("MX", "BR", "CL"),
    "ME": ("AE", "SA"),
}
COUNTRY_WEIGHTS: dict[str, tuple[float, ...]] = {
    "EU": (0.32, 0.2, 0.14, 0.12, 0.12, 0.1),
    "SEA": (0.2, 0.18, 0.16, 0.18, 0.14, 0.14),
    "LATAM": (0.45, 0.4, 0.15),
    "ME": (0.6, 0.4),
}
#: Every destination country, in a fixed order (codes index into it).
COUNTRIES: tuple[str, ...] = tuple(c for m in MARKETS for c in MARKET_COUNTRIES[m])
COUNTRY_MARKET = np.array([MARKETS.index(m) for m in MARKETS for _ in MARKET_COUNTRIES[m]])
CURRENCY_OF_COUNTRY = {
    "US": "USD", "DE": "EUR", "FR": "EUR", "NL": "EUR", "IT": "EUR", "ES": "EUR", "PL": "PLN",
    "JP": "JPY", "VN": "VND", "TH": "THB", "MY": "MYR", "ID": "IDR", "PH": "PHP", "SG": "SGD",
    "MX": "MXN", "BR": "BRL", "CL": "CLP", "AE": "AED", "SA": "SAR",
}  # fmt: skip

MARKET_P = {  # primary market by business model
    "b2c": (0.40, 0.28, 0.08, 0.10, 0.08, 0.06),
    "b2b": (0.28, 0.30, 0.12, 0.15, 0.08, 0.07),
    "mixed": (0.35, 0.30, 0.10, 0.12, 0.07, 0.06),
}
CATEGORY_P = {  # order of records.CATEGORIES
    "b2c": (0.28, 0.22, 0.14, 0.04, 0.26, 0.02, 0.04),
    "b2b": (0.14, 0.13, 0.04, 0.08, 0.14, 0.37, 0.10),
    "mixed": (0.22, 0.20, 0.10, 0.06, 0.22, 0.12, 0.08),
}
BM_P = (0.36, 0.40, 0.24)  # b2b, b2c, mixed (records.BUSINESS_MODELS order)
#: Median monthly export sales in USD, by business model.
SIZE_MEDIAN = (160_000.0, 30_000.0, 70_000.0)
REGIONS = ("CN-GD", "CN-ZJ", "CN-FJ", "CN-JS", "CN-SH", "CN-SD", "CN-HA", "CN-SC")
REGION_P = (0.38, 0.24, 0.09, 0.09, 0.06, 0.06, 0.04, 0.04)
#: GPSR covers non-food consumer products.
CONSUMER_GOODS = np.array([c in {"textiles_apparel", "home_furnishings", "cosmetics",
                                 "electronics_digital"} for c in CATEGORIES])  # fmt: skip
#: Extra refund propensity by category (apparel returns most).
CATEGORY_REFUND = np.array([0.55, 0.2, 0.25, -0.2, 0.3, -0.4, -0.3])
#: Baseline risk by category (logit points).
CATEGORY_RISK = np.array([0.1, 0.05, 0.15, 0.2, 0.1, -0.15, 0.15])
#: Baseline risk by business model (b2b, b2c, mixed).
BM_RISK = np.array([-0.15, 0.2, 0.0])
#: Export VAT refund rate by category.
VAT_REFUND_RATE = np.array([0.13, 0.13, 0.13, 0.09, 0.13, 0.13, 0.09])
#: USD per statistical unit and kg per USD of goods, by category.
UNIT_PRICE = np.array([6.0, 15.0, 5.0, 3.0, 25.0, 400.0, 2.0])
KG_PER_USD = np.array([0.05, 0.15, 0.04, 0.3, 0.02, 0.08, 0.6])
HS_CODES: tuple[tuple[str, ...], ...] = (
    ("610910", "620342", "611020", "640299"),
    ("940360", "630260", "691110", "732393"),
    ("330499", "330510", "330720", "340130"),
    ("210690", "190531", "200819", "090111"),
    ("851762", "850440", "847130", "852872"),
    ("847989", "850152", "841370", "851580"),
    ("070310", "080810", "090210", "120242"),
)
IMPORT_ORIGINS = ("JP", "DE", "KR", "US", "TW")


@dataclass
class Population:
    """Static attributes of each firm (arrays of length ``n``)."""

    n: int
    bm: np.ndarray  # index into BUSINESS_MODELS
    category: np.ndarray  # index into CATEGORIES
    region: np.ndarray  # index into REGIONS
    lane_country: np.ndarray  # (n, 2) index into COUNTRIES; lane 1 unused when share is 1
    lane_share: np.ndarray  # (n, 2) share of sales per lane
    b2c_share: np.ndarray  # share of sales to consumers (direct mail or warehouse)
    warehouse_share: np.ndarray  # share of consumer sales sold from an overseas warehouse
    bonded: np.ndarray  # bool: ships consumer parcels under 1210 rather than 9610
    general_trade: np.ndarray  # bool: declares B2B orders under 0110 rather than 9710
    size: np.ndarray  # median monthly sales, USD
    growth: np.ndarray  # monthly log growth
    mu: np.ndarray  # long-run financial health
    refund_propensity: np.ndarray  # firm-level refund logit offset (product quality)
    platform: np.ndarray  # index of the main marketplace
    entry_month: np.ndarray  # first simulated month with activity
    registered_day: np.ndarray  # day offset of registration (negative = before start)


PLATFORMS = ("AMAZON", "TEMU", "SHEIN", "ALIEXPRESS", "TIKTOKSHOP", "EBAY", "SHOPEE",
             "LAZADA", "MERCADOLIBRE", "NOON", "RAKUTEN", "ALLEGRO")  # fmt: skip
PLATFORMS_BY_MARKET: dict[str, tuple[int, ...]] = {
    "US": (0, 1, 2, 4, 5),
    "EU": (0, 1, 3, 11, 2),
    "JP": (0, 10, 1),
    "SEA": (6, 7, 4),
    "LATAM": (8, 0, 2),
    "ME": (9, 0, 2),
}


def _choice(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: ``p`` is (n, k) with rows summing to 1."""
    u = rng.random((p.shape[0], 1))
    return np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)


def _country_in_market(rng: np.random.Generator, market: np.ndarray) -> np.ndarray:
    out = np.empty(market.shape[0], dtype=np.int64)
    offset = 0
    for k, m in enumerate(MARKETS):
        countries = MARKET_COUNTRIES[m]
        w = np.array(COUNTRY_WEIGHTS.get(m, (1.0,) * len(countries)))
        sel = market == k
        out[sel] = offset + rng.choice(len(countries), size=int(sel.sum()), p=w / w.sum())
        offset += len(countries)
    return out


def draw_population(
    rng: np.random.Generator, n: int, months: int, entrant_share: float = 0.25
) -> Population:
    """Draw ``n`` firms; ``entrant_share`` of them start trading during the window."""
    bm = rng.choice(3, size=n, p=BM_P)
    cat_p = np.array([CATEGORY_P[BUSINESS_MODELS[b]] for b in range(3)])[bm]
    category = _choice(rng, cat_p / cat_p.sum(axis=1, keepdims=True))
    region = rng.choice(len(REGIONS), size=n, p=REGION_P)

    mk_p = np.array([MARKET_P[BUSINESS_MODELS[b]] for b in range(3)])[bm]
    m0 = _choice(rng, mk_p)
    # a second market, drawn from the same shares without the first
    p2 = mk_p.copy()
    p2[np.arange(n), m0] = 0.0
    m1 = _choice(rng, p2 / p2.sum(axis=1, keepdims=True))
    lane_country = np.stack([_country_in_market(rng, m0), _country_in_market(rng, m1)], axis=1)
    single = rng.random(n) < 0.35
    s0 = np.where(single, 1.0, rng.uniform(0.55, 0.85, n))
    lane_share = np.stack([s0, 1.0 - s0], axis=1)

    b2c_share = np.select([bm == 0, bm == 1], [0.0, 1.0], rng.uniform(0.35, 0.7, n))
    consumer_market = np.isin(m0, [0, 1, 2])
    has_wh = (bm != 0) & consumer_market & (rng.random(n) < np.where(bm == 2, 0.45, 0.3))
    warehouse_share = np.where(has_wh, rng.uniform(0.3, 0.7, n), 0.0)
    bonded = (bm != 0) & (rng.random(n) < 0.1)
    general_trade = rng.random(n) < np.where(np.isin(category, [5, 6]), 0.6, 0.2)

    size = np.array(SIZE_MEDIAN)[bm] * np.exp(rng.normal(0.0, 0.85, n))
    growth = rng.normal(0.008, 0.012, n)

    entrant = rng.random(n) < entrant_share
    entry_month = np.where(entrant, rng.integers(1, max(months, 2), n), 0)
    age_days = np.where(entrant, rng.integers(0, 25, n), rng.integers(150, 5500, n))
    # young firms are a little weaker on average
    mu = rng.normal(0.0, 0.8, n) - 0.25 * (age_days < 730) - 0.2 * entrant

    refund_propensity = CATEGORY_REFUND[category] + rng.normal(0.0, 0.25, n)
    platform = np.zeros(n, dtype=np.int64)
    for k, m in enumerate(MARKETS):
        sel = m0 == k
        opts = PLATFORMS_BY_MARKET[m]
        platform[sel] = np.array(opts)[rng.integers(0, len(opts), int(sel.sum()))]

    return Population(
        n=n,
        bm=bm,
        category=category,
        region=region,
        lane_country=lane_country,
        lane_share=lane_share,
        b2c_share=b2c_share,
        warehouse_share=warehouse_share,
        bonded=bonded,
        general_trade=general_trade,
        size=size,
        growth=growth,
        mu=mu,
        refund_propensity=refund_propensity,
        platform=platform,
        entry_month=entry_month,
        registered_day=np.zeros(n, dtype=np.int64) - age_days,  # shifted by the caller
    )
