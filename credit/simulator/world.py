"""The latent world: each firm's financial health through time, entry, exit and its loans.

Financial health ``h[i, t]`` is a standardised score (higher is healthier):

    h[i, t] = mu[i] + x[i, t] + macro[t] + shock[i, t] + distress[i, t]

* ``mu``: the firm's long-run level (young firms and entrants are a little weaker);
* ``x``: an AR(1) around it (persistence 0.85 a month), so firms improve and deteriorate;
* ``macro``: a small common AR(1) that moves every firm together;
* ``shock``: the de minimis and GPSR hits, by exposure (:mod:`credit.simulator.shocks`);
* ``distress``: for a firm whose loan will default, a slide from the application to the
  first missed instalment, so its records deteriorate before the default, as real ones do.

Loans are applied for month by month (the only loop is over months). The true PD of a
disbursed loan is a logistic function of the health at the last completed month, its
3-month trend, the loan's size against sales, the product and the segment, plus a modest
idiosyncratic term that no record reveals; the outcome is a Bernoulli draw from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from credit.simulator.calendar import Calendar
from credit.simulator.population import (
    BM_RISK,
    CATEGORY_RISK,
    Population,
    draw_population,
)
from credit.simulator.shocks import Shocks, build_shocks

PRODUCTS = (
    "working_capital_advance",
    "receivables_financing",
    "tax_refund_advance",
    "warehouse_inventory_financing",
)
PRODUCT_TERMS: tuple[tuple[int, ...], ...] = ((90, 180), (60, 90, 120), (60, 90), (180, 270, 360))
PRODUCT_MONTHLY = np.array([True, False, False, True])  # instalments or a bullet
PRODUCT_AMOUNT = np.array([0.8, 0.6, 0.3, 1.2])  # principal / monthly sales
PRODUCT_RISK = np.array([0.0, -0.2, -0.35, 0.3])
PRODUCT_P = {  # by business model b2b, b2c, mixed
    0: (0.20, 0.45, 0.30, 0.05),
    1: (0.75, 0.0, 0.0, 0.25),
    2: (0.35, 0.25, 0.15, 0.25),
}

#: PD model (logit scale). Calibrated so about 4% of disbursed loans default.
PD_INTERCEPT = -4.2
PD_HEALTH = -1.7
PD_TREND = -0.2
PD_LEVERAGE = 0.35
PD_IDIOSYNCRATIC_SD = 0.25
#: Health lost on the way to a default (reached at the first missed instalment).
DISTRESS_DEPTH = 2.4
#: Health process.
AR_PHI, AR_SIGMA = 0.94, 0.19
MACRO_PHI, MACRO_SIGMA = 0.8, 0.08
#: Sales respond to health with this elasticity (log scale).
SALES_HEALTH = 0.3
APPLY_BASE = 0.3
OUTCOME_DAYS = 365
DEFAULT_DPD = 90


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


_BOOK_DTYPES: dict[str, type] = {
    **dict.fromkeys(("firm", "month", "applied_day", "product", "term", "n_inst",
                     "disbursed_day", "first_missed", "default_day"), np.int64),
    "disbursed": np.bool_,
    "will_default": np.bool_,
}  # fmt: skip


@dataclass
class LoanBook:
    """Every loan application (arrays of equal length)."""

    firm: np.ndarray
    month: np.ndarray
    applied_day: np.ndarray
    product: np.ndarray
    amount: np.ndarray
    term: np.ndarray
    n_inst: np.ndarray
    disbursed: np.ndarray  # bool
    disbursed_day: np.ndarray  # -1 when not disbursed
    pd: np.ndarray
    health: np.ndarray
    trend: np.ndarray
    leverage: np.ndarray
    idiosyncratic: np.ndarray
    segment_risk: np.ndarray
    will_default: np.ndarray  # the Bernoulli draw (disbursed loans only)
    first_missed: np.ndarray  # instalment index (1-based) first left unpaid, 0 if none
    default_day: np.ndarray  # day the loan reaches 90 days past due, -1 if never

    @property
    def n(self) -> int:
        return int(self.firm.shape[0])


@dataclass
class Latent:
    """Everything the records are drawn from."""

    cal: Calendar
    pop: Population
    shocks: Shocks
    health: np.ndarray  # (n, months)
    distress: np.ndarray  # (n, months)
    macro: np.ndarray  # (months,)
    active: np.ndarray  # (n, months) bool
    exit_month: np.ndarray  # (n,) first month without activity (months = never)
    sales: np.ndarray  # (n, months) expected monthly export sales, USD (0 when inactive)
    loans: LoanBook


def instalment_due(
    disbursed_day: np.ndarray, term: np.ndarray, n_inst: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Due day of instalment ``k`` (1-based) of ``n_inst`` equal ones over ``term`` days."""
    return disbursed_day + np.round(term * k / n_inst).astype(np.int64)


