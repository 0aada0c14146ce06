"""Money in and out, drawn from the latent world and the trade it generated.

* settlements: marketplace payouts twice a month for consumer sales; the platform holds
  back weak sellers' payouts longer (``paid_at`` later than ``due_at``);
* refunds and chargebacks: rise with product-quality problems, weak health and GPSR;
* fees: the marketplace's commission and advertising (heavier for struggling sellers) and
  the freight forwarder's monthly bill;
* B2B receipts: one invoice per B2B order, terms of 30-90 days set by the buyer, late and
  sometimes never paid;
* supplier payments: production invoices whose payment delays grow as cash tightens
  (health at the due date drives the delay);
* loan disbursements and instalments (see :mod:`credit.simulator.loans`).

Every payment is observed as of the simulation end: money that would move later is
unpaid (``paid_at`` empty).
"""

from __future__ import annotations

import numpy as np

from credit.simulator.population import COUNTRIES, CURRENCY_OF_COUNTRY, PLATFORMS
from credit.simulator.trade import Trade
from credit.simulator.world import Latent, sigmoid

Cols = dict[str, np.ndarray]

KINDS = ("settlement", "b2b_receipt", "supplier_payment", "refund", "chargeback", "fee",
         "loan_disbursement", "loan_repayment")  # fmt: skip
(SETTLEMENT, B2B_RECEIPT, SUPPLIER, REFUND, CHARGEBACK, FEE, DISBURSEMENT,
 REPAYMENT) = range(len(KINDS))  # fmt: skip
CURRENCIES: tuple[str, ...] = tuple(sorted({*CURRENCY_OF_COUNTRY.values(), "CNY"}))
COUNTRY_CURRENCY = np.array([CURRENCIES.index(CURRENCY_OF_COUNTRY[c]) for c in COUNTRIES])
CNY, USD = CURRENCIES.index("CNY"), CURRENCIES.index("USD")
LOGISTICS = ("LOG-CAINIAO", "LOG-YUNEXPRESS", "LOG-4PX", "LOG-SFINTL", "LOG-DHL", "LOG-COSCO")
LENDERS = ("LND-ANTBANK", "LND-WEBANK", "LND-PINGAN", "LND-ICBC", "LND-CMB", "LND-XWBANK")
SUPPLIERS_PER_FIRM = 3
BUYERS_PER_FIRM = 4
BUYER_TERMS = np.array([30, 45, 60, 90])
LOAN_RATE = np.array([0.12, 0.09, 0.08, 0.11])  # annual, by product


class Counterparties:
    """The counterparty vocabulary: platforms, forwarders, lenders, buyers, suppliers."""

    def __init__(self, n_firms: int, n_buyers: int) -> None:
        self.n_buyers = n_buyers
        self.platform0 = 0
        self.logistics0 = len(PLATFORMS)
        self.lender0 = self.logistics0 + len(LOGISTICS)
        self.buyer0 = self.lender0 + len(LENDERS)
        self.supplier0 = self.buyer0 + n_buyers
        self.n_firms = n_firms

    def names(self) -> list[str]:
        return [
            *(f"PLT-{p}" for p in PLATFORMS),
            *LOGISTICS,
            *LENDERS,
            *(f"BUY{b:07d}" for b in range(self.n_buyers)),
            *(f"SUP{s:08d}" for s in range(self.n_firms * SUPPLIERS_PER_FIRM)),
        ]


def _concat(parts: list[Cols]) -> Cols:
    keys = parts[0].keys()
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _part(
    kind: int,
    firm: np.ndarray,
    amount: np.ndarray,
    currency: np.ndarray,
    cp: np.ndarray,
    day: np.ndarray,
    due: np.ndarray | None,
    paid: np.ndarray | None,
) -> Cols:
    k = firm.shape[0]
    return {
        "firm": firm,
        "kind": np.full(k, kind),
        "amount": np.maximum(np.round(amount, 2), 0.01),
        "currency": currency,
        "counterparty": cp,
        "day": day,
        "due_day": np.full(k, -1) if due is None else due,
        "paid_day": day.copy() if paid is None else paid,
    }


