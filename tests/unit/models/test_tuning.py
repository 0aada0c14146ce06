"""`credit train --tune`, data-aware defaults, the explanation-cost cap and the parameter checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from credit.cli import app
from models import tune as tune_mod
from models.autoparams import data_aware, resolve
from models.dataset import from_frame
from models.params import PARAMS_PATH, load_params
from models.paramspec import validate
from models.train import cap_steps, train_cv, train_time_split
from models.tune import TuneOptions
from tests.model.helpers import make_frame

FAST = {
    "num_threads": 1,
}


def small_cfg(**training: Any) -> dict[str, Any]:
    cfg = load_params()
    cfg["lightgbm"].update(FAST)
    cfg["training"].update(
        num_boost_round=60, early_stopping_rounds=15, candidates=[{}], **training
    )
    return cfg


def table(n: int = 500, seed: int = 3):
    return from_frame(make_frame(n, seed), "bad", id_column="firm_id", exclude=["applied_at"])


# ---- parameter checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("num_leaves", "1", "lightgbm.num_leaves = 1 is outside its range (an integer from 2"),
        ("learning_rate", "0", "lightgbm.learning_rate = 0 is outside its range (a number above 0"),
        ("feature_fraction", "1.5", "lightgbm.feature_fraction = 1.5 is outside its range"),
        ("lambda_l2", "-1", "lightgbm.lambda_l2 = -1 is outside its range"),
        ("max_depth", "0", "lightgbm.max_depth = 0 is outside its range (an integer from 1 to 64"),
        ("cv.folds", "1", "cv.folds = 1 is outside its range"),
        ("training.explain_p99_ms", "0", "training.explain_p99_ms = 0 is outside its range"),
        ("num_leaves", "many", "lightgbm.num_leaves = 'many' is outside its range"),
    ],
)
def test_a_parameter_outside_its_range_is_one_line_naming_it(key, value, expected) -> None:
    with pytest.raises(ValueError) as err:
        load_params(None, {key: value})
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_the_shipped_file_is_valid_and_auto_only_where_allowed() -> None:
    cfg = load_params()
    validate(cfg)
    assert cfg["lightgbm"]["num_leaves"] == "auto"
    bad = copy.deepcopy(cfg)
    bad["lightgbm"]["bagging_fraction"] = "auto"
    with pytest.raises(ValueError, match="bagging_fraction = 'auto' is outside its range"):
        validate(bad)
    bad = copy.deepcopy(cfg)
    bad["training"]["candidates"] = [{"num_leaves": 0}]
    with pytest.raises(ValueError, match=r"training\.candidates\[0\]\.num_leaves = 0"):
        validate(bad)


def test_a_bad_parameter_file_is_named_in_the_error(tmp_path) -> None:
    cfg = yaml.safe_load(PARAMS_PATH.read_text())
    cfg["lightgbm"]["min_child_samples"] = 0
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=rf"{f}: lightgbm.min_child_samples = 0"):
        load_params(f)
    f.write_text("lightgbm: [unclosed")
    with pytest.raises(ValueError, match="not a YAML parameter file"):
        load_params(f)


# ---- data-aware defaults ---------------------------------------------------------------------


def _choices(rows: int, defaults: int, columns: int) -> dict[str, Any]:
    return {c.name: c.value for c in data_aware(rows, defaults, columns)}


def test_defaults_scale_with_rows_defaults_and_columns() -> None:
    # the simulated world: many rows, rare defaults, many columns -> the version-4 values
    world = _choices(41_481, 2_310, 89)
    assert world == {
        "min_child_samples": 72,
        "num_leaves": 15,
        "lambda_l2": 5.0,
        "feature_fraction": 0.5,
        "learning_rate": 0.02,
    }
    # HMEQ: 6k rows, 20% defaults, 12 columns -> small leaves allowed, no shrinkage
    hmeq = _choices(5_960, 1_189, 12)
    assert hmeq == {
        "min_child_samples": 20,
        "num_leaves": 31,
        "lambda_l2": 0.0,
        "feature_fraction": 0.8,
        "learning_rate": 0.05,
    }
    # German: few rows -> small, shrunk trees whatever the default rate
    german = _choices(1_000, 300, 20)
    assert german["num_leaves"] == 15 and german["lambda_l2"] == 5.0
    assert german["min_child_samples"] == 13
    # the bounds of rows per leaf
    assert _choices(100_000, 100, 10)["min_child_samples"] == 100
    assert _choices(1_000, 900, 10)["min_child_samples"] == 10


def test_only_auto_values_are_resolved_and_each_has_a_reason() -> None:
    cfg = load_params(None, {"num_leaves": "63"})
    out, chosen = resolve(cfg, 5_960, 1_189, 12)
    assert out["lightgbm"]["num_leaves"] == 63  # explicit: untouched
    assert "num_leaves" not in {c.name for c in chosen}
    assert out["lightgbm"]["min_child_samples"] == 20
    assert all(c.why for c in chosen)
    assert cfg["lightgbm"]["min_child_samples"] == "auto"  # the input is not modified


# ---- the explanation-cost cap ----------------------------------------------------------------


def test_cap_steps_are_distinct_and_valid() -> None:
    base = {"learning_rate": 0.1, "num_leaves": 31}
    steps = cap_steps(base)
    assert len({json.dumps(p, sort_keys=True) for _, p in steps}) == len(steps)
    for _, p in steps:
        validate({"lightgbm": p})
        assert p != base
    # a rate already at the ceiling gives no "faster rate" step that changes nothing
    assert all(p != {"learning_rate": 0.3} for _, p in cap_steps({"learning_rate": 0.3}))


def test_a_model_over_the_cap_is_remedied_and_a_cap_out_of_reach_is_reported() -> None:
    data = table()
    roomy = train_cv(data, small_cfg(explain_p99_ms=1000.0), with_scorecard=False)
    assert roomy.explain["met"] and roomy.explain["remedy"] == ""
    assert roomy.explain["p99_ms"] > 0
    # a cap no model can meet: every remedy is tried, the cheapest kept, and it says so
    tight = train_cv(data, small_cfg(explain_p99_ms=1e-6), with_scorecard=False)
    assert tight.explain["met"] is False
    assert tight.explain["remedy"] in {name for name, _ in cap_steps(roomy.info.params)}
    assert tight.explain["folds_capped"] == 5 and tight.explain["folds_cap_met"] == 0
    assert tight.explain["validation_auc_cost"] == pytest.approx(
        tight.explain["validation_auc_uncapped"] - tight.explain["validation_auc_capped"]
    )


# ---- tuning ----------------------------------------------------------------------------------


@pytest.fixture
def seen(monkeypatch):
    """The rows each study's search was given."""
    calls: list[dict[str, Any]] = []
    real = tune_mod._tune_lightgbm

    def spy(data, fit_idx, val_idx, *args, **kwargs):
        rows = set(fit_idx.tolist()) | set(() if val_idx is None else val_idx.tolist())
        calls.append({"label": args[-1], "rows": rows})
        return real(data, fit_idx, val_idx, *args, **kwargs)

    monkeypatch.setattr(tune_mod, "_tune_lightgbm", spy)
    return calls


