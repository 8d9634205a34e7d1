"""Trained models and their on-disk form: plain text and JSON, never pickle.

A model directory holds ``spec.json`` (format version, kind, task, feature spec) and one model
file: LightGBM's own text format (``model.txt``) or coefficients as JSON (``model.json``).
Saving returns each file's SHA-256; loading checks every file against those hashes before a
byte is parsed, then parses the bytes it checked, so a file swapped in between is never read.
A string key picks the model kind through :data:`MODEL_KINDS`; an unknown key fails with the
list of valid keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import lightgbm
import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression, Ridge

from workers.errors import OutcomeLoopError
from workers.retrain.features import FeatureSpec
from workers.retrain.scoring import THRESHOLD

Task = Literal["regression", "binary"]
TASKS: tuple[Task, ...] = get_args(Task)
Array = NDArray[np.float64]
Rows = Sequence[Mapping[str, Any]]

SPEC_FILE = "spec.json"
LIGHTGBM_FILE = "model.txt"
LINEAR_FILE = "model.json"
FORMAT_VERSION = 1

# From this many training rows LightGBM uses every core (below, one: thread hand-offs
# cost more than they save). `retrain.params` may set n_jobs either way.
MANY_ROWS = 50_000
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 10,
    "subsample": 1.0,
    "subsample_freq": 0,
    "colsample_bytree": 1.0,
    "n_jobs": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
"""Small, single-threaded and reproducible: training runs beside the worker, not on a cluster.
``params`` from config override these."""

RIDGE_ALPHA = 1.0
LOGISTIC_MAX_ITER = 1000


class ArtifactError(OutcomeLoopError):
    """A saved model is missing, altered or malformed, and was not loaded."""


class TrainedModel(Protocol):
    """A fitted model that predicts from raw feature rows and saves itself without pickle."""

    kind: str
    task: Task
    spec: FeatureSpec

    def predict(self, rows: Rows) -> Array:
        """The regression value, or P(positive) for a binary task."""
        ...

    def save(self, directory: Path) -> dict[str, str]:
        """Writes its files atomically into an existing directory; returns {file: sha256}."""
        ...


# Files -----------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    """A reader sees the old file or the whole new one, never half of it, even after a crash."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(directory: Path) -> None:
    """Makes the renames themselves durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save(directory: Path, model: TrainedModel, files: Mapping[str, bytes]) -> dict[str, str]:
    if not directory.is_dir():
        raise ArtifactError(f"cannot save a {model.kind} model: {directory} is not a directory")
    header = {
        "format": FORMAT_VERSION,
        "kind": model.kind,
        "task": model.task,
        "features": model.spec.to_dict(),
    }
    # The spec goes last: a directory with a spec.json has its model file already in place.
    blobs = {**files, SPEC_FILE: json.dumps(header, indent=2, sort_keys=True).encode()}
    for name, data in blobs.items():
        _write_atomic(directory, name, data)
    _fsync_dir(directory)
    return {name: _sha256(data) for name, data in blobs.items()}


def _verified(directory: Path, expected: Mapping[str, str]) -> dict[str, bytes]:
    """Every expected file's bytes, each matching its hash; nothing is parsed here."""
    blobs: dict[str, bytes] = {}
    for name, want in expected.items():
        if name in ("", ".", "..") or Path(name).name != name:
            raise ArtifactError(f"artifact file name {name!r} is not a plain file name")
        path = directory / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"{path} is missing; expected sha256 {want}, got none") from None
        except OSError as exc:
            raise ArtifactError(f"{path} cannot be read ({exc}); expected sha256 {want}") from exc
        got = _sha256(data)
        if got != want.lower():
            raise ArtifactError(f"{path} was altered: expected sha256 {want}, got {got}")
        blobs[name] = data
    return blobs


# LightGBM --------------------------------------------------------------------------------------