def build_payments(rng: np.random.Generator, w: Latent, tr: Trade) -> tuple[Cols, list[str]]:
    """Draw every trade payment and loan flow; return columns and the counterparty names."""
    pop, cal = w.pop, w.cal
    ms, end = cal.month_start, cal.end_day
    m_last = cal.months - 1
    n = pop.n
    cps = Counterparties(n, max(50, n // 2))
    buyers = rng.integers(0, cps.n_buyers, (n, BUYERS_PER_FIRM))
    buyer_risk = rng.normal(0.0, 0.4, cps.n_buyers)
    buyer_term = BUYER_TERMS[rng.integers(0, len(BUYER_TERMS), cps.n_buyers)]
    supplier_term = np.where(rng.random(n * SUPPLIERS_PER_FIRM) < 0.6, 30, 60)
    forwarder = rng.integers(0, len(LOGISTICS), n)
    main_currency = COUNTRY_CURRENCY[pop.lane_country[:, 0]]
    fi, ti = tr.cell_firm, tr.cell_month
    h = w.health[fi, ti]
    sales = w.sales[fi, ti]
    parts: list[Cols] = []

    def unpaid_after_end(paid: np.ndarray) -> np.ndarray:
        return np.where(paid < end, paid, -1)

    # marketplace settlements, twice a month
    b2c = np.flatnonzero(tr.b2c_sales > 0)
    platform = pop.platform[fi[b2c]]
    slow_platform = np.isin(platform, [PLATFORMS.index("TEMU"), PLATFORMS.index("SHEIN")])
    for half in (0, 1):
        day = np.where(half == 0, ms[ti[b2c]] + 14, ms[ti[b2c] + 1] - 1)
        due = day + 7 + 7 * slow_platform
        hold = rng.gamma(4.0, (1.0 + 14.0 * sigmoid(-1.3 * h[b2c] - 1.2)) / 4.0)
        paid = unpaid_after_end(due + np.round(hold).astype(np.int64))
        amount = tr.b2c_sales[b2c] / 2 * rng.lognormal(0, 0.1, b2c.shape[0])
        parts.append(
            _part(
                SETTLEMENT,
                fi[b2c],
                amount,
                main_currency[fi[b2c]],
                cps.platform0 + platform,
                day,
                due,
                paid,
            )
        )
    # refunds and chargebacks
    gp = w.shocks.gpsr_after[ti[b2c]] * (w.shocks.exposure_gpsr[fi[b2c]] > 0)
    rate = sigmoid(-3.0 - 0.7 * h[b2c] + pop.refund_propensity[fi[b2c]] + 0.5 * gp)
    day = ms[ti[b2c]] + np.floor(rng.random(b2c.shape[0]) * cal.month_days[ti[b2c]]).astype(int)
    parts.append(
        _part(
            REFUND,
            fi[b2c],
            tr.b2c_sales[b2c] * rate * rng.lognormal(0, 0.1, b2c.size),
            main_currency[fi[b2c]],
            cps.platform0 + platform,
            day,
            None,
            None,
        )
    )
    lam = 0.25 * np.exp(-0.8 * h[b2c]) * np.sqrt(np.minimum(tr.b2c_sales[b2c] / 30_000, 4.0))
    n_cb = rng.poisson(lam)
    c = np.repeat(b2c, n_cb)
    day = ms[ti[c]] + np.floor(rng.random(c.shape[0]) * cal.month_days[ti[c]]).astype(int)
    parts.append(
        _part(
            CHARGEBACK,
            fi[c],
            rng.gamma(2.0, 60.0, c.shape[0]) + 5.0,
            main_currency[fi[c]],
            cps.platform0 + pop.platform[fi[c]],
            day,
            None,
            None,
        )
    )
    # fees at month end: marketplace commission + ads, forwarder's bill
    month_end = ms[ti + 1] - 1
    fee_rate = 0.10 + 0.08 * sigmoid(-h[b2c])
    fee = tr.b2c_sales[b2c] * fee_rate * rng.lognormal(0, 0.05, b2c.size)
    parts.append(
        _part(
            FEE,
            fi[b2c],
            fee,
            main_currency[fi[b2c]],
            cps.platform0 + platform,
            month_end[b2c],
            None,
            None,
        )
    )
    # B2B-only sellers have no marketplace; their forwarder bills them instead
    f = np.flatnonzero(pop.b2c_share[fi] == 0)
    # (struggling exporters pay more storage, demurrage and rush surcharges)
    fwd_rate = 0.035 + 0.04 * sigmoid(-h[f])
    parts.append(
        _part(
            FEE,
            fi[f],
            sales[f] * fwd_rate * rng.lognormal(0, 0.08, f.shape[0]),
            np.full(f.shape[0], CNY),
            cps.logistics0 + forwarder[fi[f]],
            month_end[f],
            None,
            None,
        )
    )
    # B2B receipts: one invoice per order
    sh = tr.shipments
    o = tr.b2b_orders
    ofirm, oday = sh["firm"][o], sh["day"][o]
    omonth = np.minimum(cal.month_of(oday), m_last)
    oh = w.health[ofirm, omonth]
    slot = np.minimum((rng.random((o.shape[0], 1)) > np.array([0.4, 0.7, 0.9])).sum(1), 3)
    buyer = buyers[ofirm, slot]
    due = oday + buyer_term[buyer]
    late = rng.random(o.shape[0]) < sigmoid(-1.7 - 0.8 * oh + buyer_risk[buyer])
    late_days = rng.gamma(1.5, (8.0 + 25.0 * sigmoid(-oh)) / 1.5)
    early = rng.integers(0, 4, o.shape[0])
    paid = np.where(late, due + np.round(late_days).astype(np.int64), np.maximum(due - early, oday))
    bad_debt = rng.random(o.shape[0]) < sigmoid(-5.5 - 0.8 * oh + 0.5 * buyer_risk[buyer])
    paid = np.where(bad_debt, -1, unpaid_after_end(paid))
    dest = sh["destination"][o]
    cur = np.where(
        np.isin(COUNTRY_CURRENCY[dest], [CURRENCIES.index("EUR"), CURRENCIES.index("JPY")]),
        COUNTRY_CURRENCY[dest],
        USD,
    )
    parts.append(
        _part(
            B2B_RECEIPT,
            ofirm,
            sh["value"][o] * rng.lognormal(0, 0.03, o.shape[0]),
            cur,
            cps.buyer0 + buyer,
            oday,
            due,
            paid,
        )
    )
    # supplier invoices: one a month (two for larger sellers); delays set by the health at
    # the due date, so they lengthen as cash tightens
    for j in range(2):
        sel = np.flatnonzero(sales > 60_000.0) if j else np.arange(fi.shape[0])
        fi_, ti_, h_, sales_ = fi[sel], ti[sel], h[sel], sales[sel] / (1 + (sales[sel] > 60_000.0))
        day = ms[ti_] + np.floor(rng.random(sel.shape[0]) * cal.month_days[ti_]).astype(np.int64)
        sup = fi_ * SUPPLIERS_PER_FIRM + rng.integers(0, SUPPLIERS_PER_FIRM, sel.shape[0])
        due = day + supplier_term[sup]
        h_due = w.health[fi_, np.minimum(cal.month_of(due), m_last)]
        cost_ratio = np.clip(0.70 - 0.05 * h_, 0.5, 0.92)
        mean_delay = 2.0 + 40.0 * sigmoid(-1.2 * h_due - 1.0)
        delay = np.round(rng.gamma(6.0, mean_delay / 6.0) - 3.0).astype(np.int64)
        paid = unpaid_after_end(np.maximum(due + delay, day))
        amount = sales_ * cost_ratio * rng.lognormal(0, 0.1, sel.shape[0])
        parts.append(
            _part(
                SUPPLIER,
                fi_,
                amount,
                np.full(sel.shape[0], CNY),
                cps.supplier0 + sup,
                day,
                due,
                paid,
            )
        )
    parts.extend(_loan_flows(rng, w, cps))
    return _concat(parts), cps.names()


def _loan_flows(rng: np.random.Generator, w: Latent, cps: Counterparties) -> list[Cols]:
    """Disbursements and the repayment schedule (issued at disbursement) of every loan."""
    from credit.simulator.world import instalment_due

    lb, cal = w.loans, w.cal
    end, m_last = cal.end_day, cal.months - 1
    d = np.flatnonzero(lb.disbursed)
    lender = cps.lender0 + (lb.firm[d] * 31 + lb.product[d]) % len(LENDERS)
    cur = np.where(lb.product[d] == 1, USD, CNY)
    disb = _part(
        DISBURSEMENT, lb.firm[d], lb.amount[d], cur, lender, lb.disbursed_day[d], None, None
    )
    n_inst = lb.n_inst[d]
    loan = np.repeat(d, n_inst)
    k = np.arange(loan.shape[0]) - np.repeat(np.cumsum(n_inst) - n_inst, n_inst) + 1
    due = instalment_due(lb.disbursed_day[loan], lb.term[loan], lb.n_inst[loan], k)
    firm = lb.firm[loan]
    h_due = w.health[firm, np.clip(cal.month_of(due), 0, m_last)]
    late = rng.random(loan.shape[0]) < sigmoid(-2.4 - 0.9 * h_due)
    late_days = np.minimum(rng.gamma(1.3, (4.0 + 20.0 * sigmoid(-h_due)) / 1.3), 85.0)
    on_time = np.maximum(due - rng.integers(0, 4, loan.shape[0]), lb.disbursed_day[loan])
    paid = np.where(late, due + np.round(late_days).astype(np.int64) + 1, on_time)
    missed = lb.will_default[loan] & (k >= lb.first_missed[loan])
    paid = np.where(missed | (paid >= end), -1, paid)
    interest = LOAN_RATE[lb.product[loan]] * lb.term[loan] / 365
    amount = lb.amount[loan] * (1 + interest) / n_inst.repeat(n_inst)
    rep = _part(
        REPAYMENT,
        firm,
        amount,
        np.where(lb.product[loan] == 1, USD, CNY),
        np.repeat(lender, n_inst),
        lb.disbursed_day[loan],
        due,
        paid,
    )
    return [disb, rep]
