"""Seller recourse in record space against DiCE in feature space, on the same firms.

One simulated world (default 400 firms, 30 months, seed 11) and one LightGBM model trained
on the whole catalog (:mod:`tests.recourse_support`). At each date, the same firms (those
not already at the best grade, in id order) ask for the next grade up:

* **recourse**: :func:`credit.recourse.find_plans`, plans of actions on the firm's records;
* **DiCE** (``dice-ml``, model-agnostic ``random`` method, three counterfactuals) on the
  same booster through the same scoring core, the same target PD band and the same fixed
  features (:data:`credit.actions.FIXED_FEATURES`), every other feature free within the
  population's observed range. LightGBM reads NaN as "no records"; DiCE cannot hold NaN,
  so NaN travels as a sentinel outside every range and is turned back before scoring.

Figures (per method):

* validity: share of returned plans that reach the target grade, for recourse when the
  plan is replayed from its description and recomputed from records
  (:func:`credit.actions.apply_plan`, :func:`features.pipeline.compute`), for DiCE when its
  feature vector is scored as it is;
* consistency: share of proposed vectors that satisfy the relations the catalog implies
  (:func:`features.relations.violations`: derived features, nested windows, ratio bounds,
  whole counts);
* sparsity: features changed (against doing nothing over the same time for recourse,
  against the firm's vector for DiCE) and actions per plan;
* plausibility: share of proposed vectors whose changed features all lie inside the 1-99%
  range of the firms of the same business model on the date the vector describes (for a
  plan, its scoring date; the features the plan moves, and separately every feature that
  moved since now, time included);
* time per firm (p50, p99; each method warmed up on one firm first).

Then the simulator check: where an action has a counterpart in the simulator's own state,
the plan is applied there and the true PD (:func:`credit.simulator.world.standard_pd`) is
compared with what the plan claims. Only time has one: keeping trading for N months is the
simulator running N more months. The other actions edit records the simulator draws from
its latent health; it has no state they could change, so the true PD does not move with
them (the model's PD does: it reads the records).

    .venv/bin/python benchmarks/bench_recourse.py [--firms 400] [--per-date 40] [--json]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: dice-ml).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from credit.actions import FIXED_FEATURES, apply_plan  # noqa: E402
from credit.recourse import find_plans, next_grade  # noqa: E402
from features.catalog import feature_names  # noqa: E402
from features.pipeline import build, compute  # noqa: E402
from features.relations import violations  # noqa: E402
from tests.recourse_support import RecourseWorld, build_world  # noqa: E402

SENTINEL = -1e12


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _share(hits: list[bool]) -> float:
    return float(np.mean(hits)) if hits else math.nan


def _changed(a: dict[str, float], b: dict[str, float], names: list[str]) -> list[str]:
    out = []
    for n in names:
        x, y = a[n], b[n]
        if (math.isnan(x) != math.isnan(y)) or (
            not math.isnan(x) and abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y))
        ):
            out.append(n)
    return out


class Segments:
    """Per business model: each feature's 1% and 99% quantiles and NaN share on a date."""

    def __init__(self, pop: pd.DataFrame, names: list[str]) -> None:
        self.q: dict[str, tuple[pd.Series, pd.Series, pd.Series]] = {}
        for bm, g in pop.groupby("business_model"):
            x = g[names].astype(float)
            self.q[str(bm)] = (x.quantile(0.01), x.quantile(0.99), x.isna().mean())

    def plausible(self, bm: str, v: dict[str, float], changed: list[str]) -> bool:
        lo, hi, nan = self.q[bm]
        for f in changed:
            x = v[f]
            if math.isnan(x):
                if nan[f] < 0.01:
                    return False
            elif not lo[f] - 1e-9 <= x <= hi[f] + 1e-9:
                return False
        return True


def population(rw: RecourseWorld, as_of: pd.Timestamp) -> pd.DataFrame:
    firms = rw.frames["firms"]
    spine = pd.DataFrame({"firm_id": firms["firm_id"], "as_of": as_of})
    pop = build(str(rw.store), spine)
    return pop.merge(firms[["firm_id", "business_model"]], on="firm_id")


