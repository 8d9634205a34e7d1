"""Feature specs, model kinds, safe artifacts and candidate training, on small synthetic data."""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from workers.retrain.features import FeatureSpec
from workers.retrain.models import (
    LIGHTGBM_FILE,
    LINEAR_FILE,
    MODEL_KINDS,
    SPEC_FILE,
    ArtifactError,
    Task,
    TrainedModel,
    fit_model,
    load_model,
)
from workers.retrain.scoring import score
from workers.retrain.trainer import TrainJob, best, train_candidates, train_in_process

NAMES = ("x", "color", "flag", "note")
FITTING: list[tuple[str, Task]] = [
    ("lightgbm", "regression"),
    ("lightgbm", "binary"),
    ("linear", "regression"),
    ("logistic", "binary"),
]


def make_data(seed: int, n: int, task: Task) -> tuple[list[dict[str, Any]], NDArray[np.float64]]:
    """y depends on x and on color == "red"; flag is noise, note is always missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    flag = rng.random(n) < 0.5
    rows: list[dict[str, Any]] = [
        {"x": float(a), "color": str(c), "flag": bool(f), "note": None}
        for a, c, f in zip(x, color, flag, strict=True)
    ]
    signal = 2.0 * x + 1.5 * (color == "red")
    if task == "regression":
        return rows, signal + rng.normal(0, 0.2, n)
    return rows, (signal + rng.normal(0, 0.3, n) > 0.5).astype(np.float64)


# FeatureSpec ---------------------------------------------------------------------------------


def test_infer_kinds_and_vocab() -> None:
    rows: list[dict[str, Any]] = [
        {"n": 1, "f": 0.5, "b": True, "s": "z", "mixed": 3, "none": None},
        {"n": None, "f": 2, "b": False, "s": "a", "mixed": "x"},
        {"n": 4, "f": float("nan"), "b": None, "s": None, "mixed": 3.0, "none": None},
    ]
    spec = FeatureSpec.infer(["n", "f", "b", "s", "mixed", "none"], rows)
    assert spec.kinds == (
        "numeric",
        "numeric",
        "categorical",
        "categorical",
        "categorical",
        "numeric",
    )
    assert dict(spec.vocab) == {
        "b": ("False", "True"),
        "s": ("a", "z"),
        "mixed": ("3", "3.0", "x"),
    }


def test_matrix_codes_and_missing() -> None:
    spec = FeatureSpec.infer(["x", "c"], [{"x": 1.5, "c": "b"}, {"x": 2, "c": "a"}])
    m = spec.matrix(
        [
            {"x": 3, "c": "a"},
            {"x": None, "c": "b"},
            {"x": "oops", "c": "unseen"},
            {"x": True, "c": None},
            {},
        ]
    )
    assert m.shape == (5, 2)
    assert m.dtype == np.float64
    np.testing.assert_array_equal(m[0], [3.0, 0.0])
    assert math.isnan(m[1, 0]) and m[1, 1] == 1.0
    assert np.isnan(m[2]).all()  # non-numeric x, unseen category
    assert np.isnan(m[3]).all()  # bool in a numeric column, missing category
    assert np.isnan(m[4]).all()
    assert spec.matrix([]).shape == (0, 2)


def test_one_hot_layout() -> None:
    spec = FeatureSpec.infer(
        ["c", "x", "b"], [{"c": "q", "x": 1.0, "b": True}, {"c": "p", "b": False}]
    )
    m = spec.one_hot([{"c": "q", "x": 2.0, "b": False}, {"c": "new", "x": None, "b": True}])
    # numeric first, then c: (p, q), then b: (False, True)
    np.testing.assert_array_equal(m, [[2.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    assert spec.one_hot_width == 5


def test_spec_dict_round_trip_and_validation() -> None:
    rows, _ = make_data(1, 20, "regression")
    spec = FeatureSpec.infer(NAMES, rows)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="vocab"):
        FeatureSpec(("a",), ("categorical",), {})
    with pytest.raises(ValueError, match="malformed"):
        FeatureSpec.from_dict({"names": ["a"]})


# Fitting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "task"), FITTING)
def test_kind_beats_a_constant(kind: str, task: Task) -> None:
    rows, y = make_data(2, 400, task)
    val_rows, y_val = make_data(3, 200, task)
    model = fit_model(kind, task, FeatureSpec.infer(NAMES, rows), rows, y)
    assert (model.kind, model.task) == (kind, task)
    predicted = model.predict(val_rows)
    assert predicted.shape == (200,)
    metric = "mae" if task == "regression" else "log_loss"
    constant = np.full(len(y_val), float(np.mean(y)))
    assert score(metric, y_val, predicted) < 0.5 * score(metric, y_val, constant)
    if task == "binary":
        assert ((predicted >= 0) & (predicted <= 1)).all()


@pytest.mark.parametrize(("kind", "task"), [("linear", "binary"), ("logistic", "regression")])
def test_kind_task_mismatch_raises(kind: str, task: Task) -> None:
    rows, y = make_data(4, 50, task)
    with pytest.raises(ValueError, match=f"{kind}.*does not fit a {task} task"):
        fit_model(kind, task, FeatureSpec.infer(NAMES, rows), rows, y)


def test_unknown_kind_lists_valid_kinds() -> None:
    rows, y = make_data(4, 50, "regression")
    with pytest.raises(ValueError, match="lightgbm, linear, logistic"):
        fit_model("xgboost", "regression", FeatureSpec.infer(NAMES, rows), rows, y)
    assert sorted(MODEL_KINDS) == ["lightgbm", "linear", "logistic"]


@pytest.mark.parametrize("kind", ["lightgbm", "logistic"])
def test_single_class_binary_raises(kind: str) -> None:
    rows, _ = make_data(5, 50, "binary")
    with pytest.raises(ValueError, match="needs both classes"):
        fit_model(kind, "binary", FeatureSpec.infer(NAMES, rows), rows, np.full(50, 0.3))


def test_lightgbm_params_override_defaults(tmp_path: Path) -> None:
    rows, y = make_data(6, 200, "regression")
    spec = FeatureSpec.infer(NAMES, rows)
    model = fit_model("lightgbm", "regression", spec, rows, y, params={"n_estimators": 3})
    model.save(tmp_path)
    assert (tmp_path / LIGHTGBM_FILE).read_text().count("Tree=") == 3


# Artifacts -----------------------------------------------------------------------------------


def fitted(kind: str, task: Task) -> tuple[TrainedModel, list[dict[str, Any]]]:
    rows, y = make_data(7, 200, task)
    return fit_model(kind, task, FeatureSpec.infer(NAMES, rows), rows, y), rows


@pytest.mark.parametrize(("kind", "task"), FITTING)
def test_save_load_round_trip(kind: str, task: Task, tmp_path: Path) -> None:
    model, rows = fitted(kind, task)
    hashes = model.save(tmp_path)
    model_file = LIGHTGBM_FILE if kind == "lightgbm" else LINEAR_FILE
    assert sorted(hashes) == sorted([model_file, SPEC_FILE])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(hashes)  # no temp files left
    loaded = load_model(tmp_path, hashes)
    assert (loaded.kind, loaded.task, loaded.spec) == (kind, task, model.spec)
    probe = [*rows[:50], {"x": 0.1, "color": "purple", "flag": None}, {}]
    before, after = model.predict(probe), loaded.predict(probe)
    assert np.allclose(before, after, rtol=0, atol=1e-9)
    assert np.ptp(after) > 0  # not a degenerate constant that would match trivially


@pytest.mark.parametrize("kind", ["lightgbm", "linear"])
@pytest.mark.parametrize("target", ["model", SPEC_FILE])
def test_tampered_file_refused_before_parsing(kind: str, target: str, tmp_path: Path) -> None:
    model, _ = fitted(kind, "regression")
    hashes = model.save(tmp_path)
    name = (LIGHTGBM_FILE if kind == "lightgbm" else LINEAR_FILE) if target == "model" else target
    path = tmp_path / name
    with path.open("ab") as fh:
        fh.write(b" ")  # still parses fine: only the hash check can refuse it
    with pytest.raises(ArtifactError, match=rf"{name} was altered.*{hashes[name]}"):
        load_model(tmp_path, hashes)


def test_garbage_is_refused_by_hash_not_by_parser(tmp_path: Path) -> None:
    model, _ = fitted("lightgbm", "regression")
    hashes = model.save(tmp_path)
    (tmp_path / LIGHTGBM_FILE).write_bytes(b"\x00not a model")
    with pytest.raises(ArtifactError, match="expected sha256") as info:
        load_model(tmp_path, hashes)
    assert info.value.__cause__ is None  # no parser ran and failed underneath


@pytest.mark.parametrize("name", [LINEAR_FILE, SPEC_FILE])
def test_missing_file_refused(name: str, tmp_path: Path) -> None:
    model, _ = fitted("linear", "regression")
    hashes = model.save(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(ArtifactError, match=rf"{name} is missing.*{hashes[name]}"):
        load_model(tmp_path, hashes)


def test_hashes_must_vouch_for_the_model_file(tmp_path: Path) -> None:
    model, _ = fitted("linear", "regression")
    hashes = model.save(tmp_path)
    with pytest.raises(ArtifactError, match=LINEAR_FILE):
        load_model(tmp_path, {SPEC_FILE: hashes[SPEC_FILE]})
    with pytest.raises(ArtifactError, match="plain file name"):
        load_model(tmp_path, {**hashes, "../outside": "0" * 64})


def test_save_needs_an_existing_directory(tmp_path: Path) -> None:
    model, _ = fitted("linear", "regression")
    with pytest.raises(ArtifactError, match="not a directory"):
        model.save(tmp_path / "absent")


# Candidates ----------------------------------------------------------------------------------


def test_train_candidates_best_first_and_skips_misfits() -> None:
    rows, y = make_data(8, 300, "binary")
    val_rows, y_val = make_data(9, 150, "binary")
    spec = FeatureSpec.infer(NAMES, rows)
    for metric, reverse in [("log_loss", False), ("roc_auc", True)]:
        results = train_candidates(
            "binary", metric, ["linear", "lightgbm", "logistic"], spec, rows, y, val_rows, y_val
        )
        assert sorted(r.kind for r in results) == ["lightgbm", "logistic"]
        values = [r.validation_metric for r in results]
        assert values == sorted(values, reverse=reverse)
        assert values[0] != values[1]
        assert best(results) is results[0]
        for r in results:
            assert r.validation_metric == score(metric, y_val, r.model.predict(val_rows))
            assert r.train_seconds > 0


def test_train_candidates_needs_one_fitting_kind() -> None:
    rows, y = make_data(10, 60, "regression")
    spec = FeatureSpec.infer(NAMES, rows)
    with pytest.raises(ValueError, match="no candidate"):
        train_candidates("regression", "mae", ["logistic"], spec, rows, y, rows, y)
    with pytest.raises(ValueError, match="unknown model kind"):
        train_candidates("regression", "mae", ["linear", "nope"], spec, rows, y, rows, y)
    with pytest.raises(ValueError, match="no candidate results"):
        best([])


def test_train_in_process_pool(tmp_path: Path) -> None:
    rows, y = make_data(11, 200, "regression")
    val_rows, y_val = make_data(12, 100, "regression")
    out = tmp_path / "model"
    job = TrainJob(
        task="regression",
        metric="mae",
        kinds=("linear", "lightgbm", "logistic"),
        feature_names=NAMES,
        train_rows=rows,
        train_labels=[float(v) for v in y],
        val_rows=val_rows,
        val_labels=[float(v) for v in y_val],
        params={"n_estimators": 50},
        seed=7,
        output_dir=str(out),
    )
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        outcome = pool.submit(train_in_process, job).result(timeout=60)
    assert set(outcome.validation_metrics) == set(outcome.train_seconds) == {"linear", "lightgbm"}
    assert outcome.best_kind == min(
        outcome.validation_metrics, key=outcome.validation_metrics.__getitem__
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(outcome.files)
    model = load_model(out, outcome.files)
    assert model.kind == outcome.best_kind
    assert model.spec == FeatureSpec.from_dict(outcome.spec)
    assert score("mae", y_val, model.predict(val_rows)) == pytest.approx(
        outcome.validation_metrics[outcome.best_kind], abs=1e-12
    )


def test_a_log_loss_classifier_is_trained_unweighted_for_calibrated_probabilities() -> None:
    """5% positives: balanced weights push the mean probability toward 50%, unweighted
    training keeps it near the real rate, and log loss prefers that."""
    rng = np.random.default_rng(0)
    rows = [{"x": float(v)} for v in rng.normal(size=4000)]
    y = np.array([float(rng.random() < 0.05) for _ in rows])
    spec = FeatureSpec.infer(["x"], rows)
    kw = dict(
        task="binary",
        kinds=("logistic",),
        spec=spec,
        train_rows=rows[:3000],
        train_labels=y[:3000],
        val_rows=rows[3000:],
        val_labels=y[3000:],
    )
    unweighted = train_candidates(metric="log_loss", **kw)[0].model  # type: ignore[arg-type]
    balanced = train_candidates(metric="f1", **kw)[0].model  # type: ignore[arg-type]
    assert abs(float(np.mean(unweighted.predict(rows[3000:]))) - 0.05) < 0.02
    assert float(np.mean(balanced.predict(rows[3000:]))) > 0.3


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(min_value=-(10**400), max_value=10**400),
            st.floats(allow_nan=True, allow_infinity=True),
            st.booleans(),
            st.text(max_size=3),
        ),
        max_size=30,
    )
)
def test_numeric_columns_convert_like_one_value_at_a_time(values: list[object]) -> None:
    """The vectorised path (a million rows of numbers) agrees with the per-value rule."""
    from workers.retrain.features import _number, numeric_column

    expected = np.array([_number(v) for v in values], dtype=np.float64)
    assert np.array_equal(numeric_column(values), expected, equal_nan=True)