@dataclass
class LightGBMModel:
    """Gradient-boosted trees on :meth:`FeatureSpec.matrix`, categories as LightGBM categoricals."""

    task: Task
    spec: FeatureSpec
    booster: lightgbm.Booster
    kind: str = field(default="lightgbm", init=False)

    def predict(self, rows: Rows) -> Array:
        if not rows:
            return np.empty(0, dtype=np.float64)
        # One thread for small requests: OpenMP's thread hand-off costs more than it saves
        # and stalls now and then on a busy machine (see BENCHMARKS.md).
        threads = 1 if len(rows) < 256 else 0
        matrix = self.spec.matrix(rows)
        return np.asarray(self.booster.predict(matrix, num_threads=threads), dtype=np.float64)

    def save(self, directory: Path) -> dict[str, str]:
        # The same text save_model() writes, taken as a string so it is written atomically.
        text: str = self.booster.model_to_string()
        return _save(directory, self, {LIGHTGBM_FILE: text.encode()})


def _fit_lightgbm(
    task: Task, spec: FeatureSpec, rows: Rows, y: Array, params: Mapping[str, Any], seed: int
) -> TrainedModel:
    options: dict[str, Any] = {**LIGHTGBM_DEFAULTS, "random_state": seed}
    if len(rows) >= MANY_ROWS:
        options["n_jobs"] = 0  # every core of the training process: threads pay off here
    if task == "binary":
        options["class_weight"] = "balanced"
    options.update(params)
    estimator = (
        lightgbm.LGBMClassifier(**options)
        if task == "binary"
        else lightgbm.LGBMRegressor(**options)
    )
    target = y.astype(np.int_) if task == "binary" else y
    estimator.fit(spec.matrix(rows), target, categorical_feature=spec.categorical_indices)
    return LightGBMModel(task, spec, estimator.booster_)


def _load_lightgbm(task: Task, spec: FeatureSpec, blobs: Mapping[str, bytes]) -> TrainedModel:
    booster = lightgbm.Booster(model_str=blobs[LIGHTGBM_FILE].decode())
    if booster.num_feature() != len(spec.names):
        raise ArtifactError(
            f"{LIGHTGBM_FILE} has {booster.num_feature()} features, spec has {len(spec.names)}"
        )
    return LightGBMModel(task, spec, booster)


# Linear and logistic ---------------------------------------------------------------------------


@dataclass
class LinearModel:
    """Ridge or logistic regression on standardized :meth:`FeatureSpec.one_hot` columns.

    Standardizing makes one penalty fair to every column; the mean and scale are kept here so
    saving needs no scikit-learn object, only numbers.
    """

    kind: str
    task: Task
    spec: FeatureSpec
    estimator: Ridge | LogisticRegression
    mean: Array
    scale: Array

    def _design(self, rows: Rows) -> Array:
        return (self.spec.one_hot(rows) - self.mean) / self.scale

    def predict(self, rows: Rows) -> Array:
        if not rows:
            return np.empty(0, dtype=np.float64)
        x = self._design(rows)
        if self.task == "binary":
            return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype=np.float64)
        return np.asarray(self.estimator.predict(x), dtype=np.float64)

    def save(self, directory: Path) -> dict[str, str]:
        body = {
            "coef": np.ravel(self.estimator.coef_).tolist(),
            "intercept": float(np.ravel(self.estimator.intercept_)[0]),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }
        data = json.dumps(body, allow_nan=False).encode()
        return _save(directory, self, {LINEAR_FILE: data})


def _standardize(x: Array) -> tuple[Array, Array]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[~(scale > 1e-12)] = 1.0  # a constant column stays constant instead of dividing by 0
    return mean, scale


def _fit_linear(
    task: Task, spec: FeatureSpec, rows: Rows, y: Array, params: Mapping[str, Any], seed: int
) -> TrainedModel:
    x = spec.one_hot(rows)
    mean, scale = _standardize(x)
    estimator = Ridge(alpha=RIDGE_ALPHA)
    estimator.fit((x - mean) / scale, y)
    return LinearModel("linear", task, spec, estimator, mean, scale)


