"""Seller recourse: plans of actions on the firm's own records that reach a target grade.

A plan is a few :mod:`credit.actions` (settle these invoices, ship this way for three
months, ...) with their parameters. It is *valid by construction*: before a plan is
returned, its actions are applied to the firm's records, the features are recomputed from
them by the online feature path (:func:`features.pipeline.compute_many`) and scored by the
one scoring core; the grade a plan claims is the grade those records get.

The search (``docs/recourse.md`` tells it in full):

1. The firm as it stands at ``T`` is scored; for each horizon (a week, 3 months, then 6
   months when needed) the do-nothing-else book is projected and scored, and every action
   at every level is applied on its own and recomputed from records (one batch query).
2. Each single action's effect is a change of a few features. Plans of up to three actions
   are composed by adding those changes to the horizon's do-nothing vector (actions edit
   different records, so their changes add up, except on the few features that share
   records: derived ratios and cash flow) and every composition is scored exactly by the
   model, in one call.
3. The cheapest compositions that reach the target (fewest actions, then the shortest
   horizon, then the least cash) are verified from records; a composition whose records
   fall short, or that moves an undisclosed feature the risky way, is dropped and the next
   is verified. When none reaches the target, the best reachable grade is verified and
   shown instead.
4. Each returned plan carries the SHAP change of every feature it moves: TreeSHAP is
   additive, so the changes add up to the plan's change in log-odds exactly.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from credit.actions import (
    ACTIONS,
    HORIZONS,
    KEEP_TRADING,
    NOW_DAYS,
    Applied,
    Book,
    Step,
    action,
    apply_steps,
    as_it_stands,
    start,
)
from credit.scoring import ScoringModel
from features import catalog
from features.pipeline import RowCache, compute_many

#: Most plans returned, and most actions in one (keeping trading counts as one).
MAX_PLANS = 3
MAX_ACTIONS = 3
#: Most verification rounds (each one batch of records recomputed).
MAX_ROUNDS = 3
#: A feature "moves" when it changes by more than this (relative to its size).
_TOL = 1e-9


class RecourseError(ValueError):
    """A request the search cannot answer (an unknown grade)."""


@dataclass(frozen=True)
class Outcome:
    pd: float
    score: int
    grade: str

    def as_dict(self) -> dict[str, Any]:
        return {"pd": self.pd, "score": self.score, "grade": self.grade}


@dataclass
class Plan:
    """A verified plan: its actions, when it is scored, and what the records then give."""

    horizon_days: int
    scored_at: datetime
    steps: list[Step]
    actions: list[Applied]
    after: Outcome
    #: the same moment with nothing done but trading as now: what time alone gives
    without: Outcome
    #: every feature whose SHAP contribution changes from now to after (they add up to
    #: ``raw_change``), most helpful first; ``by`` says whether the plan moves it or time
    changes: list[dict[str, Any]] = field(default_factory=list)
    #: disclosed features it moves the risky way
    side_effects: list[dict[str, Any]] = field(default_factory=list)
    #: log-odds change from now (the sum of every feature's SHAP change)
    raw_change: float = 0.0
    #: the feature vector after (what the SHAP changes are computed on)
    values: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def names(self) -> frozenset[str]:
        return _action_set(self.steps, self.horizon_days)

    @property
    def cash_usd(self) -> float:
        return float(sum(a.cost.cash_usd for a in self.actions))

    def as_dict(self) -> dict[str, Any]:
        return {
            "horizon_days": self.horizon_days,
            "scored_at": self.scored_at.isoformat(),
            # what replays the plan: credit.actions.apply_plan(records, firm, as_of,
            # horizon_days, steps)
            "steps": [{"action": s.action, "level": s.level} for s in self.steps],
            "actions": [
                {
                    "action": a.action,
                    "params": a.params,
                    "text": a.text,
                    "cost": {
                        "cash_usd": round(a.cost.cash_usd, 2),
                        "days": a.cost.days,
                        "effort": a.cost.effort,
                    },
                }
                for a in self.actions
            ],
            "after": self.after.as_dict(),
            "without_plan": self.without.as_dict(),
            "cost": {"cash_usd": round(self.cash_usd, 2), "days": self.horizon_days},
            "changes": self.changes,
            "side_effects": self.side_effects,
            "log_odds_change": self.raw_change,
        }


@dataclass
class Recourse:
    """The answer: up to three plans that reach ``target_grade``, or the best reachable."""

    as_of: datetime
    target_grade: str
    current: Outcome
    plans: list[Plan]
    best: Plan | None
    message: str
    #: ``already`` (at the target), ``in_a_week`` (the records as they stand reach it
    #: within a week, nothing to do), ``plans``, ``best`` (the best reachable grade instead)
    #: or ``none`` (no plan improves on the current grade)
    status: str = "plans"
    #: search figures: compositions scored, plans verified from records, records recomputed
    searched: int = 0
    verified: int = 0
    recomputed: int = 0
    refused: int = 0
    seconds: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.status in ("already", "in_a_week", "plans")

    @property
    def already(self) -> bool:
        return self.status == "already"

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "target_grade": self.target_grade,
            "current": self.current.as_dict(),
            "reachable": self.reachable,
            "status": self.status,
            "plans": [p.as_dict() for p in self.plans],
            "best_reachable": None if self.best is None else self.best.as_dict(),
            "message": self.message,
            "search": {
                "compositions_scored": self.searched,
                "plans_verified": self.verified,
                "feature_vectors_recomputed": self.recomputed,
                "refused_for_side_effects": self.refused,
                "seconds": round(self.seconds, 4),
            },
        }


# --------------------------------------------------------------------------------------------


@dataclass
class _Single:
    """One action at one level, applied alone and recomputed from records."""

    step: Step
    horizon: int
    applied: Applied
    values: dict[str, float]


@dataclass
class _Candidate:
    horizon: int
    singles: tuple[_Single, ...]
    pd: float = math.nan
    grade: str = ""

    @property
    def names(self) -> frozenset[str]:
        return _action_set([s.step for s in self.singles], self.horizon)

    @property
    def size(self) -> int:
        return len(self.singles) + (1 if self.horizon > NOW_DAYS else 0)

    @property
    def cash(self) -> float:
        return sum(s.applied.cost.cash_usd for s in self.singles)


def next_grade(model: ScoringModel, grade: str) -> str | None:
    """The grade one better than ``grade`` (``None`` for the best)."""
    grades = model.scale.grades
    i = grades.index(grade)
    return grades[i - 1] if i > 0 else None


def _matrix(model: ScoringModel, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Feature vectors in model order (catalog features are numbers; a model with
    categorical columns goes through its encoder)."""
    if model.categories:
        return model.encode(pd.DataFrame(list(rows)))
    names = model.feature_names
    return np.array([[r[f] for f in names] for r in rows], dtype=np.float64)


