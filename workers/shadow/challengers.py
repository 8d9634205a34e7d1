"""The online models a challenger can be, chosen by a string key. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from river import linear_model, preprocessing, tree

from workers.errors import ConfigError

Builder = Callable[[int, int], Any]  # (seed, max_depth) -> River model

# Trees are capped in depth: on a continuous target a Hoeffding tree otherwise splits for
# ever, and its memory, its CPU per example and its checkpoints grow with every example
# (River's max_size did not stop the adaptive regressor growing when we measured it).
_REGRESSION: dict[str, Builder] = {
    "linear": lambda seed, depth: preprocessing.StandardScaler() | linear_model.LinearRegression(),
    "hoeffding": lambda seed, depth: tree.HoeffdingAdaptiveTreeRegressor(
        seed=seed, grace_period=100, max_depth=depth
    ),
}
_BINARY: dict[str, Builder] = {
    "logistic": lambda seed, depth: (
        preprocessing.StandardScaler() | linear_model.LogisticRegression()
    ),
    "hoeffding": lambda seed, depth: tree.HoeffdingAdaptiveTreeClassifier(
        seed=seed, grace_period=100, max_depth=depth
    ),
}


def builders(task: str) -> dict[str, Builder]:
    return _REGRESSION if task == "regression" else _BINARY


def build(key: str, task: str, seed: int = 7, max_depth: int = 8) -> Any:
    options = builders(task)
    if key not in options:
        raise ConfigError(f"unknown {task} challenger {key!r}; valid: {', '.join(sorted(options))}")
    return options[key](seed, max_depth)


def encode(features: Mapping[str, Any], key: str) -> dict[str, Any]:
    """River input: numbers as they are, categories as indicators (`channel=search`).
    Indicators suit trees too, and the adaptive tree's linear leaves need numbers."""
    x: dict[str, Any] = {}
    for name, value in features.items():
        if value is None:
            continue
        if isinstance(value, bool | str):
            x[f"{name}={value}"] = 1.0
        else:
            x[name] = float(value)
    return x


def predict(model: Any, x: dict[str, Any], task: str) -> float:
    if task == "regression":
        y = model.predict_one(x)
        return float(y) if y is not None else 0.0
    proba = model.predict_proba_one(x)
    return float(proba.get(True, 0.0)) if proba else 0.5


def learn(model: Any, x: dict[str, Any], label: float, task: str) -> None:
    model.learn_one(x, label if task == "regression" else label >= 0.5)
