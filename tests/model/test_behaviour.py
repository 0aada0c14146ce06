"""Model behaviour: monotone sweeps, invariance to identifiers, SHAP additivity, calibration
keeps the ranking, bundles reload identically."""

from __future__ import annotations

import numpy as np
import pytest

from credit.scoring import ScoringInputError, ScoringModel
from models.dataset import from_frame
from models.train import fit_model
from tests.model.helpers import make_frame, tiny_cfg, train_tiny


@pytest.fixture(scope="module")
def tiny():
    return train_tiny()


def test_monotone_sweep_plus_one_feature_never_lowers_pd(tiny) -> None:
    model, data, test = tiny
    j = model.feature_names.index("late_share")  # risk_direction +1
    grid = np.linspace(0, 1, 41)
    for row in data.X[test[:40]]:
        X = np.repeat(row[None, :], len(grid), axis=0)
        X[:, j] = grid
        pd_ = model.predict(X).pd
        assert np.all(np.diff(pd_) >= 0), "PD fell while a +1 feature rose"
        assert pd_[-1] > pd_[0]  # and the feature matters


def test_monotone_sweep_minus_one_feature_never_raises_pd(tiny) -> None:
    model, data, test = tiny
    j = model.feature_names.index("revenue")  # risk_direction -1
    grid = np.linspace(-3, 3, 41)
    for row in data.X[test[:40]]:
        X = np.repeat(row[None, :], len(grid), axis=0)
        X[:, j] = grid
        assert np.all(np.diff(model.predict(X).pd) <= 0)


def test_invariant_to_firm_id() -> None:
    # The identifier is never a feature: relabelling the firms gives the same model and PDs.
    frame = make_frame(400, seed=3)
    other = frame.copy()
    other["firm_id"] = [f"X{i}" for i in range(len(frame))][::-1]
    preds = []
    for f in (frame, other):
        d = from_frame(f, "bad", time_column="applied_at", id_column="firm_id")
        assert "firm_id" not in d.feature_names
        idx = np.arange(len(f))
        m, _ = fit_model(d, idx[:240], idx[240:320], tiny_cfg(), monotone=[1, -1, 0, 0])
        preds.append(m.predict(d.X[320:]).pd)
    np.testing.assert_array_equal(preds[0], preds[1])


def test_shap_contributions_plus_base_equal_raw_log_odds(tiny) -> None:
    model, data, test = tiny
    X = data.X[test]
    e = model.explain(X, top_k=None)
    raw = model.raw(X)
    np.testing.assert_allclose(e.contributions.sum(axis=1) + e.base_value, raw, atol=1e-6, rtol=0)
    np.testing.assert_allclose(e.scores.raw, raw, atol=0, rtol=0)


def test_reasons_are_the_largest_positive_contributions(tiny) -> None:
    model, data, test = tiny
    e = model.explain(data.X[test], top_k=4)
    for i, reasons in enumerate(e.reasons):
        assert len(reasons) <= 4
        contrib = [r.contribution for r in reasons]
        assert contrib == sorted(contrib, reverse=True)
        assert all(c > 0 for c in contrib)
        positives = np.sort(e.contributions[i][e.contributions[i] > 0])[::-1][:4]
        np.testing.assert_allclose(contrib, positives)
    texts = {r.feature: r.text for rs in e.reasons for r in rs}
    assert texts.get("late_share", "Pays late") == "Pays late"  # catalog text
    assert texts.get("noise", "noise") == "noise"  # falls back to the column name
    region = [r for rs in e.reasons for r in rs if r.feature == "region"]
    assert all(r.value in ("EU", "US", "SEA", None) for r in region)  # labels, not codes


def test_calibration_keeps_the_ranking(tiny) -> None:
    model, data, _ = tiny
    raw = model.raw(data.X)
    s = model.predict(data.X)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(s.pd[order]) >= 0)
    # strictly increasing map: distinct raw scores stay distinct
    assert len(np.unique(s.pd)) == len(np.unique(raw))


def test_bundle_round_trip_scores_identically(tiny, tmp_path) -> None:
    model, data, test = tiny
    model.to_bundle(tmp_path / "b")
    again = ScoringModel.from_bundle(tmp_path / "b", version="7", run_id="r")
    a, b = model.explain(data.X[test]), again.explain(data.X[test])
    np.testing.assert_array_equal(a.scores.pd, b.scores.pd)
    np.testing.assert_array_equal(a.scores.score, b.scores.score)
    np.testing.assert_array_equal(a.scores.grade, b.scores.grade)
    assert a.reasons == b.reasons
    assert again.identity() == {"name": "tradecredit-pd", "version": "7", "run_id": "r"}
    assert again.scale == model.scale


def test_encode_maps_labels_and_rejects_bad_input(tiny) -> None:
    model, data, test = tiny
    frame = make_frame(600, 0).iloc[test]
    np.testing.assert_array_equal(
        np.nan_to_num(model.encode(frame), nan=-9), np.nan_to_num(data.X[test], nan=-9)
    )
    one = model.encode({"late_share": 0.5, "revenue": 1.0, "noise": 0.0, "region": "MARS"})
    assert np.isnan(one[0, model.feature_names.index("region")])  # unseen label -> missing
    with pytest.raises(ScoringInputError, match="missing feature columns: noise"):
        model.encode({"late_share": 0.5, "revenue": 1.0, "region": "EU"})
    with pytest.raises(ScoringInputError, match="expected a matrix with 4 columns"):
        model.predict(np.zeros((2, 3)))


def test_single_row_fast_path_equals_booster_predict_bit_for_bit(tiny) -> None:
    """One row goes through LightGBM's C fast path; it must give Booster.predict's numbers."""
    import pickle

    model, data, test = tiny
    assert model._fast is not None  # the fast path is in use on this LightGBM
    X = data.X[test].copy()
    X[::7, 0] = np.nan  # missing values take the trees' default branches
    for row in X[:60]:
        one = row.reshape(1, -1)
        np.testing.assert_array_equal(
            model.raw(one), model.booster.predict(one, raw_score=True, num_threads=1)
        )
        np.testing.assert_array_equal(
            model.contributions(one), model.booster.predict(one, pred_contrib=True, num_threads=1)
        )
    # one row at a time or all rows at once (Booster.predict): the same decisions
    batch = model.explain(X[:60], top_k=4)
    for i in range(60):
        single = model.explain(X[i : i + 1], top_k=4)
        assert single.scores.raw[0] == batch.scores.raw[i]
        assert single.scores.pd[0] == batch.scores.pd[i]
        assert single.reasons[0] == batch.reasons[i]
    again = pickle.loads(pickle.dumps(model))  # the C handles are rebuilt, not copied
    assert again._fast is not None and again._fast is not model._fast
    np.testing.assert_array_equal(again.raw(X[:1]), model.raw(X[:1]))