@pytest.mark.slow
def test_nested_cv_tunes_each_fold_on_its_training_rows_only(seen) -> None:
    from models.splits import stratified_folds

    data = table()
    cfg = small_cfg()
    rep = train_cv(data, cfg, with_scorecard=True, tune=TuneOptions(0.5, trials=3))
    folds = stratified_folds(data.y, 5, int(cfg["cv"]["seed"]))
    assert [c["label"] for c in seen] == [f"fold {i}/5" for i in range(1, 6)] + ["final model"]
    for (train, test), call in zip(folds, seen[:5], strict=True):
        assert call["rows"] == set(train.tolist())  # all of its training rows ...
        assert not call["rows"] & set(test.tolist())  # ... and none it is scored on
    assert seen[5]["rows"] == set(np.flatnonzero(data.y >= 0).tolist())
    assert len(rep.tuning) == 6
    for study in rep.tuning:
        assert 1 <= len(study.trials) <= 3  # --trials bounds each study
        assert study.scorecard_trials  # the binning is searched too
        assert set(study.best_params) <= set(tune_mod.SEARCHED)
        # the configured parameters (trial 0) are always scored again on a fresh split
        assert next(iter(study.recheck_auc)) == 0


@pytest.mark.slow
def test_a_time_split_tunes_on_the_training_window_never_the_out_of_time_rows(seen) -> None:
    frame = make_frame(700, seed=9)
    data = from_frame(frame, "bad", time_column="applied_at", id_column="firm_id")
    cfg = small_cfg()
    cfg["split"]["outcome_window_months"] = 0
    rep = train_time_split(data, cfg, with_scorecard=False, tune=TuneOptions(0.3, trials=3))
    assert [c["label"] for c in seen] == ["training window"]
    oot = set(rep.eval_index.tolist())
    assert oot and not seen[0]["rows"] & oot
    assert len(seen[0]["rows"]) == rep.split["train_rows"] + rep.split["validation_rows"]


