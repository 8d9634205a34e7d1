"""How stored feature rows (flat dicts of scalars) become a numeric matrix for training.

The spec is inferred once from the training rows and saved next to the model, so a model
always sees its columns in the same order and its categories under the same codes, whatever
rows it is later asked about. Categories unseen in training have no code: they become NaN
(trees send them down the missing-value branch) or an all-zero one-hot block (linear models
add nothing for them).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import numpy as np
from numpy.typing import NDArray

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = get_args(Kind)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but True/False are labels, not magnitudes.
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _number(value: Any) -> float:
    """A finite float, or NaN: infinities would poison a linear fit and mean nothing to trees."""
    if not _is_number(value):
        return math.nan
    try:
        number = float(value)
    except OverflowError:  # an integer past float's range
        return math.nan
    return number if math.isfinite(number) else math.nan


# Types whose values numpy converts to float exactly as `_number` would (None to NaN).
PLAIN_NUMERIC = frozenset({int, float, type(None)})


def numeric_column(values: Sequence[Any]) -> NDArray[np.float64]:
    """`_number` of each value, vectorised when every value is a plain int, float or None
    (a million-row dataset), value by value otherwise (bools and strings become NaN)."""
    if {type(v) for v in values} <= PLAIN_NUMERIC:
        try:
            column = np.array(values, dtype=np.float64)
        except OverflowError:  # an int too large for a float: the slow path decides
            return np.array([_number(v) for v in values], dtype=np.float64)
        column[~np.isfinite(column)] = np.nan
        return column
    return np.array([_number(v) for v in values], dtype=np.float64)


@dataclass(frozen=True)
class FeatureSpec:
    """Column order, each column's kind, and the categories seen in training."""

    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    vocab: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.kinds):
            raise ValueError(f"{len(self.names)} feature names but {len(self.kinds)} kinds")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature names repeat: {list(self.names)}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown feature kinds {unknown}; valid: {', '.join(KINDS)}")
        categorical = {n for n, k in zip(self.names, self.kinds, strict=True) if k == "categorical"}
        if set(self.vocab) != categorical:
            raise ValueError(
                f"vocab must cover exactly the categorical features {sorted(categorical)}, "
                f"got {sorted(self.vocab)}"
            )

    @classmethod
    def infer(cls, names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> FeatureSpec:
        """A feature is numeric when every present value is an int or float (bool is not);
        otherwise categorical, its categories being the values as strings. A feature never
        present is numeric: it is all NaN either way."""
        kinds: list[Kind] = []
        vocab: dict[str, tuple[str, ...]] = {}
        for name in names:
            # One pass over the types first: a million rows of plain numbers need no more.
            if {type(row.get(name)) for row in rows} <= PLAIN_NUMERIC:
                kinds.append("numeric")
                continue
            present = [v for row in rows if not _is_missing(v := row.get(name))]
            if all(_is_number(v) for v in present):
                kinds.append("numeric")
            else:
                kinds.append("categorical")
                vocab[name] = tuple(sorted({str(v) for v in present}))
        return cls(tuple(names), tuple(kinds), vocab)

    @property
    def categorical_indices(self) -> list[int]:
        """Column positions of the categorical features, as LightGBM wants them."""
        return [i for i, kind in enumerate(self.kinds) if kind == "categorical"]

    def _codes(self) -> dict[str, dict[str, int]]:
        return {name: {c: i for i, c in enumerate(cats)} for name, cats in self.vocab.items()}

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> NDArray[np.float64]:
        """Shape (rows, features). Numbers as floats, categories as their vocab index;
        missing, non-numeric or unseen values are NaN."""
        codes = self._codes()
        out = np.full((len(rows), len(self.names)), np.nan, dtype=np.float64)
        for j, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)):
            if kind == "numeric":
                out[:, j] = numeric_column([row.get(name) for row in rows])
                continue
            lookup = codes[name]
            for i, row in enumerate(rows):
                value = row.get(name)
                if not _is_missing(value) and (code := lookup.get(str(value))) is not None:
                    out[i, j] = code
        return out

    @property
    def one_hot_width(self) -> int:
        return sum(
            1 if kind == "numeric" else len(self.vocab[name])
            for name, kind in zip(self.names, self.kinds, strict=True)
        )

    def one_hot(self, rows: Sequence[Mapping[str, Any]]) -> NDArray[np.float64]:
        """For linear models: numeric columns first (missing -> 0.0), then one column per
        category of each categorical feature, in name order (unseen -> all zeros)."""
        numeric = [j for j, kind in enumerate(self.kinds) if kind == "numeric"]
        dense = self.matrix(rows)
        blocks = [np.nan_to_num(dense[:, numeric], nan=0.0)]
        for j in self.categorical_indices:
            width = len(self.vocab[self.names[j]])
            block = np.zeros((len(rows), width), dtype=np.float64)
            seen = ~np.isnan(dense[:, j])
            block[np.flatnonzero(seen), dense[seen, j].astype(np.intp)] = 1.0
            blocks.append(block)
        return np.hstack(blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "kinds": list(self.kinds),
            "vocab": {name: list(cats) for name, cats in self.vocab.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """The inverse of :meth:`to_dict`; malformed input raises ValueError."""
        try:
            names = tuple(str(n) for n in data["names"])
            kinds = tuple(cast(Kind, str(k)) for k in data["kinds"])
            vocab = {str(n): tuple(str(c) for c in cats) for n, cats in data["vocab"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed feature spec: {exc!r}") from exc
        return cls(names, kinds, vocab)