class DiceRunner:
    def __init__(self, rw: RecourseWorld, pop: pd.DataFrame, names: list[str]) -> None:
        import dice_ml

        self.model, self.names = rw.model, names
        X = pop[names].astype(float)
        enc = X.fillna(SENTINEL)
        enc["pd"] = self.predict(enc)
        data = dice_ml.Data(
            dataframe=enc,
            continuous_features=names,
            outcome_name="pd",
            continuous_features_precision=dict.fromkeys(names, 6),
        )
        wrapped = dice_ml.Model(model=self, backend="sklearn", model_type="regressor")
        self.dice = dice_ml.Dice(data, wrapped, method="random")
        vary = [n for n in names if n not in FIXED_FEATURES and X[n].notna().any()]
        self.vary = vary
        self.ranges = {n: [float(X[n].min()), float(X[n].max())] for n in vary}

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        a = np.array(df[self.names].to_numpy(dtype=float))
        a[a <= SENTINEL / 2] = np.nan
        out: np.ndarray = self.model.predict(a).pd
        return out

    def counterfactuals(self, x: dict[str, float], upper_pd: float) -> list[dict[str, float]]:
        from raiutils.exceptions import UserConfigValidationException

        q = pd.DataFrame([{n: (SENTINEL if math.isnan(x[n]) else x[n]) for n in self.names}])
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                r = self.dice.generate_counterfactuals(
                    q,
                    total_CFs=3,
                    desired_range=[0.0, upper_pd * (1 - 1e-6)],
                    features_to_vary=self.vary,
                    permitted_range=self.ranges,
                    random_seed=0,
                    verbose=False,
                )
        except UserConfigValidationException:  # "no counterfactuals found"
            return []
        cf = r.cf_examples_list[0].final_cfs_df
        if cf is None or not len(cf):
            return []
        out = []
        for row in cf[self.names].astype(float).to_dict("records"):
            out.append({n: (math.nan if row[n] <= SENTINEL / 2 else row[n]) for n in self.names})
        return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("dice_ml").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rw = build_world(Path(tmp), firms=args.firms)
        built = time.perf_counter() - t0
        names = feature_names()
        model = rw.model
        bands = dict(model.scale.bands)
        ours: dict[str, Any] = {"times": [], "plans": 0, "valid": [], "consistent": [],
                                "changed": [], "changed_vs_now": [], "actions": [],
                                "plausible": [], "plausible_all": [], "found": [],
                                "best": 0}  # fmt: skip
        segments: dict[pd.Timestamp, Segments] = {}

        def segments_at(t: pd.Timestamp) -> Segments:
            """The firms of each business model on the date a vector describes."""
            if t not in segments:
                segments[t] = Segments(population(rw, t), names)
            return segments[t]

        dice: dict[str, Any] = {"times": [], "plans": 0, "valid": [], "consistent": [],
                                "changed": [], "plausible": [], "found": [],
                                "broken": Counter()}  # fmt: skip
        sim: dict[str, Any] = {"time_plans": 0, "time_checked": 0, "agree": 0, "deltas": [],
                               "claimed": [], "by_action": Counter(), "now_plans": 0}  # fmt: skip
        end = pd.Timestamp(rw.world.end)
        index = {f: i for i, f in enumerate(rw.frames["firms"]["firm_id"])}
        firms_asked = 0
        for as_of_text in args.dates:
            as_of = pd.Timestamp(as_of_text)
            pop = population(rw, as_of)
            seg = segments_at(as_of)
            x_all = pop.set_index("firm_id")[names].astype(float)
            scores = model.predict(x_all.to_numpy())
            grades = pd.Series(scores.grade, index=x_all.index)
            asked = [f for f in x_all.index if next_grade(model, str(grades[f])) is not None]
            asked = asked[: args.per_date]
            firms_asked += len(asked)
            runner = DiceRunner(rw, pop, names)
            bm = pop.set_index("firm_id")["business_model"]
            # warm up both (compiled statements, DiCE's first call)
            recs0, firm0 = rw.firm_records(asked[0])
            find_plans(model, recs0, firm0, as_of)
            target0 = next_grade(model, str(grades[asked[0]]))
            runner.counterfactuals(x_all.loc[asked[0]].to_dict(), bands[target0])
            for fid in asked:
                recs, firm = rw.firm_records(fid)
                x0 = x_all.loc[fid].to_dict()
                target = next_grade(model, str(grades[fid]))
                assert target is not None
                t = time.perf_counter()
                found = find_plans(model, recs, firm, as_of, target)
                ours["times"].append(time.perf_counter() - t)
                ours["found"].append(bool(found.plans))
                ours["best"] += found.best is not None
                for p in found.plans:
                    book, _ = apply_plan(recs, firm, as_of, p.horizon_days, p.steps)
                    v = compute(book.records, book.scored_at, firm=book.firm)
                    got = str(model.predict(model.encode(v)).grade[0])
                    ours["plans"] += 1
                    ours["valid"].append(model.scale.grades.index(got) <=
                                         model.scale.grades.index(target))  # fmt: skip
                    ours["consistent"].append(not violations(v))
                    by_plan = [c["feature"] for c in p.changes if c["by"] == "plan"]
                    ours["changed"].append(len(by_plan))
                    vs_now = _changed(v, x0, names)
                    ours["changed_vs_now"].append(len(vs_now))
                    ours["actions"].append(len(p.actions))
                    # against the firms of its segment on the date the plan is scored: the
                    # features the plan moves, and every feature that moved since now
                    later = segments_at(book.scored_at)
                    ours["plausible"].append(later.plausible(str(bm[fid]), v, by_plan))
                    ours["plausible_all"].append(later.plausible(str(bm[fid]), v, vs_now))
                    _simulate(sim, rw, index[fid], as_of, end, found.current.pd, p)
                t = time.perf_counter()
                cfs = runner.counterfactuals(x0, bands[target])
                dice["times"].append(time.perf_counter() - t)
                dice["found"].append(bool(cfs))
                for v in cfs:
                    got = str(model.predict(model.encode(v)).grade[0])
                    dice["plans"] += 1
                    dice["valid"].append(model.scale.grades.index(got) <=
                                         model.scale.grades.index(target))  # fmt: skip
                    broken = violations(v)
                    dice["consistent"].append(not broken)
                    dice["broken"].update(b.split(" ")[0] for b in broken)
                    ch = _changed(v, x0, names)
                    dice["changed"].append(len(ch))
                    dice["plausible"].append(seg.plausible(str(bm[fid]), v, ch))
        total = time.perf_counter() - t0

    def summary(d: dict[str, Any]) -> dict[str, Any]:
        times = np.array(d["times"]) * 1000
        return {
            "firms": len(d["found"]),
            "firms_with_a_plan": _share(d["found"]),
            "plans": d["plans"],
            "validity": _share(d["valid"]),
            "consistency": _share(d["consistent"]),
            "features_changed_median": float(np.median(d["changed"])) if d["changed"] else None,
            "features_changed_p90": float(np.percentile(d["changed"], 90))
            if d["changed"]
            else None,
            "plausibility": _share(d["plausible"]),
            "ms_per_firm_p50": float(np.percentile(times, 50)),
            "ms_per_firm_p99": float(np.percentile(times, 99)),
        }

    out = {
        "world": {
            "firms": args.firms,
            "dates": args.dates,
            "firms_asked": firms_asked,
            "build_seconds": round(built, 1),
            "total_seconds": round(total, 1),
        },  # fmt: skip
        "recourse": {
            **summary(ours),
            "actions_per_plan_mean": float(np.mean(ours["actions"])) if ours["actions"] else None,
            "features_changed_vs_now_median": float(np.median(ours["changed_vs_now"]))
            if ours["changed_vs_now"]
            else None,
            "firms_told_best_reachable": ours["best"],
            "plausibility_time_included": _share(ours["plausible_all"]),
        },
        "dice": {**summary(dice), "relations_broken": dict(dice["broken"].most_common(8))},
        "simulator": {
            "plans_with_time": sim["time_plans"],
            "checked_in_the_simulator": sim["time_checked"],
            "true_pd_moved_as_claimed": sim["agree"] / sim["time_checked"]
            if sim["time_checked"]
            else None,
            "true_pd_change_mean": float(np.mean(sim["deltas"])) if sim["deltas"] else None,
            "claimed_pd_change_mean": float(np.mean(sim["claimed"])) if sim["claimed"] else None,
            "plans_acting_now_only": sim["now_plans"],
            "actions_without_a_counterpart": dict(sim["by_action"]),
        },
    }
    return out