def _draw_default_instalment(
    rng: np.random.Generator, term: np.ndarray, n_inst: np.ndarray
) -> np.ndarray:
    """First missed instalment, among those due early enough to reach 90 DPD in 365 days.

    Later instalments are likelier (density rising linearly): most firms pay a few before
    they stop.
    """
    last_ok = np.floor((OUTCOME_DAYS - DEFAULT_DPD) * n_inst / term).astype(np.int64)
    last_ok = np.clip(np.minimum(last_ok, n_inst), 1, None)
    return 1 + np.floor(np.sqrt(rng.random(term.shape[0])) * last_ok).astype(np.int64)


def simulate_latent(rng: np.random.Generator, n: int, cal: Calendar) -> Latent:
    """Draw the population, their health paths and their loans."""
    m_count = cal.months
    ms = cal.month_start
    pop = draw_population(rng, n, m_count)
    pop.registered_day = np.where(pop.entry_month > 0, ms[pop.entry_month], 0) + pop.registered_day
    shocks = build_shocks(cal, pop)

    macro = np.zeros(m_count)
    x = np.zeros((n, m_count))
    x_prev = rng.normal(0.0, AR_SIGMA / np.sqrt(1 - AR_PHI**2), n)
    m_prev = rng.normal(0.0, MACRO_SIGMA / np.sqrt(1 - MACRO_PHI**2))
    eps = rng.normal(0.0, AR_SIGMA, (n, m_count))
    for t in range(m_count):
        x_prev = AR_PHI * x_prev + eps[:, t]
        x[:, t] = x_prev
        m_prev = MACRO_PHI * m_prev + rng.normal(0.0, MACRO_SIGMA)
        macro[t] = m_prev
    base = pop.mu[:, None] + x + macro[None, :] + shocks.health
    distress = np.zeros((n, m_count))

    season = cal.seasonality()
    seg_risk = BM_RISK[pop.bm] + CATEGORY_RISK[pop.category]
    prod_p = np.array([PRODUCT_P[b] for b in range(3)])[pop.bm]
    has_wh = pop.warehouse_share > 0
    prod_p[:, 3] *= has_wh
    prod_p /= prod_p.sum(axis=1, keepdims=True)

    exit_month = np.full(n, m_count, dtype=np.int64)
    busy_until = np.full(n, -(10**6), dtype=np.int64)
    doomed = np.zeros(n, dtype=bool)
    books: list[dict[str, np.ndarray]] = []
    end_day = cal.end_day
    for t in range(m_count):
        h_now = base[:, t] + distress[:, t]
        active = (pop.entry_month <= t) & (t < exit_month)
        free = busy_until < ms[t]
        # exit: weak firms without a loan outstanding close down
        leaving = active & free & ~doomed & (rng.random(n) < sigmoid(-6.3 - 1.3 * h_now))
        exit_month[leaving] = t + 1
        if t == 0:
            continue
        h_prev = base[:, t - 1] + distress[:, t - 1]
        h_old = base[:, max(t - 4, 0)] + distress[:, max(t - 4, 0)]
        # the state a lender would want: health over the last quarter (up to 3 months)
        lo = max(t - 3, 0)
        h_state = (base[:, lo:t] + distress[:, lo:t]).mean(axis=1)
        tenure_ok = t - pop.entry_month >= 3
        p_apply = APPLY_BASE * np.exp(-0.35 * h_prev) * (0.8 + 0.2 * season[t])
        apply = active & ~leaving & free & ~doomed & tenure_ok & (rng.random(n) < p_apply)
        idx = np.flatnonzero(apply)
        k = idx.shape[0]
        if k == 0:
            continue
        applied = ms[t] + np.floor(rng.random(k) * (ms[t + 1] - ms[t])).astype(np.int64)
        u = rng.random((k, 1))
        product = np.minimum((u > np.cumsum(prod_p[idx], axis=1)).sum(axis=1), 3)
        term = np.empty(k, dtype=np.int64)
        for p, terms in enumerate(PRODUCT_TERMS):
            sel = product == p
            term[sel] = np.array(terms)[rng.integers(0, len(terms), int(sel.sum()))]
        n_inst = np.where(PRODUCT_MONTHLY[product], term // 30, 1)
        sales_prev = pop.size[idx] * np.exp(pop.growth[idx] * t + SALES_HEALTH * h_prev[idx])
        lev_noise = rng.normal(0.0, 0.45, k)
        amount = np.maximum(
            np.round(sales_prev * PRODUCT_AMOUNT[product] * np.exp(lev_noise), -2), 1000.0
        )
        leverage = np.log(amount / (sales_prev * PRODUCT_AMOUNT[product]))
        trend = h_prev[idx] - h_old[idx]
        idio = rng.normal(0.0, PD_IDIOSYNCRATIC_SD, k)
        logit = (
            PD_INTERCEPT
            + seg_risk[idx]
            + PRODUCT_RISK[product]
            + PD_HEALTH * h_state[idx]
            + PD_TREND * trend
            + PD_LEVERAGE * leverage
            + idio
        )
        pd_ = sigmoid(logit)
        disb_day = applied + 1 + rng.poisson(3.0, k)
        approved = rng.random(k) < sigmoid(2.3 + 0.9 * h_prev[idx])
        disbursed = approved & (disb_day < end_day)
        will_default = disbursed & (rng.random(k) < pd_)
        first_missed = np.where(will_default, _draw_default_instalment(rng, term, n_inst), 0)
        miss_day = instalment_due(disb_day, term, n_inst, first_missed)
        default_day = np.where(will_default, miss_day + DEFAULT_DPD, -1)

        # the road to default: health slides from the application to the first miss
        d_idx = np.flatnonzero(will_default)
        if d_idx.size:
            firms = idx[d_idx]
            miss_month = cal.month_of(miss_day[d_idx])
            s = np.arange(m_count)[None, :]
            span = np.maximum(miss_month - t, 1)[:, None]
            ramp = -DISTRESS_DEPTH * np.clip((s - t) / span, 0.0, 1.0)
            distress[firms] = np.minimum(distress[firms], ramp)
            doomed[firms] = True
            gone = cal.month_of(default_day[d_idx]) + rng.integers(1, 4, d_idx.size)
            exit_month[firms] = np.minimum(exit_month[firms], gone)
        busy_until[idx] = np.where(disbursed, disb_day + term + 15, applied + 45)
        books.append(
            {
                "firm": idx,
                "month": np.full(k, t),
                "applied_day": applied,
                "product": product,
                "amount": amount,
                "term": term,
                "n_inst": n_inst,
                "disbursed": disbursed,
                "disbursed_day": np.where(disbursed, disb_day, -1),
                "pd": pd_,
                "health": h_state[idx],
                "trend": trend,
                "leverage": leverage,
                "idiosyncratic": idio,
                "segment_risk": seg_risk[idx] + PRODUCT_RISK[product],
                "will_default": will_default,
                "first_missed": first_missed,
                "default_day": default_day,
            }
        )
    if not books:  # a world too small or too short for any application
        books.append({f: np.zeros(0, dtype=_BOOK_DTYPES.get(f, np.float64))
                      for f in LoanBook.__dataclass_fields__})  # fmt: skip
    loans = LoanBook(**{f: np.concatenate([b[f] for b in books])
                        for f in LoanBook.__dataclass_fields__})  # fmt: skip

    health = base + distress
    t_idx = np.arange(m_count)[None, :]
    active = (pop.entry_month[:, None] <= t_idx) & (t_idx < exit_month[:, None])
    # entrants ramp up over their first months; incumbents trade at full size from the start
    tenure = np.where(pop.entry_month[:, None] > 0, t_idx - pop.entry_month[:, None], 10**3)
    ramp_up = 1.0 - 0.7 * np.exp(-np.clip(tenure, 0, None) / 4.0)
    sales = (
        pop.size[:, None]
        * np.exp(pop.growth[:, None] * t_idx + SALES_HEALTH * health)
        * ramp_up
        * season[None, :]
        * active
    )
    return Latent(
        cal=cal,
        pop=pop,
        shocks=shocks,
        health=health,
        distress=distress,
        macro=macro,
        active=active,
        exit_month=exit_month,
        sales=sales,
        loans=loans,
    )


def standard_pd(w: Latent, firm: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The true PD a firm would have for a standard loan applied for on ``day`` (a
    working-capital advance sized at the product's usual share of sales: leverage 0), by the
    same formula as the loans' (:func:`simulate_latent`), without the idiosyncratic term a
    loan adds: health over the last three completed months, its trend and the segment.

    For evaluation only (the seller-recourse report asks it how a firm's true risk moves
    between two dates). ``firm``: 0-based firm index (``F000001`` is 0)."""
    t = np.clip(w.cal.month_of(np.asarray(day, dtype=np.int64)), 1, w.cal.months - 1)
    firm = np.asarray(firm, dtype=np.int64)
    h = w.health
    lo = np.maximum(t - 3, 0)
    state = np.array([h[f, a:b].mean() for f, a, b in zip(firm, lo, t, strict=True)])
    trend = h[firm, t - 1] - h[firm, np.maximum(t - 4, 0)]
    seg = BM_RISK[w.pop.bm[firm]] + CATEGORY_RISK[w.pop.category[firm]]
    logit = PD_INTERCEPT + seg + PRODUCT_RISK[0] + PD_HEALTH * state + PD_TREND * trend
    out: np.ndarray = sigmoid(logit)
    return out