def _outcome(model: ScoringModel, rows: Sequence[Mapping[str, float]]) -> list[Outcome]:
    s = model.predict(_matrix(model, rows))
    return [Outcome(float(s.pd[i]), int(s.score[i]), str(s.grade[i])) for i in range(len(rows))]


def _moved(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > _TOL * max(1.0, abs(a), abs(b))


class _Search:
    def __init__(
        self,
        model: ScoringModel,
        book: Book,
        target: str,
        max_actions: int,
    ) -> None:
        self.model = model
        self.book = book
        self.target = target
        self.grades = model.scale.grades
        self.max_actions = max_actions
        self.names = list(model.feature_names)
        self.direction = {f.name: f.risk_direction for f in catalog.CATALOG}
        self.base: dict[int, dict[str, float]] = {}
        self.base_out: dict[int, Outcome] = {}
        self.singles: dict[int, list[_Single]] = {}
        self.cache = RowCache()
        self.started: dict[int, tuple[Book, list[Applied]]] = {}
        self.recomputed = 0
        self.searched = 0
        self.verified = 0
        self.refused = 0

    def _compute(self, books: Sequence[Book]) -> list[dict[str, float]]:
        self.recomputed += len(books)
        return compute_many([(b.records, b.scored_at, b.firm) for b in books], cache=self.cache)

    def horizon(self, h: int) -> None:
        """The do-nothing book at ``h`` and every single action at every level."""
        self.started[h] = start(self.book, h)
        base, _ = self.started[h]
        books, meta = [base], []
        for a in ACTIONS:
            if (a.timing == "now") != (h == NOW_DAYS):
                continue
            for level in a.levels:
                step = Step(a.name, level)
                b, steps_done = apply_steps(self.book, h, [step], self.started[h])
                done = [x for x in steps_done if x.action == a.name]
                if done:
                    books.append(b)
                    meta.append((step, done[0]))
        values = self._compute(books)
        self.base[h] = values[0]
        self.base_out[h] = _outcome(self.model, [values[0]])[0]
        singles = []
        for (step, one), v in zip(meta, values[1:], strict=True):
            if any(_moved(v[f], values[0][f]) for f in self.names):
                singles.append(_Single(step, h, one, v))
        # drop a level that gives the same features as a lower one (e.g. "half" = "all")
        seen: dict[tuple[str, tuple[float, ...]], _Single] = {}
        for s in singles:
            key = (s.step.action, tuple(np.nan_to_num([s.values[f] for f in self.names])))
            seen.setdefault(key, s)
        self.singles[h] = list(seen.values())

    def compose(self, h: int, singles: Sequence[_Single]) -> dict[str, float]:
        """The horizon's do-nothing vector plus each single action's change."""
        v = dict(self.base[h])
        for s in singles:
            ref = self.base[s.horizon]
            for f in self.names:
                after, before = s.values[f], ref[f]
                if not _moved(after, before):
                    continue
                if math.isfinite(after) and math.isfinite(before) and math.isfinite(v[f]):
                    v[f] = v[f] + (after - before)
                else:
                    v[f] = after
        return v

    def candidates(self, h: int) -> list[_Candidate]:
        now = self.singles.get(NOW_DAYS, [])
        pool = now if h == NOW_DAYS else [*now, *self.singles.get(h, [])]
        room = self.max_actions - (0 if h == NOW_DAYS else 1)
        out = [] if h == NOW_DAYS else [_Candidate(h, ())]
        for k in range(1, room + 1):
            for combo in itertools.combinations(pool, k):
                if len({s.step.action for s in combo}) == k:
                    out.append(_Candidate(h, combo))
        if not out:
            return out
        vectors = [self.compose(h, c.singles) for c in out]
        for c, o in zip(out, _outcome(self.model, vectors), strict=True):
            c.pd, c.grade = o.pd, o.grade
        self.searched += len(out)
        return out

    def reaches(self, grade: str) -> bool:
        return self.grades.index(grade) <= self.grades.index(self.target)

    def verify(self, cands: Sequence[_Candidate]) -> list[Plan | None]:
        """Each candidate from records: its plan, or ``None`` when it moves an undisclosed
        feature the risky way or does no better than doing nothing over the same time."""
        if not cands:
            return []
        built = [
            apply_steps(self.book, c.horizon, [s.step for s in c.singles], self.started[c.horizon])
            for c in cands
        ]
        values = self._compute([b for b, _ in built])
        outs = _outcome(self.model, values)
        self.verified += len(cands)
        plans: list[Plan | None] = []
        for c, (book, applied), v, o in zip(cands, built, values, outs, strict=True):
            allowed = {f for s in c.singles for f in action(s.step.action).side_effects}
            base = self.base[c.horizon]
            worse = [
                f
                for f in self.names
                if self.direction.get(f, 0) != 0
                and math.isfinite(v[f])
                and math.isfinite(base[f])
                and _moved(v[f], base[f])
                and self.direction[f] * (v[f] - base[f]) > 0
            ]
            if any(f not in allowed for f in worse):
                self.refused += 1
                plans.append(None)
                continue
            if c.singles and o.pd >= self.base_out[c.horizon].pd:
                plans.append(None)  # no better than doing nothing over the same time
                continue
            plans.append(
                Plan(
                    horizon_days=c.horizon,
                    scored_at=book.scored_at.to_pydatetime(),
                    steps=[s.step for s in c.singles],
                    actions=applied,
                    after=o,
                    without=self.base_out[c.horizon],
                    side_effects=[
                        {
                            "feature": f,
                            "without_plan": base[f],
                            "after": v[f],
                            "description": catalog.get(f).description,
                        }
                        for f in worse
                    ],
                    values=v,
                )
            )
        return plans


def _explain(
    model: ScoringModel, plan: Plan, current: dict[str, float], base: dict[str, float]
) -> None:
    """The SHAP change of each feature the plan moves (from now to after)."""
    after = plan.values
    phi = model.contributions(_matrix(model, [current, after]))
    names = model.feature_names
    delta = phi[1, :-1] - phi[0, :-1]
    plan.raw_change = float(delta.sum())
    rows: list[dict[str, Any]] = []
    for j, f in enumerate(names):
        by_plan = _moved(after[f], base[f])
        if not by_plan and abs(delta[j]) < 1e-12:
            continue
        rows.append(
            {
                "feature": f,
                "now": _num(current[f]),
                "without_plan": _num(base[f]),
                "after": _num(after[f]),
                "contribution_change": float(delta[j]),
                # "plan": the plan moves it; "time": it moves anyway by the scoring date
                "by": "plan" if by_plan else "time",
                "description": catalog.get(f).description if f in catalog.feature_names() else f,
            }
        )
    rows.sort(key=lambda r: float(r["contribution_change"]))
    plan.changes = rows


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def find_plans(
    model: ScoringModel,
    records: Mapping[str, Any],
    firm: Mapping[str, Any] | None,
    as_of: Any,
    target_grade: str | None = None,
    *,
    max_plans: int = MAX_PLANS,
    max_actions: int = MAX_ACTIONS,
) -> Recourse:
    """Up to ``max_plans`` verified plans that bring the firm to ``target_grade`` or better
    (default: the grade one better than its current one).

    Parameters
    ----------
    model : the scoring core (its scale names the grades).
    records : the firm's records (record type -> list of dicts or DataFrame).
    firm : the firm's own row.
    as_of : the moment T (the plans start then; nothing before it is changed).

    Raises
    ------
    RecourseError
        when ``target_grade`` is not a grade of the model's scale.
    """
    started = time.perf_counter()
    grades = model.scale.grades
    if target_grade is not None and target_grade not in grades:
        raise RecourseError(
            f"target_grade must be one of {', '.join(grades)} (best first), got {target_grade!r}"
        )
    book = as_it_stands(records, firm, as_of)
    search = _Search(model, book, "", max_actions)
    now_values = compute_many([(book.records, book.as_of, book.firm)], cache=search.cache)[0]
    current = _outcome(model, [now_values])[0]
    target = target_grade or next_grade(model, current.grade) or current.grade
    search.target = target
    search.recomputed += 1

    def done(status: str, plans: list[Plan], best: Plan | None, message: str) -> Recourse:
        for p in [*plans, *([best] if best is not None else [])]:
            _explain(model, p, now_values, search.base[p.horizon_days])
        return Recourse(
            as_of=book.as_of.to_pydatetime(),
            target_grade=target,
            current=current,
            plans=plans,
            best=best,
            message=message,
            status=status,
            searched=search.searched,
            verified=search.verified,
            recomputed=search.recomputed,
            refused=search.refused,
            seconds=time.perf_counter() - started,
        )

    if search.reaches(current.grade):
        return done(
            "already", [], None, f"already at grade {current.grade}, at or better than {target}"
        )
    chosen: list[Plan] = []
    tried: list[_Candidate] = []
    pool: list[_Candidate] = []
    for phase in (HORIZONS[:2], HORIZONS[2:]):
        for h in phase:
            search.horizon(h)
        if NOW_DAYS in phase and search.reaches(search.base_out[NOW_DAYS].grade):
            return done(
                "in_a_week",
                [],
                None,
                f"nothing to do: as they stand, the firm's records reach grade {target} within "
                f"a week (grade {search.base_out[NOW_DAYS].grade} on "
                f"{search.started[NOW_DAYS][0].scored_at:%Y-%m-%d})",
            )
        for h in phase:
            pool.extend(search.candidates(h))
        feasible = sorted(
            (c for c in pool if search.reaches(c.grade) and c not in tried),
            key=lambda c: (c.size, c.horizon, c.cash, c.pd),
        )
        for _ in range(MAX_ROUNDS):
            # alternatives: no plan is another plus more (a superset is not minimal)
            taken = [p.names for p in chosen]
            picks: list[_Candidate] = []
            for c in feasible:
                if c in tried or any(c.names >= t for t in taken):
                    continue
                if any(c.names >= p.names for p in picks):
                    continue
                picks.append(c)
                if len(picks) + len(chosen) >= max_plans:
                    break
            if not picks:
                break
            tried.extend(picks)
            for plan in search.verify(picks):
                if plan is None or not search.reaches(plan.after.grade):
                    continue
                if len(chosen) < max_plans and not any(plan.names >= q.names for q in chosen):
                    chosen.append(plan)
            if len(chosen) >= max_plans:
                break
        if chosen:
            break
    if chosen:
        chosen.sort(key=lambda p: (len(p.actions), p.horizon_days, p.cash_usd, p.after.pd))
        n = len(chosen)
        return done("plans", chosen, None, f"{n} plan{'s' if n != 1 else ''} reach grade {target}")
    # nothing reaches the target: the best reachable, verified (in one batch; the estimate
    # of a composition can be off, so one of these may reach the target after all)
    ranked = [c for c in sorted(pool, key=lambda c: (c.pd, c.size)) if c not in tried]
    verified = [p for p in search.verify(ranked[: 2 * MAX_PLANS]) if p is not None]
    verified.sort(key=lambda p: (p.after.pd, len(p.actions)))
    reached = [p for p in verified if search.reaches(p.after.grade)]
    if reached:
        return done("plans", reached[:1], None, f"1 plan reaches grade {target}")
    best = verified[0] if verified else None
    if best is None or best.after.pd >= current.pd:
        return done(
            "none",
            [],
            None,
            f"no plan within the actions' bounds reaches grade {target} or improves on "
            f"grade {current.grade}",
        )
    return done(
        "best",
        [],
        best,
        f"no plan within the actions' bounds reaches grade {target}; the best reachable is "
        f"grade {best.after.grade}",
    )


def _action_set(steps: Sequence[Step], horizon: int) -> frozenset[str]:
    names = {s.action for s in steps}
    return frozenset(names | ({KEEP_TRADING} if horizon > NOW_DAYS else set()))