def _fit_logistic(
    task: Task, spec: FeatureSpec, rows: Rows, y: Array, params: Mapping[str, Any], seed: int
) -> TrainedModel:
    x = spec.one_hot(rows)
    mean, scale = _standardize(x)
    # lbfgs is deterministic: no seed needed (and a run id may exceed what random_state takes).
    weights = params.get("class_weight", "balanced")
    estimator = LogisticRegression(class_weight=weights, max_iter=LOGISTIC_MAX_ITER)
    estimator.fit((x - mean) / scale, y.astype(np.int_))
    return LinearModel("logistic", task, spec, estimator, mean, scale)


def _linear_numbers(spec: FeatureSpec, blob: bytes) -> tuple[Array, float, Array, Array]:
    body = json.loads(blob)
    coef, mean, scale = (np.asarray(body[k], dtype=np.float64) for k in ("coef", "mean", "scale"))
    width = spec.one_hot_width
    if not coef.shape == mean.shape == scale.shape == (width,):
        raise ArtifactError(
            f"{LINEAR_FILE} holds {coef.shape}/{mean.shape}/{scale.shape} numbers for "
            f"coef/mean/scale; the spec has {width} columns"
        )
    return coef, float(body["intercept"]), mean, scale


def _load_linear(task: Task, spec: FeatureSpec, blobs: Mapping[str, bytes]) -> TrainedModel:
    coef, intercept, mean, scale = _linear_numbers(spec, blobs[LINEAR_FILE])
    estimator = Ridge(alpha=RIDGE_ALPHA)
    estimator.coef_ = coef
    estimator.intercept_ = intercept
    estimator.n_features_in_ = coef.shape[0]
    return LinearModel("linear", task, spec, estimator, mean, scale)


def _load_logistic(task: Task, spec: FeatureSpec, blobs: Mapping[str, bytes]) -> TrainedModel:
    coef, intercept, mean, scale = _linear_numbers(spec, blobs[LINEAR_FILE])
    estimator = LogisticRegression(max_iter=LOGISTIC_MAX_ITER)  # prediction only: no weights
    estimator.coef_ = coef.reshape(1, -1)
    estimator.intercept_ = np.array([intercept])
    estimator.classes_ = np.array([0, 1])
    estimator.n_features_in_ = coef.shape[0]
    return LinearModel("logistic", task, spec, estimator, mean, scale)


# Registry --------------------------------------------------------------------------------------

Fit = Callable[[Task, FeatureSpec, Rows, Array, Mapping[str, Any], int], TrainedModel]
Load = Callable[[Task, FeatureSpec, Mapping[str, bytes]], TrainedModel]


@dataclass(frozen=True)
class ModelKind:
    """How to fit and load one kind of model, and which tasks it can do."""

    name: str
    tasks: frozenset[Task]
    files: tuple[str, ...]
    fit: Fit
    load: Load


MODEL_KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        ModelKind(
            "lightgbm",
            frozenset({"regression", "binary"}),
            (LIGHTGBM_FILE,),
            _fit_lightgbm,
            _load_lightgbm,
        ),
        ModelKind("linear", frozenset({"regression"}), (LINEAR_FILE,), _fit_linear, _load_linear),
        ModelKind("logistic", frozenset({"binary"}), (LINEAR_FILE,), _fit_logistic, _load_logistic),
    )
}


def model_kind(kind: str) -> ModelKind:
    """The registered kind; an unknown name raises ValueError listing the valid ones."""
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; valid: {', '.join(sorted(MODEL_KINDS))}"
        ) from None


def fits_task(kind: str, task: Task) -> bool:
    """Whether ``kind`` can be trained for ``task``; an unknown kind raises ValueError."""
    return task in model_kind(kind).tasks


