"""Customs declarations and shipments, drawn from the latent world.

Per active firm-month and lane (a destination country):

* consumer direct mail: one consolidated 9610 declaration (1210 for bonded sellers) and a
  few aggregated parcel batches (postal / express / air, by market);
* overseas warehouse: now and then a 9810 restock by sea (or rail to the EU);
* B2B: a Poisson number of orders, each a 9710 (or 0110 general trade) declaration and
  one sea / air / rail shipment to a business;
* some machinery and electronics makers also import components (0110 imports).

Health shows through inspections, holds, rejections, tax-refund denials and slow refunds,
returns, losses and damage; the shocks add holds, returns and volume changes on the
exposed lanes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from credit.records import CUSTOMS_REGIMES, SHIPMENT_MODES
from credit.simulator.population import (
    COUNTRIES,
    COUNTRY_MARKET,
    IMPORT_ORIGINS,
    KG_PER_USD,
    MARKETS,
    UNIT_PRICE,
    VAT_REFUND_RATE,
)
from credit.simulator.world import Latent, sigmoid

Cols = dict[str, np.ndarray]

R9610, R9710, R9810, R1210, R0110 = (CUSTOMS_REGIMES.index(r) for r in CUSTOMS_REGIMES)
POSTAL, EXPRESS, AIR, SEA, RAIL = range(len(SHIPMENT_MODES))
CONSUMER, BUSINESS, WAREHOUSE = 0, 1, 2
IN_TRANSIT, DELIVERED, RETURNED, LOST, DAMAGED = range(5)
CLEARED, INSPECTED, HELD, REJECTED = range(4)
REFUND_NONE, REFUND_PENDING, REFUND_PAID, REFUND_DENIED = range(4)
#: Parcel modes by market (US, EU, JP, SEA, LATAM, ME): probabilities of postal/express/air.
PARCEL_MODES = np.array(
    [[0.25, 0.4, 0.35], [0.45, 0.2, 0.35], [0.2, 0.6, 0.2], [0.5, 0.5, 0.0],
     [0.6, 0.0, 0.4], [0.0, 0.3, 0.7]]
)  # fmt: skip
TRANSIT_DAYS = np.array([18.0, 6.0, 10.0, 32.0, 20.0])
EU = MARKETS.index("EU")
#: Country codes used in customs and shipments: destinations, then China, then origins
#: of imported components that are not already destinations.
COUNTRY_VOCAB: tuple[str, ...] = (
    *COUNTRIES,
    "CN",
    *(c for c in IMPORT_ORIGINS if c not in COUNTRIES),
)
CN = COUNTRY_VOCAB.index("CN")
IMPORT_ORIGIN_CODES = np.array([COUNTRY_VOCAB.index(c) for c in IMPORT_ORIGINS])


@dataclass
class Trade:
    customs: Cols
    shipments: Cols  # "declaration" is a row index into customs
    b2b_orders: np.ndarray  # row indices into shipments of B2B orders
    cell_firm: np.ndarray
    cell_month: np.ndarray
    b2c_sales: np.ndarray  # realised consumer sales per active cell, USD


def _concat(parts: list[Cols]) -> Cols:
    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _days_in(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + np.floor(rng.random(lo.shape[0]) * np.maximum(hi - lo, 1)).astype(np.int64)


def build_trade(rng: np.random.Generator, w: Latent) -> Trade:
    """Draw every customs declaration and shipment of the world."""
    pop, sh, cal = w.pop, w.shocks, w.cal
    ms = cal.month_start
    fi, ti = np.nonzero(w.active)
    h = w.health[fi, ti]
    sales = w.sales[fi, ti]
    season = cal.seasonality()[ti]
    b2b_season = (1.0 + 0.5 * (season - 1.0)) / season
    dm, gp, fl = sh.dm_after[ti], sh.gpsr_after[ti], sh.frontload[ti]
    decl_parts: list[Cols] = []
    ship_parts: list[Cols] = []
    n_decl = 0
    b2c_sales = np.zeros(fi.shape[0])
    b2b_ship_rows: list[np.ndarray] = []
    n_ship = 0

    def declare(
        cell: np.ndarray,
        lane_country: np.ndarray,
        regime: int,
        value: np.ndarray,
        day: np.ndarray,
        gpsr: np.ndarray,
        dmin: np.ndarray,
        direction: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Append declarations; return their row numbers and clearance statuses."""
        nonlocal n_decl
        k = cell.shape[0]
        hh = h[cell]
        u = rng.random(k)
        p_rej = sigmoid(-6.0 - 0.7 * hh + 1.0 * gpsr)
        p_hold = sigmoid(-4.0 - 0.6 * hh + 1.3 * gpsr + 1.0 * dmin)
        p_insp = sigmoid(-2.6 - 0.35 * hh + 1.0 * gpsr + 0.6 * dmin)
        status = np.select(
            [u < p_rej, u < p_rej + p_hold, u < p_rej + p_hold + p_insp],
            [REJECTED, HELD, INSPECTED],
            CLEARED,
        )
        cat = pop.category[fi[cell]]
        refundable = (regime in (R9710, R9810, R0110)) & (direction == 0) & (status != REJECTED)
        refund = np.where(refundable, np.round(value * VAT_REFUND_RATE[cat], 2), 0.0)
        settle = (
            day
            + 20
            + np.round(
                rng.gamma(4.0, (15.0 + 35.0 * sigmoid(-hh)) / 4.0, k) + 15 * (status == HELD)
            ).astype(np.int64)
        )
        denied = rng.random(k) < sigmoid(-3.4 - 0.9 * hh + 0.8 * (status == HELD))
        settled = settle < cal.end_day
        refund_status = np.where(
            ~refundable,
            REFUND_NONE,
            np.where(settled, np.where(denied, REFUND_DENIED, REFUND_PAID), REFUND_PENDING),
        )
        main_hs = (fi[cell] * 7919) % 4
        hs = cat * 4 + np.where(rng.random(k) < 0.75, main_hs, rng.integers(0, 4, k))
        decl_parts.append(
            {
                "firm": fi[cell],
                "day": day,
                "direction": np.full(k, direction),
                "regime": np.full(k, regime),
                "hs": hs,
                "origin": np.full(k, CN) if direction == 0 else lane_country,
                "destination": lane_country if direction == 0 else np.full(k, CN),
                "value": np.round(value, 2),
                "quantity": np.maximum(
                    np.round(value / UNIT_PRICE[cat] * rng.lognormal(0, 0.1, k)), 1.0
                ),
                "status": status,
                "refund": np.where(refund_status == REFUND_NONE, 0.0, np.maximum(refund, 0.01)),
                "refund_status": refund_status,
                "refund_day": np.where(settled & refundable, settle, -1),
            }
        )
        rows = np.arange(n_decl, n_decl + k)
        n_decl += k
        return rows, status

    def ship(
        cell: np.ndarray,
        decl_rows: np.ndarray,
        decl_status: np.ndarray,
        day: np.ndarray,
        mode: np.ndarray,
        country: np.ndarray,
        dest_type: int,
        value: np.ndarray,
        gpsr: np.ndarray,
        dmin: np.ndarray,
    ) -> np.ndarray:
        nonlocal n_ship
        k = cell.shape[0]
        hh = h[cell]
        base_ret = -3.2 if dest_type == CONSUMER else -4.4
        u = rng.random(k)
        p_ret = sigmoid(base_ret - 0.55 * hh + 0.6 * gpsr + 0.3 * dmin)
        p_lost = sigmoid(-5.0 - 0.35 * hh + 0.7 * dmin)
        p_dmg = sigmoid(-5.2 - 0.3 * hh)
        status = np.select(
            [decl_status == REJECTED, u < p_ret, u < p_ret + p_lost, u < p_ret + p_lost + p_dmg],
            [RETURNED, RETURNED, LOST, DAMAGED],
            DELIVERED,
        )
        transit = TRANSIT_DAYS[mode] * rng.gamma(8.0, 1.0 / 8.0, k)
        transit += 12.0 * (decl_status == HELD) + 3.0 * (decl_status == INSPECTED)
        close = day + np.round(transit).astype(np.int64)
        close = np.where(status == RETURNED, close + 20, close)
        close = np.where(status == LOST, day + 50 + rng.integers(0, 20, k), close)
        closed = close < cal.end_day
        cat = pop.category[fi[cell]]
        ship_parts.append(
            {
                "firm": fi[cell],
                "declaration": decl_rows,
                "day": day,
                "close_day": np.where(closed, close, -1),
                "mode": mode,
                "destination": country,
                "dest_type": np.full(k, dest_type),
                "weight": np.maximum(
                    np.round(value * KG_PER_USD[cat] * rng.lognormal(0, 0.2, k), 2), 0.1
                ),
                "value": np.maximum(np.round(value, 2), 1.0),
                "status": np.where(closed, status, IN_TRANSIT),
            }
        )
        rows = np.arange(n_ship, n_ship + k)
        n_ship += k
        return rows

    for lane in (0, 1):
        share = pop.lane_share[fi, lane]
        country = pop.lane_country[fi, lane]
        market = COUNTRY_MARKET[country]
        us_b2c = sh.lane_us_b2c[fi, lane]
        eu_cons = sh.lane_eu_consumer[fi, lane]
        gpsr_l = gp * eu_cons
        dm_l = dm * us_b2c
        # consumer direct mail
        direct = sales * pop.b2c_share[fi] * (1 - pop.warehouse_share[fi]) * share
        direct *= np.where(us_b2c, (1 - 0.55 * dm) * (1 + 0.25 * fl), 1.0)
        direct *= np.where(eu_cons, 1 - 0.2 * gp, 1.0)
        direct *= rng.lognormal(0.0, 0.12, direct.shape[0])
        b2c_sales += direct
        cell = np.flatnonzero(direct > 1.0)
        regime_bonded = pop.bonded[fi[cell]] & (lane == 0)
        dday = ms[ti[cell]] + rng.integers(0, 4, cell.shape[0])
        nb = 2 if lane == 0 else 1
        for regime, sel in ((R9610, ~regime_bonded), (R1210, regime_bonded)):
            c, d0 = cell[sel], dday[sel]
            rows, st = declare(c, country[c], regime, direct[c], d0, gpsr_l[c], dm_l[c])
            for j in range(nb):
                span = (ms[ti[c] + 1] - d0 - 1) / nb
                day = d0 + 1 + np.floor(span * j + rng.random(c.shape[0]) * span).astype(np.int64)
                p = PARCEL_MODES[market[c]]
                mode = np.minimum((rng.random((c.shape[0], 1)) > np.cumsum(p, 1)).sum(1), 2)
                ship(
                    c,
                    rows,
                    st,
                    day,
                    mode,
                    country[c],
                    CONSUMER,
                    direct[c] / nb * rng.lognormal(0, 0.1, c.shape[0]),
                    gpsr_l[c],
                    dm_l[c],
                )
        # overseas warehouse restocks (first lane)
        if lane == 0:
            wh = sales * pop.b2c_share[fi] * pop.warehouse_share[fi] * share
            b2c_sales += wh * rng.lognormal(0.0, 0.1, wh.shape[0])
            restock = (wh > 0) & (rng.random(wh.shape[0]) < 0.45)
            cell = np.flatnonzero(restock)
            value = wh[cell] * 2.2 * rng.lognormal(0, 0.2, cell.shape[0])
            value *= np.where(us_b2c[cell], 1 + 0.3 * dm[cell], 1.0)
            dday = _days_in(rng, ms[ti[cell]], ms[ti[cell] + 1] - 3)
            rows, st = declare(
                cell, country[cell], R9810, value, dday, gpsr_l[cell], np.zeros(cell.shape[0])
            )
            mode = np.where((market[cell] == EU) & (rng.random(cell.shape[0]) < 0.3), RAIL, SEA)
            ship(
                cell,
                rows,
                st,
                dday + rng.integers(1, 4, cell.shape[0]),
                mode,
                country[cell],
                WAREHOUSE,
                value,
                gpsr_l[cell],
                np.zeros(cell.shape[0]),
            )
        # B2B orders
        b2b = sales * (1 - pop.b2c_share[fi]) * share * b2b_season
        has = b2b > 0
        n_orders = np.where(has, rng.poisson(0.45 if lane == 0 else 0.35, b2b.shape[0]), 0)
        n_orders += (has & (lane == 0)).astype(np.int64)
        cell = np.repeat(np.arange(fi.shape[0]), n_orders)
        value = (b2b / np.maximum(n_orders, 1))[cell] * rng.lognormal(0, 0.25, cell.shape[0])
        dday = _days_in(rng, ms[ti[cell]], ms[ti[cell] + 1] - 3)
        gt = pop.general_trade[fi[cell]]
        for regime, sel in ((R9710, ~gt), (R0110, gt)):
            c = cell[sel]
            rows, st = declare(
                c,
                country[c],
                regime,
                value[sel],
                dday[sel],
                np.zeros(c.shape[0]),
                np.zeros(c.shape[0]),
            )
            u = rng.random(c.shape[0])
            eu = market[c] == EU
            mode = np.select([u < 0.15, eu & (u < 0.3)], [AIR, RAIL], SEA)
            srows = ship(
                c,
                rows,
                st,
                dday[sel] + rng.integers(1, 4, c.shape[0]),
                mode,
                country[c],
                BUSINESS,
                value[sel],
                np.zeros(c.shape[0]),
                np.zeros(c.shape[0]),
            )
            b2b_ship_rows.append(srows)

    # component imports by machinery and electronics makers
    maker = np.isin(pop.category[fi], [4, 5]) & (rng.random(fi.shape[0]) < 0.25)
    cell = np.flatnonzero(maker)
    origin = IMPORT_ORIGIN_CODES[rng.integers(0, len(IMPORT_ORIGINS), cell.shape[0])]
    declare(
        cell,
        origin,
        R0110,
        sales[cell] * 0.15 * rng.lognormal(0, 0.3, cell.shape[0]),
        _days_in(rng, ms[ti[cell]], ms[ti[cell] + 1]),
        np.zeros(cell.shape[0]),
        np.zeros(cell.shape[0]),
        direction=1,
    )

    return Trade(
        customs=_concat(decl_parts),
        shipments=_concat(ship_parts),
        b2b_orders=np.concatenate(b2b_ship_rows),
        cell_firm=fi,
        cell_month=ti,
        b2c_sales=b2c_sales,
    )