def _simulate(
    sim: dict[str, Any],
    rw: RecourseWorld,
    firm: int,
    as_of: pd.Timestamp,
    end: pd.Timestamp,
    pd_now: float,
    plan: Any,
) -> None:
    """The plan in the simulator: time is the only action with a counterpart there."""
    from credit.simulator.world import standard_pd

    for a in plan.actions:
        if a.action != "keep_trading":
            sim["by_action"][a.action] += 1
    if plan.horizon_days <= 7:
        sim["now_plans"] += 1
        return
    sim["time_plans"] += 1
    later = as_of + pd.Timedelta(days=plan.horizon_days)
    if later > end:
        return
    cal = rw.world.latent.cal
    day0 = (as_of.date() - cal.start).days
    day1 = (later.date() - cal.start).days
    t0, t1 = standard_pd(rw.world.latent, np.array([firm, firm]), np.array([day0, day1]))
    claimed = plan.after.pd - pd_now
    sim["time_checked"] += 1
    sim["deltas"].append(float(t1 - t0))
    sim["claimed"].append(claimed)
    sim["agree"] += int(np.sign(t1 - t0) == np.sign(claimed))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firms", type=int, default=400)
    ap.add_argument("--per-date", type=int, default=40)
    ap.add_argument("--dates", nargs="+", default=["2024-07-01", "2025-01-01"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        import dice_ml  # noqa: F401
    except ImportError:
        sys.exit("bench_recourse needs dice-ml: .venv/bin/pip install -e '.[bench]'")
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=1))
        return
    r, d, s = out["recourse"], out["dice"], out["simulator"]
    w = out["world"]
    print(
        f"world: {w['firms']} simulated firms, model on the whole catalog; "
        f"{w['firms_asked']} firms asked for the next grade at {', '.join(w['dates'])} "
        f"(built in {w['build_seconds']} s, run {w['total_seconds']} s)"
    )
    rows = [
        ("firms with a plan", _pct(r["firms_with_a_plan"]), _pct(d["firms_with_a_plan"])),
        ("plans returned", str(r["plans"]), str(d["plans"])),
        ("validity", _pct(r["validity"]), _pct(d["validity"])),
        ("consistency", _pct(r["consistency"]), _pct(d["consistency"])),
        (
            "features changed, median (p90)",
            f"{r['features_changed_median']:.0f} ({r['features_changed_p90']:.0f})",
            f"{d['features_changed_median']:.0f} ({d['features_changed_p90']:.0f})"
            if d["plans"]
            else "-",
        ),
        ("actions per plan, mean", f"{r['actions_per_plan_mean']:.2f}", "-"),
        ("plausibility", _pct(r["plausibility"]), _pct(d["plausibility"])),
        ("ms per firm, p50", f"{r['ms_per_firm_p50']:.0f}", f"{d['ms_per_firm_p50']:.0f}"),
        ("ms per firm, p99", f"{r['ms_per_firm_p99']:.0f}", f"{d['ms_per_firm_p99']:.0f}"),
    ]
    print(f"\n{'':32s} {'recourse (records)':>20s} {'DiCE random':>14s}")
    for name, a, b in rows:
        print(f"{name:32s} {a:>20s} {b:>14s}")
    print(f"\nDiCE vectors breaking catalog relations, most often: {d['relations_broken']}")
    print(
        f"recourse: features changed against now (time included), median "
        f"{r['features_changed_vs_now_median']:.0f}, plausibility of all of them "
        f"{_pct(r['plausibility_time_included'])}; firms told their best reachable grade "
        f"instead: {r['firms_told_best_reachable']}"
    )
    agree = s["true_pd_moved_as_claimed"]
    print(
        f"\nsimulator: {s['plans_with_time']} plans keep trading for months; "
        f"{s['checked_in_the_simulator']} end inside the simulated window. The true PD moved "
        f"the way the plan says in {_pct(agree) if agree is not None else '-'} of them "
        f"(true change mean {s['true_pd_change_mean'] or 0:+.4f}, claimed "
        f"{s['claimed_pd_change_mean'] or 0:+.4f})."
    )
    print(
        f"simulator: {s['plans_acting_now_only']} plans act within a week only. Actions with "
        f"no counterpart in the simulator's state (the true PD reads latent health, trend and "
        f"segment; these records are drawn from health, not the reverse, so the true PD does "
        f"not move with them): {s['actions_without_a_counterpart']}"
    )


if __name__ == "__main__":
    main()