def _labels(task: Task, n_rows: int, labels: NDArray[Any] | Sequence[float]) -> Array:
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (n_rows,):
        raise ValueError(f"labels have shape {y.shape}, expected ({n_rows},) for {n_rows} rows")
    if n_rows == 0:
        raise ValueError("no rows to train on")
    if not np.all(np.isfinite(y)):
        raise ValueError("labels must be finite numbers")
    if task == "binary":
        y = (y >= THRESHOLD).astype(np.float64)
        if np.unique(y).size < 2:
            raise ValueError(f"a binary model needs both classes; all labels are {y[0]:g}")
    return y


def fit_model(
    kind: str,
    task: Task,
    spec: FeatureSpec,
    rows: Rows,
    labels: NDArray[Any] | Sequence[float],
    params: Mapping[str, Any] | None = None,
    seed: int = 7,
) -> TrainedModel:
    """Fits one model. ``params`` override the LightGBM defaults (they are LightGBM parameters,
    so linear kinds ignore them); binary labels count as positive from 0.5 up."""
    entry = model_kind(kind)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    if task not in entry.tasks:
        fitting = ", ".join(sorted(entry.tasks))
        raise ValueError(f"model kind {kind!r} does not fit a {task} task; it fits {fitting}")
    if not spec.names:
        raise ValueError("no features to train on")
    y = _labels(task, len(rows), labels)
    return entry.fit(task, spec, rows, y, dict(params or {}), seed)


def load_model(directory: Path, expected: Mapping[str, str]) -> TrainedModel:
    """Loads a saved model after checking every file in ``expected`` ({file: sha256}).

    Any missing or altered file, or one the kind needs but ``expected`` does not vouch for,
    raises :class:`ArtifactError` before anything is parsed.
    """
    blobs = _verified(directory, expected)
    if SPEC_FILE not in blobs:
        raise ArtifactError(f"expected hashes do not include {SPEC_FILE}: {sorted(expected)}")
    try:
        header = json.loads(blobs[SPEC_FILE])
        version, kind, task = header["format"], header["kind"], header["task"]
        spec = FeatureSpec.from_dict(header["features"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory / SPEC_FILE} is malformed: {exc}") from exc
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{directory / SPEC_FILE} has format {version!r}, not {FORMAT_VERSION}")
    entry = MODEL_KINDS.get(kind)
    if entry is None:
        raise ArtifactError(
            f"{directory / SPEC_FILE} names unknown model kind {kind!r}; "
            f"valid: {', '.join(sorted(MODEL_KINDS))}"
        )
    if task not in entry.tasks:
        raise ArtifactError(f"{directory / SPEC_FILE}: a {kind} model cannot do task {task!r}")
    unvouched = [name for name in entry.files if name not in blobs]
    if unvouched:
        raise ArtifactError(f"expected hashes do not include {unvouched} for a {kind} model")
    try:
        return entry.load(task, spec, blobs)
    except ArtifactError:
        raise
    except Exception as exc:  # a foreign parser's error, wrapped once with the directory
        raise ArtifactError(f"cannot load the {kind} model in {directory}: {exc}") from exc


def saved_files(directory: Path) -> tuple[str, dict[str, str]]:
    """The kind and {file: sha256} of a model folder written by ``save`` elsewhere (its
    spec names its kind, the kind names its files), checked by loading it. Raises
    ArtifactError."""
    try:
        header = json.loads((directory / SPEC_FILE).read_bytes())
        entry = MODEL_KINDS[header["kind"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory} is not a saved model: {exc!r}") from exc
    files = {}
    for name in (*entry.files, SPEC_FILE):
        try:
            files[name] = _sha256((directory / name).read_bytes())
        except OSError as exc:
            raise ArtifactError(f"{directory}: a {entry.name} model needs {name}: {exc}") from exc
    load_model(directory, files)
    return entry.name, files
