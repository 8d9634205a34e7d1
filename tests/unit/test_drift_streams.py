"""The drifting streams the efficacy benchmark replays: deterministic, with real changes
exactly where they are declared."""

from __future__ import annotations

import numpy as np
import pytest

from workers.synth.drift_streams import (
    DRIFTING,
    FEATURES,
    KINDS,
    TASKS,
    DriftStream,
    Kind,
    Task,
    initial_concept_error,
    make_stream,
)

N = 4000


def stream(kind: Kind, task: Task = "regression", seed: int = 7) -> DriftStream:
    return make_stream(kind, task, N, seed=seed)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_stream_other_seed_other_stream(kind: Kind, task: Task) -> None:
    a, b, c = stream(kind, task), stream(kind, task), stream(kind, task, seed=8)
    assert a.rows == b.rows
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.truth, b.truth)
    assert a.rows != c.rows


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_stable_float_features_and_labels_fit_the_task(kind: Kind, task: Task) -> None:
    s = stream(kind, task)
    assert len(s) == N == len(s.labels) == len(s.truth)
    for row in s.rows[:50]:
        assert tuple(row) == FEATURES
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in row.values())
    if task == "binary":
        assert set(np.unique(s.labels)) <= {0.0, 1.0}
        assert np.all((s.truth > 0) & (s.truth < 1))
        assert 0.1 < s.labels.mean() < 0.5
    else:
        assert np.array_equal(s.labels, s.truth)


def test_change_points_are_where_declared() -> None:
    assert stream("stationary").onset is None and stream("stationary").change_points == ()
    for kind in DRIFTING:
        assert stream(kind).onset == N // 2
    back = stream("drift_back")
    assert back.return_at == 3 * N // 4 and back.change_points == (N // 2, 3 * N // 4)
    gradual = stream("gradual")
    assert gradual.settled_at == N // 2 + 2 * gradual.transition
    custom = make_stream("abrupt", "binary", 1000, onset_share=0.3)
    assert custom.onset == 300 and custom.drifted(300) and not custom.drifted(299)


@pytest.mark.parametrize("kind", ["abrupt", "drift_back", "local"])
def test_nothing_changes_before_the_onset(kind: Kind) -> None:
    """Before its onset a drifting stream is the stationary one, row for row and label for
    label; at the onset the labels part."""
    drifting, stationary = stream(kind), stream("stationary")
    onset = drifting.onset
    assert onset is not None
    assert drifting.rows == stationary.rows
    assert np.array_equal(drifting.labels[:onset], stationary.labels[:onset])
    assert not np.array_equal(drifting.labels[onset : onset + 50], stationary.labels[onset:][:50])


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", DRIFTING)
def test_the_champion_is_clearly_worse_after_the_onset(kind: Kind, task: Task) -> None:
    s = stream(kind, task)
    before, after = initial_concept_error(s, s.fit_champion())
    floor = 1.5 if task == "regression" else 1.15
    assert after > floor * before, f"{kind}/{task}: {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("task", TASKS)
def test_the_champion_stays_as_good_on_a_stationary_stream(task: Task) -> None:
    s = stream("stationary", task)
    before, after = initial_concept_error(s, s.fit_champion())
    assert abs(after / before - 1) < 0.1


@pytest.mark.parametrize("task", TASKS)
def test_drift_back_returns_to_the_initial_concept(task: Task) -> None:
    s, stationary = stream("drift_back", task), stream("stationary", task)
    assert s.return_at is not None and s.onset is not None
    assert np.array_equal(s.labels[s.return_at :], stationary.labels[s.return_at :])
    champion = s.fit_champion()
    pred = champion.predict(s.rows)
    err = np.abs(pred - s.labels)
    before, during, after = (
        err[: s.onset].mean(),
        err[s.onset : s.return_at].mean(),
        err[s.return_at :].mean(),
    )
    assert during > 1.15 * before
    assert after < 1.1 * before


def test_a_local_change_touches_only_its_regions() -> None:
    s, stationary = stream("local"), stream("stationary")
    assert s.onset is not None
    start = s.onset + 2  # River's three expansions, one event apart
    changed = s.labels[start:] != stationary.labels[start:]
    rows = s.rows[start:]
    x1 = np.array([r["x1"] for r in rows])
    x2 = np.array([r["x2"] for r in rows])
    in_regions = ((x1 < 0.3) & (x2 < 0.3)) | ((x1 > 0.7) & (x2 > 0.7))
    assert np.array_equal(changed, in_regions)
    assert 0.12 < changed.mean() < 0.25


def test_a_gradual_change_grows() -> None:
    s = stream("gradual")
    assert s.onset is not None and s.settled_at is not None
    err = np.abs(s.fit_champion().predict(s.rows) - s.labels)
    early = err[s.onset : s.onset + s.transition // 2].mean()
    late = err[s.settled_at :].mean()
    assert err[: s.onset].mean() < early < late


def test_the_champion_is_fitted_apart_from_the_stream_and_cached() -> None:
    s = stream("abrupt")
    first, again = s.fit_champion(), stream("abrupt").fit_champion()
    assert first.model is again.model  # cached: scenarios of a task share one fit
    assert 0.0 < first.score(s.rows[0]) < 40.0
    assert s.fit_champion(seed=1).model is not first.model


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"kind": "sudden"}, "unknown drift kind"),
        ({"task": "multiclass"}, "unknown task"),
        ({"onset_share": 1.0}, "onset_share"),
        ({"kind": "drift_back", "return_share": 0.4}, "return_share"),
        ({"kind": "gradual", "transition": 0}, "transition"),
    ],
)
def test_bad_arguments_are_refused(args: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"kind": "abrupt", "task": "regression", "n_events": 1000}
    values.update(args)
    with pytest.raises(ValueError, match=message):
        make_stream(**values)  # type: ignore[arg-type]