@pytest.mark.slow
def test_a_tuned_model_retrains_exactly_from_its_parameter_file(tmp_path, data_dir) -> None:
    f = tmp_path / "t.csv"
    make_frame(500, seed=4).to_csv(f, index=False)
    tuned = tmp_path / "tuned.yaml"
    base = ["train", "--table", str(f), "--target", "bad", "--id-column", "firm_id",
            "--exclude", "applied_at", "--no-scorecard", "--param", "num_threads=1",
            "--param", "training.num_boost_round=80"]  # fmt: skip
    runner = CliRunner()
    res = runner.invoke(
        app,
        [*base, "--tune", "--budget", "0.5", "--trials", "4", "--tuned-params", str(tuned),
         "--json", str(tmp_path / "a.json")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    written = load_params(tuned)  # a valid parameter file
    assert written["training"]["candidates"] == [{}]
    assert "auto" not in written["lightgbm"].values()
    a = json.loads((tmp_path / "a.json").read_text())
    assert len(a["tuning"]) == 6 and a["tuned_params"] == str(tuned)
    # retrain from the file (no --tune): the registered model is the same booster
    res = runner.invoke(app, [*base, "--params", str(tuned), "--json", str(tmp_path / "b.json")])
    assert res.exit_code == 0, res.output
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["params"] == a["params"]
    assert b["best_iteration"] == a["best_iteration"]
    from credit.scoring import MODEL_NAME, ScoringModel
    from credit.settings import get_settings

    uri = get_settings().tracking_uri
    models = {
        r: ScoringModel.load(f"models:/{MODEL_NAME}/{v}", tracking_uri=uri)
        for r, v in (("a", a["version"]), ("b", b["version"]))
    }
    X = table(500, seed=4).X
    np.testing.assert_array_equal(models["a"].raw(X), models["b"].raw(X))
    # every trial is a nested run of the tuned run, the choice is on the parent
    import mlflow

    mlflow.set_tracking_uri(uri)
    children = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{a['run_id']}'",
    )
    trials = sum(s["trials"] for s in a["tuning"])
    assert len(children) >= trials  # LightGBM trials, plus the scorecard's (none here)
    parent = mlflow.get_run(a["run_id"])
    assert parent.data.params["tuning.studies"] == "6"
    assert "tuned.num_leaves" in parent.data.params
    assert "explain_p99_ms" in parent.data.metrics


# ---- bad input -------------------------------------------------------------------------------


def _fails(args: list[str], data_dir: Path) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    # progress lines may come first (stderr); the error is one line, the last
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.output
    assert "Traceback" not in res.output
    return errors[0]


def test_bad_tuning_input_is_a_one_line_error(tmp_path, data_dir) -> None:
    f = tmp_path / "t.csv"
    make_frame(200, seed=1).to_csv(f, index=False)
    base = ["train", "--table", str(f), "--target", "bad", "--no-register"]
    assert "--budget must be a positive number of minutes, got 0" in _fails(
        [*base, "--tune", "--budget", "0"], data_dir
    )
    assert "got -3" in _fails([*base, "--tune", "--budget", "-3"], data_dir)
    assert "add --tune" in _fails([*base, "--trials", "5"], data_dir)
    assert "--trials must be at least 1" in _fails([*base, "--tune", "--trials", "0"], data_dir)
    cfg = yaml.safe_load(PARAMS_PATH.read_text())
    cfg["lightgbm"]["num_leaves"] = 1
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(cfg))
    assert "lightgbm.num_leaves = 1 is outside its range" in _fails(
        [*base, "--params", str(p)], data_dir
    )


def test_a_target_with_a_single_class_in_a_fold_is_a_one_line_error(tmp_path, data_dir) -> None:
    frame = make_frame(200, seed=1)
    frame["bad"] = 0
    frame.loc[:2, "bad"] = 1  # 3 defaults for 5 folds: some fold would hold none
    f = tmp_path / "t.csv"
    frame.to_csv(f, index=False)
    line = _fails(["train", "--table", str(f), "--target", "bad", "--no-register"], data_dir)
    assert "3 defaults and 197 non-defaults" in line and "--param cv.folds" in line
